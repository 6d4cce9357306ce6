"""``search_traces`` inside SQLite: every filter a WHERE clause, keyset paging, facts per page.

The traces are walked newest first along ``traces_by_start`` (whose entries end with
the trace ID, the table's key, so (start, trace ID) is one ordered index); each
filter on spans is an ``EXISTS`` over the trace's own key range, or an ``IN`` over
the correlation and event indexes.

The facts shown per hit are the analysis' (``tracebraid.store.search.facts_of``),
computed in Python from the page's spans: counting retries and failed branches
takes every attempt of a branch in order, which no one SQL condition states
exactly. A filter on those facts (``has_retries``, ``has_pending``,
``has_failed``) is therefore two steps: SQL keeps the traces that *can* match (a
consumer that took a message twice, a failed attempt, a start marker: read from
the columns ``tracebraid.messaging`` derived when the span was written), and the
facts decide. Such a page examines up to ``TraceQuery.scan_limit`` candidates and
says how many (``SearchPage.scanned``); a search without them filters in place.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from tracebraid.messaging import AttemptOutcome
from tracebraid.model import Span, SpanKind, StatusCode, TraceId
from tracebraid.semconv import START_MARKER_SCOPE
from tracebraid.store._lookups import SUMMARY_SELECT, trace_summaries
from tracebraid.store.search import (
    FactsOf,
    SearchPage,
    TraceFacts,
    TraceHit,
    TraceQuery,
    facts_of,
    parse_cursor,
    wanted,
)
from tracebraid.store.sqlite import SqliteStore

__all__ = ["search_sqlite"]

_CONSUMER, _PRODUCER = int(SpanKind.CONSUMER), int(SpanKind.PRODUCER)
_FAILED = ", ".join(f"'{o.value}'" for o in AttemptOutcome if o.failed)
_MARKER = f"'{START_MARKER_SCOPE}'"  # a constant of ours, never user input

# Necessary conditions for the facts' filters: a trace failing one cannot match.
# A retry is a second attempt of a branch or a first that counts itself 2 or more; a
# branch's attempts share their consumer and, but for deliveries with no ID of their
# own (batch, structure-joined: grouped together here), their first strong identity.
# A failed branch has a failed attempt, an error or a dead letter somewhere.
_CAN_RETRY = """EXISTS (SELECT 1 FROM spans s WHERE s.trace_id = t.trace_id
    AND s.role = 'consumer' GROUP BY s.consumer, coalesce(s.event_id, '')
    HAVING count(*) > 1 OR max(coalesce(s.attempt, 1)) > 1)"""
_CAN_FAIL = f"""EXISTS (SELECT 1 FROM spans s WHERE s.trace_id = t.trace_id
    AND ((s.role = 'consumer' AND s.outcome IN ({_FAILED})) OR s.dead_letter
         OR s.status = {int(StatusCode.ERROR)}))"""
_HAS_MARKER = f"""EXISTS (SELECT 1 FROM spans m WHERE m.trace_id = t.trace_id
    AND m.scope = {_MARKER})"""

_ISLAND_ROOT = f"""{{c}}.kind = {_CONSUMER} AND {{c}}.parent_span_id IS NULL
    AND {{c}}.links IS NULL AND {{c}}.scope <> {_MARKER}"""

_BROKEN = f"""(EXISTS (SELECT 1 FROM spans c WHERE c.trace_id = t.trace_id
        AND {_ISLAND_ROOT.format(c="c")} AND c.event_id IS NOT NULL
        AND EXISTS (SELECT 1 FROM spans p WHERE p.event_id = c.event_id
            AND p.kind = {_PRODUCER} AND p.trace_id <> c.trace_id))
    OR EXISTS (SELECT 1 FROM spans p WHERE p.trace_id = t.trace_id
        AND p.kind = {_PRODUCER} AND p.event_id IS NOT NULL
        AND EXISTS (SELECT 1 FROM spans c WHERE c.event_id = p.event_id
            AND {_ISLAND_ROOT.format(c="c")} AND c.trace_id <> p.trace_id)))"""


def _flag(clause: str, wanted: bool | None) -> str | None:
    if wanted is None:
        return None
    return clause if wanted else f"NOT {clause}"


def _where(query: TraceQuery) -> tuple[list[str], list[Any]]:
    """The conditions and parameters on every trace, the keyset bound aside."""
    where: list[str] = []
    params: list[Any] = []
    if query.since_ns is not None:
        where.append("t.start_ns >= ?")
        params.append(query.since_ns)
    if query.correlation_id is not None:
        where.append(
            "t.trace_id IN (SELECT trace_id FROM trace_correlations WHERE correlation_id = ?)"
        )
        params.append(query.correlation_id)
    if query.event_id is not None:
        where.append(
            "t.trace_id IN (SELECT trace_id FROM spans WHERE event_id = ? "
            "UNION SELECT trace_id FROM spans WHERE causation_id = ?)"
        )
        params += [query.event_id, query.event_id]
    if query.service is not None:
        where.append(
            "EXISTS (SELECT 1 FROM spans s WHERE s.trace_id = t.trace_id AND s.service = ?)"
        )
        params.append(query.service)
    if query.event_name is not None:
        where.append(
            "EXISTS (SELECT 1 FROM spans s WHERE s.trace_id = t.trace_id AND s.event_name = ?)"
        )
        params.append(query.event_name)
    if query.min_duration_ns is not None:
        where.append("t.end_ns - t.start_ns >= ?")
        params.append(query.min_duration_ns)
    if query.max_duration_ns is not None:
        where.append("t.end_ns - t.start_ns <= ?")
        params.append(query.max_duration_ns)
    if query.has_errors is not None:
        where.append("t.error_count > 0" if query.has_errors else "t.error_count = 0")
    flag = _flag(_BROKEN, query.has_broken)
    if flag is not None:
        where.append(flag)
    for clause, wanted_ in (
        (_CAN_RETRY, query.has_retries),
        (_HAS_MARKER, query.has_pending),
        (_CAN_FAIL, query.has_failed),
    ):
        if wanted_:
            where.append(clause)
    return where, params


def _on_facts(query: TraceQuery) -> bool:
    return (
        query.has_retries is not None
        or query.has_pending is not None
        or (query.has_failed is not None)
    )


def search_sqlite(store: SqliteStore, query: TraceQuery, count: FactsOf) -> SearchPage:
    """One page of ``query`` over ``store`` (see ``tracebraid.store.search``)."""
    where, params = _where(query)
    before_ns, after_trace = parse_cursor(query.cursor)
    on_facts = _on_facts(query)
    hits: list[TraceHit] = []
    scanned = 0
    exhausted = False
    while len(hits) < query.limit and scanned < query.scan_limit:
        # Without filters on facts every trace the SQL finds is a hit: one batch.
        batch = query.limit - len(hits)
        if on_facts:
            batch = min(max(batch, 50), query.scan_limit - scanned)
        rows = store.query(
            f"{SUMMARY_SELECT} WHERE "
            + " AND ".join(["(t.start_ns < ? OR (t.start_ns = ? AND t.trace_id < ?))", *where])
            + " ORDER BY t.start_ns DESC, t.trace_id DESC LIMIT ?",
            [before_ns, before_ns, after_trace, *params, batch],
        )
        summaries = trace_summaries(store.query, rows)
        facts = _facts(store, [summary.trace_id for summary in summaries], count)
        for summary in summaries:
            scanned += 1
            before_ns, after_trace = summary.start_ns, summary.trace_id
            if not on_facts or wanted(query, facts[summary.trace_id]):
                hits.append(TraceHit(summary, facts[summary.trace_id]))
                if len(hits) == query.limit:
                    break
        if len(rows) < batch:
            exhausted = True
            break
    if len(hits) == query.limit:
        next_cursor: str | None = hits[-1].cursor
    else:
        next_cursor = None if exhausted else f"{before_ns}:{after_trace}"
    return SearchPage(tuple(hits), next_cursor, scanned if on_facts else None)


def _marks(ids: Sequence[str]) -> str:
    return ", ".join("?" * len(ids))


def _facts(store: SqliteStore, ids: Sequence[str], count: FactsOf) -> dict[str, TraceFacts]:
    """The facts of each trace: the analysis' counts from its spans, broken causality
    from the event index (it needs the other traces' spans)."""
    if not ids:
        return {}
    by_trace: dict[str, list[Span]] = defaultdict(list)
    for span in store.spans_of_traces([TraceId(i) for i in ids]):
        by_trace[span.trace_id].append(span)
    broken = {
        row[0]
        for row in store.query(
            f"SELECT t.trace_id FROM traces t WHERE t.trace_id IN ({_marks(ids)}) AND {_BROKEN}",
            ids,
        )
    }
    facts: dict[str, TraceFacts] = {}
    for trace_id in ids:
        own = facts_of(by_trace[trace_id], facts=count)
        facts[trace_id] = replace(own, broken=trace_id in broken)
    return facts
