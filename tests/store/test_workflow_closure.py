"""load_workflow: one workflow's spans across stitched traces, links and correlation IDs."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from store_factories import consumer, make_span, producer, trace_of
from workflow_fleet import Fleet, build_fleet

from tracebraid.model import CorrelationId, EventId, SpanKind, TraceId
from tracebraid.store import SqliteStore, fetch_workflow, load_workflow
from tracebraid.store.workflow import WorkflowClosure, keys_of


@pytest.fixture
def fleet() -> Fleet:
    return build_fleet()


@pytest.fixture
def store(fleet: Fleet) -> Iterator[SqliteStore]:
    with SqliteStore(":memory:") as opened:
        for spans in vars(fleet).values():
            opened.write(spans)
        yield opened


@pytest.mark.parametrize(
    "key",
    ["order_1", "evt_1", "evt_3", "trace of checkout", "trace of island"],
)
def test_every_key_of_the_workflow_loads_all_of_it(
    store: SqliteStore, fleet: Fleet, key: str
) -> None:
    if key.startswith("trace of "):
        key = getattr(fleet, key.removeprefix("trace of "))[0].trace_id
    assert load_workflow(store, key) == fleet.order_1


def test_a_batch_consumer_does_not_merge_another_order_in(store: SqliteStore, fleet: Fleet) -> None:
    found = fetch_workflow(store, "order_1")
    trace_ids = {span.trace_id for span in found.spans}
    assert fleet.batch[0].trace_id in trace_ids
    assert fleet.order_2[0].trace_id not in trace_ids
    assert found.correlation_ids == ("order_1",)
    assert not found.truncated
    assert load_workflow(store, "order_2") == sorted(
        fleet.order_2 + fleet.batch, key=lambda s: (s.start_ns, s.trace_id, s.span_id)
    )


def test_without_correlation_ids_links_and_events_still_stitch() -> None:
    # Stock OpenTelemetry: no correlation anywhere, one event ID, one link.
    published = producer(None, "evt_1")
    island = consumer(None, "evt_1", "summary", start_ms=5)
    fan_in = consumer(None, "batch", "reporting", start_ms=9, links=(island,))
    with SqliteStore(":memory:") as store:
        store.write([published, island, fan_in, *trace_of(2)])
        assert load_workflow(store, published.trace_id) == [published, island, fan_in]


def test_an_unknown_key_is_an_empty_workflow(store: SqliteStore) -> None:
    assert load_workflow(store, "order_404") == []
    assert load_workflow(store, "f" * 32) == []


def test_the_closure_stops_at_its_bound_and_says_so(
    store: SqliteStore, fleet: Fleet, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="tracebraid.store.workflow"):
        found = fetch_workflow(store, "order_1", max_traces=2)
    assert found.truncated
    assert len(found.trace_ids) == 2
    assert len({span.trace_id for span in found.spans}) == 2
    assert "more than 2 traces" in caplog.text
    assert load_workflow(store, "order_1", max_traces=5) == fleet.order_1


# -- the pure parts -------------------------------------------------------------------


def test_keys_of_reads_every_convention_generation() -> None:
    target = make_span()
    # A consumer span: the vocabulary reads a message's identities on messaging spans only.
    span = make_span(
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.conversation_id": "order_1",
            "messaging.message_id": "evt_1",
            "tracebraid.causation_id": "evt_0",
        },
        links=(target,),
    )
    keys = keys_of([span])
    assert keys.trace_ids == {span.trace_id, target.trace_id}
    assert keys.correlation_ids == {CorrelationId("order_1")}
    assert keys.event_ids == {EventId("evt_1"), EventId("evt_0")}
    assert keys.link_targets == {span.key}


def test_closure_follows_each_key_once_and_respects_the_bound() -> None:
    closure = WorkflowClosure(correlation_ids=frozenset({CorrelationId("order_1")}), max_traces=3)
    ids = [TraceId(f"{i:032x}") for i in range(1, 6)]
    assert closure.to_fetch(ids[:2]) == ids[:2]
    assert closure.to_fetch(ids[:2]) == []
    assert closure.to_fetch(ids) == ids[2:3]
    assert closure.truncated
    published = producer(None, "evt_1", correlation_id="order_1")
    closure = WorkflowClosure(correlation_ids=frozenset())
    assert closure.to_fetch([published.trace_id]) == [published.trace_id]
    first = closure.admit({published.trace_id: [published]})
    again = closure.admit({published.trace_id: [published]})
    assert first.event_ids == {EventId("evt_1")}
    assert first.correlation_ids == {CorrelationId("order_1")}
    assert first.trace_ids == frozenset()  # already fetched
    assert closure.correlation_ids == {CorrelationId("order_1")}  # adopted from the trace
    assert not again


def test_a_trace_of_only_other_correlations_is_a_neighbour() -> None:
    closure = WorkflowClosure(correlation_ids=frozenset({CorrelationId("order_1")}))
    mine = producer(None, "evt_1", correlation_id="order_1")
    theirs = producer(None, "evt_2", correlation_id="order_2")
    silent = producer(None, "evt_3")
    assert closure.belongs([mine])
    assert closure.belongs([silent])
    assert not closure.belongs([theirs])
    assert closure.belongs([theirs, mine])
    assert WorkflowClosure(correlation_ids=frozenset()).belongs([theirs])
