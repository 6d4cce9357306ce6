"""Search stored traces by what operators filter on, newest first, a page at a time.

``search_traces(store, query)`` answers one page of a ``TraceQuery``: traces that
carry a service, an event name, a correlation or event ID, that retried, hold work
in flight, failed branches, errors or broken causality, or lasted within a range.
On ``SqliteStore`` every filter runs inside SQLite (those on the facts below keep
the traces that can match, and the facts decide) and paging is keyset paging on
(start time, trace ID), so page 1,000 costs what page 1 costs and nothing is held
between requests.
Other stores are searched through the ``SpanStore`` protocol alone (recent traces,
then their spans), scanning at most ``TraceQuery.scan_limit`` traces per page.

What each fact means here, per trace: what the workflow view's analysis says for
the same spans. The store sits below the analysis, so the counts come from a
``FactsOf`` function the caller passes (the views pass the analysis' own,
``tracebraid.views.counts.analysed_counts``, so the list and the workflow page cannot
disagree); without one, the store's own reading (``tracebraid.store._facts``: the
vocabulary's views under the analysis' rules for the common shapes) stands in:

- **retries**: attempts that followed a failed attempt of the same branch (one
  message at one consumer), as the analysis counts them;
- **failed**: branches whose last attempt failed, or that gave their message up;
- **duplicates**: processings after a success (an idempotency hazard);
- **in flight** (``has_pending``): a start marker whose span has not arrived;
  branches that never started at all need the expected consumers, so only the
  analysis (``tracebraid pending``, the workflow view) finds those;
- **broken**: a consumer span that begins a trace (no parent, no links) for an
  event a producer span in another trace published: the island, and the trace
  whose publish lost its context, are both broken;
- **errors** (``has_errors``, the summary's ``error_count``): spans with an ERROR
  status, the raw signal: a failed attempt retried to success is an error span in a
  healthy workflow, so the list shows failed branches rather than errors.

Example::

    >>> from tracebraid.store import SqliteStore
    >>> page = search_traces(SqliteStore(":memory:"), TraceQuery(has_errors=True))
    >>> page.hits, page.next_cursor
    ((), None)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TypeAlias

from tracebraid.errors import InputError
from tracebraid.messaging import MessagingView, Role, is_start_marker, normalize
from tracebraid.model import EventId, Span, TraceId
from tracebraid.store._facts import BranchFacts, branch_facts
from tracebraid.store.base import SpanStore, TraceSummary
from tracebraid.store.sqlite import SqliteStore

__all__ = [
    "MAX_PAGE",
    "BranchFacts",
    "FactsOf",
    "SearchPage",
    "TraceFacts",
    "TraceHit",
    "TraceQuery",
    "facts_of",
    "parse_cursor",
    "search_traces",
    "wanted",
]

MAX_PAGE = 200
"""The largest page a search returns."""
_NO_CURSOR = (2**63 - 1, "")


@dataclass(frozen=True, slots=True)
class TraceQuery:
    """What to look for; every filter given must hold (``None``: not filtered on).

    ``cursor`` is a page's ``next_cursor``: the next page starts after it.
    """

    service: str | None = None
    event_name: str | None = None
    correlation_id: str | None = None
    event_id: str | None = None
    has_retries: bool | None = None
    has_pending: bool | None = None
    has_errors: bool | None = None
    has_broken: bool | None = None
    has_failed: bool | None = None
    min_duration_ns: int | None = None
    max_duration_ns: int | None = None
    since_ns: int | None = None
    cursor: str | None = None
    limit: int = 50
    scan_limit: int = 2000
    """Stores without SQL search: traces examined per page at most."""

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PAGE:
            raise InputError(f"limit must be between 1 and {MAX_PAGE}, not {self.limit}")
        parse_cursor(self.cursor)


@dataclass(frozen=True, slots=True)
class TraceFacts:
    """What one trace shows at a glance (definitions in the module docstring)."""

    services: tuple[str, ...]
    event_names: tuple[str, ...]
    retries: int
    in_flight: int
    broken: bool
    failed: int = 0
    duplicates: int = 0


@dataclass(frozen=True, slots=True)
class TraceHit:
    """One trace found: its summary and its facts."""

    summary: TraceSummary
    facts: TraceFacts

    @property
    def cursor(self) -> str:
        """Where the page after this trace starts."""
        return f"{self.summary.start_ns}:{self.summary.trace_id}"


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of hits, newest first; ``next_cursor`` is ``None`` on the last page.

    ``scanned`` is how many traces were examined by a store without SQL search (which
    may return fewer hits than the limit before the end: keep paging); ``None`` when
    the store filtered in place.
    """

    hits: tuple[TraceHit, ...]
    next_cursor: str | None
    scanned: int | None


def parse_cursor(cursor: str | None) -> tuple[int, str]:
    """``"<start_ns>:<trace_id>"`` as a tuple; ``InputError`` for anything else."""
    if not cursor:
        return _NO_CURSOR
    start, sep, trace_id = cursor.partition(":")
    try:
        value = int(start)
    except ValueError:
        value = -1
    if not sep or value < 0:
        raise InputError(
            f"bad cursor {cursor!r}: pass back a page's next_cursor unchanged, "
            "or leave it out for the newest traces"
        )
    return value, trace_id


FactsOf: TypeAlias = Callable[[Sequence[Span]], BranchFacts]
"""Counts the branches of one trace's spans: retries, failed, duplicates, in flight."""


def search_traces(
    store: SpanStore, query: TraceQuery, *, facts: FactsOf = branch_facts
) -> SearchPage:
    """One page of traces matching ``query``, newest first (see the module docstring);
    ``facts`` counts each hit's branches (and decides the filters on them)."""
    if isinstance(store, SqliteStore):
        from tracebraid.store._search_sql import search_sqlite

        return search_sqlite(store, query, facts)
    return _search_any(store, query, facts)


# -- the protocol-only search (and the definitions' reference) -----------------------


def facts_of(
    spans: Sequence[Span], foreign: Iterable[Span] = (), *, facts: FactsOf = branch_facts
) -> TraceFacts:
    """The facts of one trace's ``spans``; ``foreign`` are other traces' spans that share
    event IDs with it (needed to tell broken causality); ``facts`` counts the branches."""
    services = sorted({s.service for s in spans})
    names = sorted({n for s in spans if (n := normalize(s).event_name)})
    branches = facts(spans)
    return TraceFacts(
        services=tuple(services),
        event_names=tuple(names),
        retries=branches.retries,
        in_flight=branches.in_flight,
        broken=_broken(spans, foreign),
        failed=branches.failed,
        duplicates=branches.duplicates,
    )


def _broken(spans: Sequence[Span], foreign: Iterable[Span]) -> bool:
    trace = spans[0].trace_id if spans else None
    others = [(s, normalize(s)) for s in foreign if s.trace_id != trace]
    produced_elsewhere = {v.event_id for _, v in others if v.role is Role.PRODUCER and v.event_id}
    islands_elsewhere = {v.event_id for s, v in others if _island_root(s, v) and v.event_id}
    for span in spans:
        view = normalize(span)
        if (_island_root(span, view) and view.event_id in produced_elsewhere) or (
            view.role is Role.PRODUCER and view.event_id in islands_elsewhere
        ):
            return True
    return False


def _island_root(span: Span, view: MessagingView) -> bool:
    return (
        view.role is Role.CONSUMER
        and span.parent_span_id is None
        and not span.links
        and not is_start_marker(span)
    )


def _event_ids(span: Span) -> tuple[str | None, str | None]:
    view = normalize(span)
    return view.event_id, view.causation_id


def wanted(query: TraceQuery, facts: TraceFacts) -> bool:
    """Whether ``facts`` pass the query's filters on facts (retries, in flight, failed)."""
    return (
        (query.has_retries is None or (facts.retries > 0) == query.has_retries)
        and (query.has_pending is None or (facts.in_flight > 0) == query.has_pending)
        and (query.has_failed is None or (facts.failed > 0) == query.has_failed)
    )


def _matches(
    query: TraceQuery,
    summary: TraceSummary,
    spans: Sequence[Span],
    facts: TraceFacts,
) -> bool:
    """Every filter but ``has_broken``, which needs other traces (checked last)."""
    duration = summary.end_ns - summary.start_ns
    checks = (
        query.service is None or query.service in facts.services,
        query.event_name is None or query.event_name in facts.event_names,
        query.correlation_id is None or query.correlation_id in summary.correlation_ids,
        query.event_id is None or any(query.event_id in _event_ids(s) for s in spans),
        wanted(query, facts),
        query.has_errors is None or (summary.error_count > 0) == query.has_errors,
        query.min_duration_ns is None or duration >= query.min_duration_ns,
        query.max_duration_ns is None or duration <= query.max_duration_ns,
    )
    return all(checks)


def _search_any(store: SpanStore, query: TraceQuery, count: FactsOf) -> SearchPage:
    before_ns, after_trace = parse_cursor(query.cursor)
    hits: list[TraceHit] = []
    scanned = 0
    last: TraceSummary | None = None
    while scanned < query.scan_limit and len(hits) < query.limit:
        # recent_traces is "before", exclusive: + 1 keeps ties with the cursor's start.
        batch = store.recent_traces(
            min(200, query.scan_limit - scanned), min(before_ns + 1, _NO_CURSOR[0])
        )
        batch = [
            s
            for s in batch
            if (s.start_ns, s.trace_id) < (before_ns, after_trace or "\uffff")
            and (query.since_ns is None or s.start_ns >= query.since_ns)
        ]
        if not batch:
            last = None
            break
        spans = store.spans_of_traces([s.trace_id for s in batch])
        by_trace: dict[TraceId, list[Span]] = defaultdict(list)
        for span in spans:
            by_trace[span.trace_id].append(span)
        last = batch[-1]
        for summary in batch:
            scanned += 1
            before_ns, after_trace = summary.start_ns, summary.trace_id
            own = by_trace[summary.trace_id]
            facts = facts_of(own, facts=count)
            if not _matches(query, summary, own, facts):
                continue
            # Broken causality needs the other traces sharing its events: asked last.
            events = {EventId(e) for s in own if (e := _event_ids(s)[0])}
            foreign = store.spans_by_events(events) if events else []
            facts = replace(facts, broken=_broken(own, foreign))
            if query.has_broken is None or facts.broken == query.has_broken:
                hits.append(TraceHit(summary, facts))
                if len(hits) == query.limit:
                    break
    next_cursor = None if last is None else f"{before_ns}:{after_trace}"
    return SearchPage(tuple(hits), next_cursor, scanned)
