"""The embedded store finds a span by any of its strong message identities, as the
analysis' stitching joins on any of them, so gathering a workflow pulls in the island
whose consumer shows only a Kafka offset."""

from __future__ import annotations

from pathlib import Path

from store_factories import make_span

from tracebraid.analysis import analyze
from tracebraid.model import AttributeValue, EventId, Span, SpanKind
from tracebraid.store import SqliteStore, load_workflow

_KAFKA: dict[str, AttributeValue] = {
    "messaging.system": "kafka",
    "messaging.destination.name": "orders",
    "messaging.kafka.destination.partition": 0,
    "messaging.kafka.message.offset": 42,
}
OFFSET = EventId("kafka:orders/0@42")


def _flow() -> list[Span]:
    post = make_span(name="POST /orders", kind=SpanKind.SERVER, service="api")
    publish = make_span(
        name="orders publish",
        parent=post,
        kind=SpanKind.PRODUCER,
        service="api",
        attributes={"messaging.message.id": "evt_1", "messaging.operation.type": "send",
                    **_KAFKA},
    )  # fmt: skip
    # A first delivery that kept the context and shows both identities...
    first = make_span(
        name="orders process",
        parent=publish,
        kind=SpanKind.CONSUMER,
        start_ms=5,
        service="inventory",
        attributes={"messaging.message.id": "evt_1", "messaging.operation.type": "process",
                    "messaging.consumer.group.name": "inventory", **_KAFKA},
    )  # fmt: skip
    # ...and a redelivery in a trace of its own (propagation lost) with the offset only.
    island = make_span(
        name="orders process",
        kind=SpanKind.CONSUMER,
        start_ms=50,
        service="inventory",
        attributes={"messaging.operation.type": "process",
                    "messaging.consumer.group.name": "inventory", **_KAFKA},
    )  # fmt: skip
    return [post, publish, first, island]


def test_a_span_is_found_by_every_strong_identity(tmp_path: Path) -> None:
    spans = _flow()
    with SqliteStore(tmp_path / "ids.db") as store:
        store.write(spans)
        found = {s.span_id for s in store.spans_by_events([OFFSET])}
        assert found == {spans[1].span_id, spans[2].span_id, spans[3].span_id}
        assert store.trace_ids_with(event_ids=[OFFSET]) == {s.trace_id for s in spans}


def test_gathering_from_the_island_finds_the_whole_workflow(tmp_path: Path) -> None:
    spans = _flow()
    island = spans[3]
    with SqliteStore(tmp_path / "ids.db") as store:
        store.write(spans)
        gathered = load_workflow(store, island.trace_id)
    assert {s.span_id for s in gathered} == {s.span_id for s in spans}
    [branch] = analyze(gathered).branches
    assert len(branch.attempts) == 2
