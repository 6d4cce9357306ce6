"""``search_traces`` inside SQLite: every filter a WHERE clause, keyset paging, facts per page.

The traces are walked newest first along ``traces_by_start`` (whose entries end with
the trace ID, the table's key, so (start, trace ID) is one ordered index); each
filter on spans is an ``EXISTS`` over the trace's own key range, or an ``IN`` over
the correlation and event indexes. The facts shown per hit are computed for the
page's traces only, five grouped queries per page.

Definitions are those of ``tracebraid.store.search.facts_of``; the store tests check
that both answer alike.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from tracebraid.model import SpanKind
from tracebraid.semconv import START_MARKER_SCOPE
from tracebraid.store._lookups import SUMMARY_SELECT, trace_summaries
from tracebraid.store.search import SearchPage, TraceFacts, TraceHit, TraceQuery, parse_cursor
from tracebraid.store.sqlite import SqliteStore

__all__ = ["search_sqlite"]

_CONSUMER, _PRODUCER = int(SpanKind.CONSUMER), int(SpanKind.PRODUCER)
_MARKER = f"'{START_MARKER_SCOPE}'"  # a constant of ours, never user input

_RETRIED = f"""EXISTS (SELECT 1 FROM spans s WHERE s.trace_id = t.trace_id
    AND s.kind = {_CONSUMER} AND s.event_id IS NOT NULL AND s.scope <> {_MARKER}
    GROUP BY s.event_id, coalesce(s.consumer, s.service)
    HAVING count(*) > 1 OR max(coalesce(s.attempt, 1)) > 1)"""

_IN_FLIGHT = f"""EXISTS (SELECT 1 FROM spans m WHERE m.trace_id = t.trace_id
    AND m.scope = {_MARKER} AND NOT EXISTS (SELECT 1 FROM spans p
        WHERE p.trace_id = m.trace_id AND p.span_id = m.parent_span_id))"""

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
    before_ns, after_trace = parse_cursor(query.cursor)
    where = ["(t.start_ns < ? OR (t.start_ns = ? AND t.trace_id < ?))"]
    params: list[Any] = [before_ns, before_ns, after_trace]
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
    for clause, wanted in (
        (_RETRIED, query.has_retries),
        (_IN_FLIGHT, query.has_pending),
        (_BROKEN, query.has_broken),
    ):
        flag = _flag(clause, wanted)
        if flag is not None:
            where.append(flag)
    return where, params


def search_sqlite(store: SqliteStore, query: TraceQuery) -> SearchPage:
    """One page of ``query`` over ``store`` (see ``tracebraid.store.search``)."""
    where, params = _where(query)
    rows = store.query(
        f"{SUMMARY_SELECT} WHERE {' AND '.join(where)} "
        "ORDER BY t.start_ns DESC, t.trace_id DESC LIMIT ?",
        [*params, query.limit],
    )
    summaries = trace_summaries(store.query, rows)
    facts = _facts(store, [summary.trace_id for summary in summaries])
    hits = tuple(TraceHit(summary, facts[summary.trace_id]) for summary in summaries)
    next_cursor = hits[-1].cursor if len(hits) == query.limit else None
    return SearchPage(hits, next_cursor, None)


def _marks(ids: Sequence[str]) -> str:
    return ", ".join("?" * len(ids))


def _facts(store: SqliteStore, ids: Sequence[str]) -> dict[str, TraceFacts]:
    if not ids:
        return {}
    marks = _marks(ids)
    services: dict[str, list[str]] = defaultdict(list)
    for trace_id, service in store.query(
        f"SELECT DISTINCT trace_id, service FROM spans WHERE trace_id IN ({marks}) "
        "ORDER BY trace_id, service",
        ids,
    ):
        services[trace_id].append(service)
    names: dict[str, list[str]] = defaultdict(list)
    for trace_id, name in store.query(
        f"SELECT DISTINCT trace_id, event_name FROM spans WHERE trace_id IN ({marks}) "
        "AND event_name IS NOT NULL AND event_name <> '' ORDER BY trace_id, event_name",
        ids,
    ):
        names[trace_id].append(name)
    retries = dict(
        store.query(
            "SELECT trace_id, sum(r) FROM (SELECT trace_id, "
            "max(count(*) - 1, max(coalesce(attempt, 1)) - 1, 0) AS r FROM spans "
            f"WHERE trace_id IN ({marks}) AND kind = {_CONSUMER} AND event_id IS NOT NULL "
            f"AND scope <> {_MARKER} GROUP BY trace_id, event_id, coalesce(consumer, service)) "
            "GROUP BY trace_id",
            ids,
        )
    )
    in_flight = dict(
        store.query(
            f"SELECT m.trace_id, count(*) FROM spans m WHERE m.trace_id IN ({marks}) "
            f"AND m.scope = {_MARKER} AND NOT EXISTS (SELECT 1 FROM spans p "
            "WHERE p.trace_id = m.trace_id AND p.span_id = m.parent_span_id) GROUP BY m.trace_id",
            ids,
        )
    )
    broken = {
        row[0]
        for row in store.query(
            f"SELECT t.trace_id FROM traces t WHERE t.trace_id IN ({marks}) AND {_BROKEN}", ids
        )
    }
    return {
        trace_id: TraceFacts(
            services=tuple(services[trace_id]),
            event_names=tuple(names[trace_id]),
            retries=int(retries.get(trace_id) or 0),
            in_flight=int(in_flight.get(trace_id) or 0),
            broken=trace_id in broken,
        )
        for trace_id in ids
    }
