"""Trace search: SQLite's pushed-down filters answer as the protocol-only search does,
and keyset paging visits every trace exactly once, newest first."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from pathlib import Path

import pytest

from tracebraid.errors import InputError
from tracebraid.model import CorrelationId, EventId, Span, SpanId, TraceId
from tracebraid.store import SpanStore, SqliteStore, TraceSummary, WriteResult
from tracebraid.store.search import (
    MAX_PAGE,
    SearchPage,
    TraceHit,
    TraceQuery,
    facts_of,
    parse_cursor,
    search_traces,
)
from tracebraid.testing.workflows import (
    DEFAULT_START_NS,
    WorkflowBuilder,
    duplicates,
    fan_in,
    islands,
    order_flow,
    spread_over_traces,
)

_MS = 1_000_000


class ProtocolOnly:
    """A ``SpanStore`` that is not a ``SqliteStore``: searched through the protocol alone."""

    def __init__(self, inner: SqliteStore) -> None:
        self.inner = inner

    def write(self, spans: list[Span]) -> WriteResult:
        return self.inner.write(spans)

    def spans_of_trace(self, trace_id: TraceId) -> list[Span]:
        return self.inner.spans_of_trace(trace_id)

    def spans_of_traces(self, trace_ids: Collection[TraceId]) -> list[Span]:
        return self.inner.spans_of_traces(trace_ids)

    def spans_of_correlation(self, correlation_id: CorrelationId) -> list[Span]:
        return self.inner.spans_of_correlation(correlation_id)

    def spans_by_event(self, event_id: EventId) -> list[Span]:
        return self.inner.spans_by_event(event_id)

    def spans_by_events(self, event_ids: Collection[EventId]) -> list[Span]:
        return self.inner.spans_by_events(event_ids)

    def spans_linking_to(self, trace_id: TraceId, span_id: SpanId) -> list[Span]:
        return self.inner.spans_linking_to(trace_id, span_id)

    def trace_ids_with(
        self,
        *,
        correlation_ids: Collection[CorrelationId] = (),
        event_ids: Collection[EventId] = (),
        link_targets: Collection[tuple[TraceId, SpanId]] = (),
    ) -> set[TraceId]:
        return self.inner.trace_ids_with(
            correlation_ids=correlation_ids, event_ids=event_ids, link_targets=link_targets
        )

    def recent_traces(self, limit: int = 50, before_ns: int | None = None) -> list[TraceSummary]:
        return self.inner.recent_traces(limit, before_ns)

    def iter_trace_ids(self) -> Iterator[TraceId]:
        return self.inner.iter_trace_ids()

    def span_count(self) -> int:
        return self.inner.span_count()

    def close(self) -> None:
        self.inner.close()


def _shapes() -> list[Span]:
    spans: list[Span] = []
    for i in range(12):
        # Pairs share a start time: paging must break the tie by trace ID.
        start = DEFAULT_START_NS + (i // 2) * 5_000 * _MS
        spans += order_flow(start_ns=start, seed=500 + i, stock=i % 3 == 0).spans
    stalled = WorkflowBuilder(correlation_id="order_stalled", seed=77)
    post = stalled.action("POST /orders", service="checkout-api", duration_ms=5)
    placed = stalled.publish(post, "order.placed", destination="orders")
    stalled.consume(placed, "award-loyalty-points", service="loyalty", in_flight=True)
    for workflow in (
        stalled.build(),
        islands(3, orphans=1),
        duplicates(),
        fan_in(4),
        spread_over_traces(3, propagate=False),
    ):
        spans += workflow.spans
    return spans


@pytest.fixture(scope="module")
def search_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteStore]:
    path: Path = tmp_path_factory.mktemp("search") / "search.db"
    with SqliteStore(path) as store:
        store.write(_shapes())
        yield store


def _every_page(store: object, query: TraceQuery) -> list[TraceHit]:
    hits: list[TraceHit] = []
    cursor: str | None = None
    for _ in range(1000):
        page: SearchPage = search_traces(store, TraceQuery(**{**_fields(query), "cursor": cursor}))  # type: ignore[arg-type]
        hits += page.hits
        cursor = page.next_cursor
        if cursor is None:
            return hits
    raise AssertionError("paging never ended")


def _fields(query: TraceQuery) -> dict[str, object]:
    return {name: getattr(query, name) for name in query.__dataclass_fields__}


QUERIES = [
    TraceQuery(),
    TraceQuery(has_retries=True),
    TraceQuery(has_retries=False),
    TraceQuery(has_pending=True),
    TraceQuery(has_errors=True),
    TraceQuery(has_broken=True),
    TraceQuery(has_broken=False, has_errors=False),
    TraceQuery(service="warehouse"),
    TraceQuery(service="summary", has_retries=True),
    TraceQuery(event_name="inventory.reserved"),
    TraceQuery(correlation_id="order_islands"),
    TraceQuery(event_id="evt_8823"),
    TraceQuery(min_duration_ns=1_000 * _MS),
    TraceQuery(max_duration_ns=100 * _MS),
    TraceQuery(since_ns=DEFAULT_START_NS + 10_000 * _MS),
]


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: repr(
    {k: v for k, v in _fields(q).items() if v is not None and k not in ("limit", "scan_limit")}
))  # fmt: skip
def test_sqlite_answers_as_the_protocol_search_does(
    search_store: SqliteStore, query: TraceQuery
) -> None:
    small = TraceQuery(**{**_fields(query), "limit": 4})
    protocol_only = ProtocolOnly(search_store)
    assert isinstance(protocol_only, SpanStore)
    in_sql = _every_page(search_store, small)
    by_protocol = _every_page(protocol_only, small)
    assert [h.summary.trace_id for h in in_sql] == [h.summary.trace_id for h in by_protocol]
    assert [h.facts for h in in_sql] == [h.facts for h in by_protocol]


def test_filters_find_what_the_shapes_hold(search_store: SqliteStore) -> None:
    every = _every_page(search_store, TraceQuery(limit=MAX_PAGE))
    broken = _every_page(search_store, TraceQuery(has_broken=True))
    assert 0 < len(broken) < len(every)
    assert all(h.facts.broken for h in broken)
    retried = _every_page(search_store, TraceQuery(has_retries=True))
    # The order flow's webhook retries twice, stock instrumentation included.
    assert {h.summary.trace_id for h in retried} >= {
        h.summary.trace_id for h in every if "order_" in "".join(h.summary.correlation_ids)
        and h.summary.root_name == "POST /orders" and "warehouse" in h.facts.services
    }  # fmt: skip
    assert all(h.facts.retries > 0 for h in retried)
    flights = _every_page(search_store, TraceQuery(has_pending=True))
    assert [h.summary.correlation_ids for h in flights] == [("order_stalled",)]
    assert flights[0].facts.in_flight == 1
    assert _every_page(search_store, TraceQuery(service="no-such-service")) == []


def test_keyset_paging_visits_every_trace_once_newest_first(search_store: SqliteStore) -> None:
    every = _every_page(search_store, TraceQuery(limit=3))
    ids = [h.summary.trace_id for h in every]
    assert len(ids) == len(set(ids)) == len(set(search_store.iter_trace_ids()))
    keys = [(h.summary.start_ns, h.summary.trace_id) for h in every]
    assert keys == sorted(keys, reverse=True)
    # Ties on the start time exist, and paging split them correctly.
    starts = [h.summary.start_ns for h in every]
    assert len(set(starts)) < len(starts)


def test_facts_of_the_order_flow() -> None:
    flow = order_flow()
    facts = facts_of(flow.spans)
    assert facts.retries == 2
    assert facts.in_flight == 0
    assert not facts.broken
    assert "warehouse" in facts.services
    assert set(facts.event_names) == set(flow.events)


@pytest.mark.parametrize("cursor", ["yesterday", "12", "-5:abc", ":abc"])
def test_a_bad_cursor_is_refused_with_what_to_pass(cursor: str) -> None:
    with pytest.raises(InputError, match="next_cursor"):
        TraceQuery(cursor=cursor)


@pytest.mark.parametrize("limit", [0, MAX_PAGE + 1])
def test_page_size_is_bounded(limit: int) -> None:
    with pytest.raises(InputError, match="limit"):
        TraceQuery(limit=limit)


def test_cursor_round_trip() -> None:
    assert parse_cursor(None) == (2**63 - 1, "")
    start, trace = parse_cursor("1767225600000000000:4bf92f3577b34da6a3ce929d0e0e4736")
    assert (start, trace) == (1767225600000000000, "4bf92f3577b34da6a3ce929d0e0e4736")
