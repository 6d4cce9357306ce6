"""The SpanStore contract, run on every store: SQLite, ClickHouse three ways, and remote.

``chdb`` is chDB in-process after ``tracebraid migrate``; ``chdb-plain`` an
``otel_traces`` table with only the exporter's own tables, so each look-up also
proves its scanning fallback answers exactly what the indexed path answers;
``clickhouse-http`` the same engine through clickhouse-connect over HTTP, the
backend a server or cluster uses; ``remote`` a ``RemoteStore`` reading a SQLite
store through a real collector's API on loopback (its writes go to that store
directly, so a span's resource is kept exactly as the test wrote it: through OTLP it
would gain a ``service.name``; ``RemoteStore.write`` is tested in test_store_remote).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import cast

import pytest
from clickhouse_engine import chdb_store
from clickhouse_http import clickhouse_http
from workflow_fleet import CountingStore, build_fleet

from tracebraid import semconv
from tracebraid.messaging import normalize
from tracebraid.model import (
    CorrelationId,
    EventId,
    Span,
    SpanEvent,
    SpanId,
    SpanKind,
    SpanLink,
    StatusCode,
    TraceId,
)
from tracebraid.semconv import first_of
from tracebraid.store.aggregates import FleetAggregates, nearest_rank
from tracebraid.store.base import SpanStore, WriteResult
from tracebraid.store.remote import RemoteStore
from tracebraid.store.sqlite import SqliteStore
from tracebraid.store.workflow import load_workflow
from tracebraid.testing import running_collector

STORES = ["sqlite", "chdb", "chdb-plain", "clickhouse-http", "remote"]
T0 = 1_760_000_000_000_000_000  # a fixed wall-clock origin, in ns
MS = 1_000_000


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SpanStore]:
    if request.param == "sqlite":
        sqlite = SqliteStore(tmp_path / "spans.db")
        yield sqlite
        sqlite.close()
        return
    if request.param == "remote":
        backing = SqliteStore(tmp_path / "spans.db")
        with running_collector(backing) as url:
            remote = _RemoteReads(url, backing)
            yield remote
            remote.close()
        backing.close()
        return
    if request.param == "clickhouse-http":
        with clickhouse_http() as port, chdb_store(migrated=True, http_port=port) as server:
            yield server
        return
    with chdb_store(migrated=request.param == "chdb") as clickhouse:
        yield clickhouse


def _hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(digits * 4) | 1:0{digits}x}"


def trace_id(rng: random.Random) -> TraceId:
    return TraceId(_hex(rng, 32))


def span_id(rng: random.Random) -> SpanId:
    return SpanId(_hex(rng, 16))


def rich_span(rng: random.Random, trace: TraceId, start_ns: int, **changes: object) -> Span:
    """A span using every field and every attribute type."""
    fields: dict[str, object] = {
        "trace_id": trace,
        "span_id": span_id(rng),
        "parent_span_id": span_id(rng),
        "name": "reserve-inventory",
        "kind": SpanKind.CONSUMER,
        "start_ns": start_ns,
        "end_ns": start_ns + rng.randrange(1, 500) * MS,
        "service": "inventory",
        "status": StatusCode.ERROR,
        "status_message": "TimeoutError: warehouse did not answer",
        "attributes": {
            "messaging.system": "rabbitmq",
            "messaging.message.id": f"evt_{rng.randrange(10**6)}",
            "tracebraid.attempt": 2,
            "tracebraid.dead_letter": False,
            "tracebraid.backoff_ms": 200.5,
            "retry.delays": (100, 200),
            "retry.ratios": (0.5, 1.25),
            "flags": (True, False),
            "tags": ("a", "b,c", 'quote"d'),
            "empty": (),
            "unicode": "zürich ✓",
        },
        "events": (
            SpanEvent("exception", start_ns + MS, {"exception.type": "TimeoutError", "n": 3}),
            SpanEvent(
                "tracebraid.started", start_ns, {"tracebraid.marker.span_id": "00f067aa0ba902b7"}
            ),
        ),
        "links": (
            SpanLink(trace_id(rng), span_id(rng), {"messaging.message.id": "evt_1"}),
            SpanLink(trace_id(rng), span_id(rng)),
        ),
        "resource": {"service.name": "inventory", "service.instance.id": "i-1", "pid": 42},
        "scope": "tracebraid",
    }
    fields.update(changes)
    return Span(**fields)  # type: ignore[arg-type]


def test_round_trip_keeps_every_field(store: SpanStore) -> None:
    rng = random.Random(1)
    trace = trace_id(rng)
    root = rich_span(
        rng,
        trace,
        T0,
        parent_span_id=None,
        kind=SpanKind.SERVER,
        status=StatusCode.OK,
        status_message="",
        attributes={},
        events=(),
        links=(),
        resource={},
        scope="",
    )
    spans = [root] + [
        rich_span(rng, trace, T0 + i * MS, parent_span_id=root.span_id) for i in range(1, 4)
    ]
    assert store.write(spans).inserted == len(spans)
    assert store.spans_of_trace(trace) == sorted(spans, key=lambda s: (s.start_ns, s.span_id))


def test_every_kind_and_status_round_trips(store: SpanStore) -> None:
    rng = random.Random(2)
    trace = trace_id(rng)
    spans = [
        rich_span(rng, trace, T0 + (i * len(StatusCode) + j) * MS, kind=kind, status=status)
        for i, kind in enumerate(SpanKind)
        for j, status in enumerate(StatusCode)
    ]
    store.write(spans)
    stored = store.spans_of_trace(trace)
    assert [(s.kind, s.status) for s in stored] == [(s.kind, s.status) for s in spans]


def test_writing_twice_stores_once(store: SpanStore) -> None:
    rng = random.Random(3)
    trace = trace_id(rng)
    spans = [rich_span(rng, trace, T0 + i * MS) for i in range(5)]
    first = store.write(spans)
    replay = store.write([*spans[2:], spans[2]])  # a replay, with a copy inside the batch
    mixed = store.write([spans[0], rich_span(rng, trace, T0 + 9 * MS)])
    assert (first.inserted, first.duplicates) == (5, 0)
    assert (replay.inserted, replay.duplicates) == (0, 4)
    assert (mixed.inserted, mixed.duplicates) == (1, 1)
    assert store.span_count() == 6
    assert len(store.spans_of_trace(trace)) == 6
    assert store.recent_traces()[0].span_count == 6


def test_empty_store_answers_empty(store: SpanStore) -> None:
    rng = random.Random(4)
    assert store.write([]).inserted == 0
    assert store.span_count() == 0
    assert store.recent_traces() == []
    assert list(store.iter_trace_ids()) == []
    assert store.spans_of_trace(trace_id(rng)) == []
    assert store.spans_of_correlation(CorrelationId("order_0")) == []
    assert store.spans_by_event(EventId("evt_0")) == []
    assert store.spans_linking_to(trace_id(rng), span_id(rng)) == []
    assert store.spans_by_events([EventId("evt_0"), EventId("evt_1")]) == []
    assert store.spans_by_events([]) == []
    assert store.trace_ids_with() == set()
    assert (
        store.trace_ids_with(
            correlation_ids=[CorrelationId("order_0")],
            event_ids=[EventId("evt_0")],
            link_targets=[(trace_id(rng), span_id(rng))],
        )
        == set()
    )


def test_spans_of_correlation_across_traces_and_convention_generations(store: SpanStore) -> None:
    rng = random.Random(5)
    wanted, other = "order_441", "order_442"
    current = [
        rich_span(
            rng,
            trace_id(rng),
            T0 + i * MS,
            attributes={"messaging.message.conversation_id": wanted},
        )
        for i in range(3)
    ]
    older = rich_span(
        rng, trace_id(rng), T0 + 10 * MS, attributes={"messaging.conversation_id": wanted}
    )
    noise = [
        rich_span(
            rng,
            current[0].trace_id,
            T0 + 20 * MS,
            attributes={"messaging.message.conversation_id": other},
        ),
        rich_span(rng, current[0].trace_id, T0 + 21 * MS, attributes={"note": wanted}),
    ]
    store.write([*noise, older, *current])
    assert store.spans_of_correlation(CorrelationId(wanted)) == [*current, older]
    assert store.spans_of_correlation(CorrelationId(other)) == noise[:1]


def test_spans_by_event_finds_producers_consumers_and_effects(store: SpanStore) -> None:
    rng = random.Random(6)
    trace = trace_id(rng)
    event = "evt_8821"
    producer = rich_span(
        rng, trace, T0, kind=SpanKind.PRODUCER, attributes={"messaging.message.id": event}
    )
    attempts = [
        rich_span(
            rng,
            trace,
            T0 + (i + 1) * MS,
            attributes={"messaging.message.id": event, "tracebraid.attempt": i + 1},
        )
        for i in range(3)
    ]
    older = rich_span(rng, trace_id(rng), T0 + 5 * MS, attributes={"messaging.message_id": event})
    effect = rich_span(
        rng,
        trace,
        T0 + 6 * MS,
        kind=SpanKind.PRODUCER,
        attributes={"messaging.message.id": "evt_8822", "tracebraid.causation_id": event},
    )
    unrelated = rich_span(rng, trace, T0 + 7 * MS, attributes={"messaging.message.id": "evt_9"})
    store.write([unrelated, effect, older, *attempts, producer])
    assert store.spans_by_event(EventId(event)) == [producer, *attempts, older, effect]
    assert store.spans_by_event(EventId("evt_8822")) == [effect]


def test_spans_linking_to_matches_trace_and_span(store: SpanStore) -> None:
    rng = random.Random(7)
    target = rich_span(rng, trace_id(rng), T0, links=())
    same_span_other_trace = SpanLink(trace_id(rng), target.span_id)
    holders = [
        rich_span(
            rng,
            trace_id(rng),
            T0 + (i + 1) * MS,
            links=(
                SpanLink(trace_id(rng), span_id(rng)),
                SpanLink(target.trace_id, target.span_id, {"i": i}),
            ),
        )
        for i in range(2)
    ]
    decoy = rich_span(rng, trace_id(rng), T0 + 5 * MS, links=(same_span_other_trace,))
    store.write([decoy, target, *holders])
    assert store.spans_linking_to(target.trace_id, target.span_id) == holders
    assert store.spans_linking_to(decoy.trace_id, decoy.span_id) == []


# -- batch look-ups: many keys, one round trip, the same answers as one key at a time ----


def _keyed_fleet(rng: random.Random) -> dict[str, list[Span]]:
    """Spans found by correlation, event, causation and link, and spans that must not be."""
    target = rich_span(rng, trace_id(rng), T0, links=(), attributes={})
    spans = {
        "target": [target],
        "correlated": [
            rich_span(rng, trace_id(rng), T0 + MS, attributes={f"{key}": "order_1"})
            for key in ("messaging.message.conversation_id", "messaging.conversation_id")
        ],
        "published": [
            rich_span(
                rng,
                trace_id(rng),
                T0 + 2 * MS,
                kind=SpanKind.PRODUCER,
                attributes={"messaging.message.id": "evt_1"},
            )
        ],
        "consumed": [
            rich_span(rng, trace_id(rng), T0 + 3 * MS, attributes={"messaging.message_id": "evt_2"})
        ],
        "caused": [  # event ID evt_3, caused by evt_1: found by either
            rich_span(
                rng,
                trace_id(rng),
                T0 + 4 * MS,
                attributes={"messaging.message.id": "evt_3", "tracebraid.causation_id": "evt_1"},
            )
        ],
        "linking": [
            rich_span(
                rng,
                trace_id(rng),
                T0 + 5 * MS,
                links=(SpanLink(trace_id(rng), span_id(rng)), SpanLink(*target.key)),
            )
        ],
        "decoys": [
            rich_span(
                rng, trace_id(rng), T0 + 6 * MS, links=(SpanLink(trace_id(rng), target.span_id),)
            ),
            rich_span(rng, trace_id(rng), T0 + 7 * MS, attributes={"note": "evt_1 order_1"}),
            rich_span(
                rng, trace_id(rng), T0 + 8 * MS, attributes={"messaging.message.id": "evt_9"}
            ),
        ],
    }
    return spans


def _ids(*groups: list[Span]) -> set[TraceId]:
    return {span.trace_id for group in groups for span in group}


def test_spans_by_events_answers_what_spans_by_event_does(store: SpanStore) -> None:
    fleet = _keyed_fleet(random.Random(16))
    store.write([span for spans in fleet.values() for span in spans])
    events = [EventId(e) for e in ("evt_1", "evt_2", "evt_3", "evt_404")]
    one_by_one = {span.key: span for event in events for span in store.spans_by_event(event)}
    found = store.spans_by_events(events)
    assert found == sorted(one_by_one.values(), key=lambda s: (s.start_ns, s.trace_id, s.span_id))
    assert found == [*fleet["published"], *fleet["consumed"], *fleet["caused"]]  # each once
    assert store.spans_by_events({EventId("evt_2")}) == fleet["consumed"]


def test_a_span_is_found_by_every_strong_message_identity(store: SpanStore) -> None:
    """As the messaging vocabulary reads them: a Kafka offset beside a message ID, a
    CloudEvents ID; on producer and consumer spans only; a weak Kafka key never finds."""
    rng = random.Random(21)
    kafka = {
        "messaging.destination.name": "orders",
        "messaging.kafka.destination.partition": "0",
        "messaging.kafka.message.offset": "42",
        "messaging.kafka.message.key": "customer-7",
    }
    both = rich_span(
        rng,
        trace_id(rng),
        T0,
        links=(),
        events=(),
        attributes={"messaging.message.id": "evt_k", **kafka},
    )
    offset_only = rich_span(rng, trace_id(rng), T0 + MS, links=(), events=(), attributes=kafka)
    cloud = rich_span(
        rng,
        trace_id(rng),
        T0 + 2 * MS,
        links=(),
        events=(),
        attributes={"cloudevents.event_id": "ce_9"},
    )
    internal = rich_span(
        rng,
        trace_id(rng),
        T0 + 3 * MS,
        links=(),
        events=(),
        kind=SpanKind.INTERNAL,
        attributes={"messaging.message.id": "evt_k"},
    )
    store.write([both, offset_only, cloud, internal])  # fmt: skip

    def found(event: str) -> list[SpanId]:  # a store may read the offsets back as numbers
        return [s.span_id for s in store.spans_by_events({EventId(event)})]

    assert found("kafka:orders/0@42") == [both.span_id, offset_only.span_id]
    assert found("evt_k") == [both.span_id]
    assert found("ce_9") == [cloud.span_id]
    assert found("customer-7") == []
    assert store.trace_ids_with(event_ids={EventId("kafka:orders/0@42")}) == {
        both.trace_id,
        offset_only.trace_id,
    }


def test_trace_ids_with_each_key_and_every_key_at_once(store: SpanStore) -> None:
    fleet = _keyed_fleet(random.Random(17))
    store.write([span for spans in fleet.values() for span in spans])
    correlations = [CorrelationId("order_1")]
    events = [EventId("evt_1"), EventId("evt_2")]
    targets = [fleet["target"][0].key]
    assert store.trace_ids_with(correlation_ids=correlations) == _ids(fleet["correlated"])
    assert store.trace_ids_with(event_ids=events) == _ids(
        fleet["published"], fleet["consumed"], fleet["caused"]
    )
    assert store.trace_ids_with(event_ids=[EventId("evt_3")]) == _ids(fleet["caused"])
    assert store.trace_ids_with(link_targets=targets) == _ids(fleet["linking"])
    everything = store.trace_ids_with(
        correlation_ids=correlations, event_ids=events, link_targets=targets
    )
    assert everything == _ids(
        *(spans for name, spans in fleet.items() if name not in ("target", "decoys"))
    )
    linked = fleet["linking"][0]
    assert store.trace_ids_with(link_targets=[(linked.trace_id, linked.span_id)]) == set()


def test_trace_ids_with_thousands_of_keys(store: SpanStore) -> None:
    rng = random.Random(18)
    fleet = _keyed_fleet(rng)
    store.write([span for spans in fleet.values() for span in spans])
    target = fleet["target"][0]
    targets = [(trace_id(rng), span_id(rng)) for _ in range(1500)] + [target.key]
    events = [EventId(f"evt_{i}") for i in range(1000, 3500)] + [EventId("evt_2")]
    found = store.trace_ids_with(event_ids=events, link_targets=targets)
    assert found == _ids(fleet["linking"], fleet["consumed"])
    assert store.spans_by_events(events) == fleet["consumed"]


def test_a_replayed_span_is_found_by_its_first_links_only(store: SpanStore) -> None:
    rng = random.Random(19)
    first, other = (rich_span(rng, trace_id(rng), T0 + i * MS, links=()) for i in range(2))
    holder = rich_span(rng, trace_id(rng), T0 + 5 * MS, links=(SpanLink(*first.key),))
    replay = dataclasses.replace(holder, links=(SpanLink(*other.key),))
    store.write([first, other, holder])
    store.write([replay, rich_span(rng, holder.trace_id, T0 + 6 * MS, links=())])
    assert store.trace_ids_with(link_targets=[first.key]) == {holder.trace_id}
    assert store.trace_ids_with(link_targets=[other.key]) == set()
    assert store.spans_linking_to(*other.key) == []


def test_load_workflow_alike_on_every_store(store: SpanStore) -> None:
    fleet = build_fleet()
    for spans in vars(fleet).values():
        store.write(spans)
    counting = CountingStore(store)
    for key in ("order_1", "evt_3", fleet.island[0].trace_id):
        assert load_workflow(cast(SpanStore, counting), key) == fleet.order_1
    assert load_workflow(cast(SpanStore, counting), "order_2") == sorted(
        fleet.order_2 + fleet.batch, key=lambda s: (s.start_ns, s.trace_id, s.span_id)
    )
    # The closure's rounds use the batch look-ups only.
    assert set(counting.calls) == {"spans_of_traces", "trace_ids_with"}


def _traces(rng: random.Random, count: int) -> list[list[Span]]:
    traces = []
    for i in range(count):
        trace = trace_id(rng)
        start = T0 + i * 7 * MS
        root = rich_span(
            rng,
            trace,
            start + MS,
            parent_span_id=None,
            name=f"POST /orders/{i}",
            service=f"api-{i % 3}",
            status=StatusCode.OK,
            attributes={"messaging.message.conversation_id": f"order_{i}"},
        )
        # A child that starts before its root (clock skew) and one that ends last.
        early = rich_span(
            rng,
            trace,
            start,
            parent_span_id=root.span_id,
            attributes={"messaging.conversation_id": f"wf_{i % 2}"},
        )
        late = rich_span(
            rng,
            trace,
            start + 2 * MS,
            parent_span_id=root.span_id,
            end_ns=start + 60 * MS,
            status=StatusCode.ERROR,
        )
        traces.append([root, early, late][: 1 + i % 3])
    return traces


def test_recent_traces_newest_first_with_summaries(store: SpanStore) -> None:
    rng = random.Random(8)
    traces = _traces(rng, 7)
    store.write([span for trace in traces for span in trace])
    summaries = store.recent_traces(limit=10)
    assert [s.trace_id for s in summaries] == [t[0].trace_id for t in reversed(traces)]
    for summary, spans in zip(summaries, reversed(traces), strict=True):
        root = spans[0]
        assert (summary.root_name, summary.root_service) == (root.name, root.service)
        assert summary.start_ns == min(s.start_ns for s in spans)
        assert summary.end_ns == max(s.end_ns for s in spans)
        assert summary.span_count == len(spans)
        assert summary.error_count == sum(s.failed for s in spans)
        found = (first_of(s.attributes, semconv.CORRELATION_ID) for s in spans)
        correlations = {str(value) for value in found if value is not None}
        assert set(summary.correlation_ids) == correlations


def test_recent_traces_pages_with_before_ns(store: SpanStore) -> None:
    rng = random.Random(9)
    traces = _traces(rng, 11)
    store.write([span for trace in traces for span in trace])
    newest_first = [t[0].trace_id for t in reversed(traces)]
    pages: list[TraceId] = []
    before: int | None = None
    while True:
        page = store.recent_traces(limit=4, before_ns=before)
        assert len(page) <= 4
        if not page:
            break
        pages.extend(summary.trace_id for summary in page)
        before = page[-1].start_ns
    assert pages == newest_first
    assert store.recent_traces(limit=0) == []


def test_recent_traces_reaches_far_back(store: SpanStore) -> None:
    rng = random.Random(10)
    hour = 3_600_000 * MS
    spans = [
        rich_span(rng, trace_id(rng), T0 - days * 24 * hour, parent_span_id=None)
        for days in (0, 1, 30, 400)
    ]
    store.write(spans)
    assert [s.trace_id for s in store.recent_traces(limit=3)] == [s.trace_id for s in spans[:3]]
    assert [s.trace_id for s in store.recent_traces(before_ns=T0 - hour)] == [
        s.trace_id for s in spans[1:]
    ]


def test_iter_trace_ids_and_span_count(store: SpanStore) -> None:
    rng = random.Random(11)
    traces = _traces(rng, 9)
    spans = [span for trace in traces for span in trace]
    store.write(spans[: len(spans) // 2])
    store.write(spans[len(spans) // 3 :])
    assert sorted(store.iter_trace_ids()) == sorted(t[0].trace_id for t in traces)
    assert store.span_count() == len(spans)


# -- fleet aggregates: every store that offers them gives the same numbers ----------------


def _delivery_scenario(rng: random.Random) -> tuple[list[Span], dict[str, list[int]]]:
    """Producers on two destinations, consumers with known attempts and waits."""
    spans: list[Span] = []
    waits: dict[str, list[int]] = {"orders": [], "payments": []}
    for i in range(12):
        trace = trace_id(rng)
        destination = "orders" if i % 3 else "payments"
        producer_end = T0 + i * 100 * MS
        producer = rich_span(
            rng,
            trace,
            producer_end - 2 * MS,
            end_ns=producer_end,
            parent_span_id=None,
            kind=SpanKind.PRODUCER,
            service="checkout",
            links=(),
            attributes={
                "messaging.message.id": f"evt_{i}",
                "messaging.destination.name": destination,
                "messaging.message.conversation_id": f"order_{i}",
            },
        )
        spans.append(producer)
        wait = rng.randrange(0, 50) * MS
        waits[destination].append(wait)
        for attempt in range(1, 2 + i % 3):
            spans.append(
                rich_span(
                    rng,
                    trace,
                    producer_end + wait + (attempt - 1) * 10 * MS,
                    parent_span_id=producer.span_id,
                    service="inventory",
                    links=(),
                    status=StatusCode.ERROR if attempt < 1 + i % 3 else StatusCode.OK,
                    attributes={
                        "messaging.message.id": f"evt_{i}",
                        "messaging.consumer.group.name": "reserve-inventory",
                        "messaging.message.conversation_id": f"order_{i}",
                        "tracebraid.attempt": attempt,
                    },
                )
            )
    return spans, waits


class _RemoteReads(RemoteStore):
    """Reads through the collector's API; writes straight into the store it serves."""

    def __init__(self, url: str, backing: SqliteStore) -> None:
        super().__init__(url)
        self.backing = backing

    def write(self, spans: Sequence[Span]) -> WriteResult:
        return self.backing.write(spans)


def _aggregates(store: SpanStore) -> FleetAggregates:
    if isinstance(store, RemoteStore):
        pytest.skip("fleet aggregates run as a store's own SQL; a remote store reads spans")
    if isinstance(store, SqliteStore):
        from tracebraid.store.aggregates_sqlite import SqliteAggregates

        return SqliteAggregates(store)
    assert isinstance(store, FleetAggregates)
    return store


def test_retry_counts_per_consumer(store: SpanStore) -> None:
    spans, _ = _delivery_scenario(random.Random(12))
    store.write(spans)
    store.write(spans[:5])  # replays never count twice
    [counts] = _aggregates(store).retry_counts()
    consumer_spans = [s for s in spans if s.kind is SpanKind.CONSUMER]
    deliveries = {s.attributes["messaging.message.id"] for s in consumer_spans}
    assert counts.consumer == "reserve-inventory"
    assert counts.deliveries == len(deliveries)
    assert counts.attempts == len(consumer_spans)
    assert counts.retries == len(consumer_spans) - len(deliveries)
    # A failed attempt is the vocabulary's: these spans' exception events make all fail.
    assert counts.failed_attempts == sum(normalize(s).outcome.failed for s in consumer_spans)
    assert counts.max_attempts == max(
        int(s.attributes["tracebraid.attempt"])  # type: ignore[arg-type]
        for s in consumer_spans
    )


def test_queue_wait_percentiles_per_destination(store: SpanStore) -> None:
    spans, waits = _delivery_scenario(random.Random(13))
    store.write(spans)
    result = {w.destination: w for w in _aggregates(store).queue_wait_percentiles()}
    assert set(result) == set(waits)
    for destination, values in waits.items():
        ordered = sorted(values)
        row = result[destination]
        assert row.deliveries == len(values)
        assert (row.p50_ns, row.p90_ns, row.p99_ns, row.max_ns) == (
            nearest_rank(ordered, 0.5),
            nearest_rank(ordered, 0.9),
            nearest_rank(ordered, 0.99),
            ordered[-1],
        )


def test_islands_per_service(store: SpanStore) -> None:
    rng = random.Random(14)
    spans: list[Span] = []
    for i in range(5):  # producer in one trace, consumer starting a new trace: an island
        producer = rich_span(
            rng,
            trace_id(rng),
            T0 + i * MS,
            parent_span_id=None,
            kind=SpanKind.PRODUCER,
            links=(),
            attributes={"messaging.message.id": f"evt_{i}"},
        )
        consumer = rich_span(
            rng,
            trace_id(rng),
            T0 + i * MS + 5,
            parent_span_id=None,
            service="summary",
            links=(),
            attributes={"messaging.message.id": f"evt_{i}"},
        )
        spans += [producer, consumer]
    linked = rich_span(
        rng,
        trace_id(rng),
        T0,
        parent_span_id=None,
        service="summary",
        attributes={"messaging.message.id": "evt_0"},
    )  # links: not broken
    orphan = rich_span(
        rng,
        trace_id(rng),
        T0,
        parent_span_id=None,
        service="summary",
        links=(),
        attributes={"messaging.message.id": "evt_unknown"},
    )
    store.write([*spans, linked, orphan])
    [row] = _aggregates(store).islands_per_service()
    assert (row.service, row.consumer_roots, row.islands) == ("summary", 7, 5)


def test_recent_workflows_with_filters(store: SpanStore) -> None:
    spans, _ = _delivery_scenario(random.Random(15))
    store.write(spans)
    aggregates = _aggregates(store)
    workflows = aggregates.recent_workflows(limit=5)
    by_id: dict[str, list[Span]] = {}
    for span in spans:
        by_id.setdefault(str(span.attributes["messaging.message.conversation_id"]), []).append(span)
    newest = sorted(by_id, key=lambda c: min(s.start_ns for s in by_id[c]), reverse=True)
    assert [w.correlation_id for w in workflows] == newest[:5]
    for workflow in workflows:
        members = by_id[workflow.correlation_id]
        assert workflow.span_count == len(members)
        assert workflow.trace_count == len({s.trace_id for s in members})
        assert workflow.error_count == sum(s.failed for s in members)
        assert workflow.end_ns == max(s.end_ns for s in members)
        assert workflow.services == tuple(sorted({s.service for s in members}))
    retried = aggregates.recent_workflows(limit=50, retried_only=True)
    assert {w.correlation_id for w in retried} == {
        c
        for c, members in by_id.items()
        if any(int(s.attributes.get("tracebraid.attempt", 1)) > 1 for s in members)  # type: ignore[arg-type]
    }
    page = aggregates.recent_workflows(limit=50, before_ns=workflows[-1].start_ns)
    assert [w.correlation_id for w in page] == newest[5:]
    assert aggregates.recent_workflows(service="nobody") == []
