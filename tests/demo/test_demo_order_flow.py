"""The order flow, run for real on the in-memory broker through the SDK, has the seed's shape."""

from __future__ import annotations

import dataclasses

import pytest
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tracebraid import semconv
from tracebraid.analysis.topology import load_topology
from tracebraid.demo import (
    SERVICES,
    STALLED_STEP,
    FlowStalledError,
    OrderFlow,
    Timings,
    capture_order_flow,
    record_order_flow,
    run_order_flow,
    topology_file,
)
from tracebraid.errors import ConfigurationError
from tracebraid.model import Span, SpanKind, StatusCode
from tracebraid.sdk.broker import InMemoryBroker
from tracebraid.sdk.convert import to_span

SCALE = 0.05
EVENTS = ("order.placed", "payment.authorized", "inventory.reserved")


@pytest.fixture(scope="module")
def spans() -> list[Span]:
    return capture_order_flow(time_scale=SCALE)


def finished(spans: list[Span]) -> list[Span]:
    return [s for s in spans if s.scope != semconv.START_MARKER_SCOPE]


def markers(spans: list[Span]) -> list[Span]:
    return [s for s in spans if s.scope == semconv.START_MARKER_SCOPE]


def producer(spans: list[Span], event_name: str) -> Span:
    [span] = [
        s
        for s in spans
        if s.kind is SpanKind.PRODUCER and s.attributes[semconv.EVENT_NAME] == event_name
    ]
    return span


def consumers(spans: list[Span], step: str) -> list[Span]:
    found = [s for s in finished(spans) if s.kind is SpanKind.CONSUMER and s.name == step]
    return sorted(found, key=lambda s: s.start_ns)


def test_each_service_is_its_own_opentelemetry_service(spans: list[Span]) -> None:
    assert {s.service for s in spans} == set(SERVICES)
    assert {s.resource["service.name"] for s in spans} == set(SERVICES)
    [post] = [s for s in spans if s.kind is SpanKind.SERVER]
    assert (post.name, post.service) == ("POST /orders", "checkout-api")
    assert post.attributes["http.response.status_code"] == 201


def test_one_producer_span_per_event_with_its_own_event_id(spans: list[Span]) -> None:
    producers = [producer(spans, name) for name in EVENTS]
    ids = [p.attributes[semconv.MESSAGE_ID] for p in producers]
    assert len(set(ids)) == 3
    assert all(str(i).startswith("evt_") for i in ids)
    assert [p.service for p in producers] == ["checkout-api", "payment", "inventory"]
    assert [p.attributes[semconv.DESTINATION] for p in producers] == [
        "orders",
        "payments",
        "inventory",
    ]


def test_every_branch_has_consumer_spans_for_the_event_it_processed(spans: list[Span]) -> None:
    branches = {
        "authorize-payment": ("payment", "order.placed"),
        "reserve-inventory": ("inventory", "order.placed"),
        "project-order-summary": ("summary", "payment.authorized"),
        "send-warehouse-webhook": ("warehouse", "inventory.reserved"),
    }
    for step, (service, event_name) in branches.items():
        found = consumers(spans, step)
        assert found, step
        event_id = producer(spans, event_name).attributes[semconv.MESSAGE_ID]
        for span in found:
            assert span.service == service
            assert span.attributes[semconv.CONSUMER_GROUP] == step
            assert span.attributes[semconv.MESSAGE_ID] == event_id
            assert span.parent_span_id == producer(spans, event_name).span_id


def test_the_webhook_times_out_twice_then_succeeds_with_growing_backoff(
    spans: list[Span],
) -> None:
    attempts = consumers(spans, "send-warehouse-webhook")
    assert [a.attributes[semconv.ATTEMPT] for a in attempts] == [1, 2, 3]
    assert [a.status for a in attempts] == [StatusCode.ERROR, StatusCode.ERROR, StatusCode.UNSET]
    assert [a.attributes[semconv.OUTCOME] for a in attempts] == ["retry", "retry", "ok"]
    for failed in attempts[:2]:
        [error] = [e for e in failed.events if e.name == "exception"]
        assert error.attributes["exception.type"] == "TimeoutError"
        assert failed.duration_ns >= 0.5 * SCALE * 1e9
    timings = Timings().scaled(SCALE)
    for earlier, later, backoff in zip(
        attempts, attempts[1:], timings.warehouse_backoff, strict=False
    ):
        assert later.start_ns - earlier.end_ns >= backoff * 1e9
        assert earlier.attributes[semconv.BACKOFF_MS] == pytest.approx(backoff * 1000)
    calls = sorted(
        (s for s in finished(spans) if s.name == "call-warehouse-api"), key=lambda s: s.start_ns
    )
    assert [c.status for c in calls] == [StatusCode.ERROR, StatusCode.ERROR, StatusCode.UNSET]
    assert [c.parent_span_id for c in calls] == [a.span_id for a in attempts]


def test_every_messaging_span_carries_the_orders_correlation_id(spans: list[Span]) -> None:
    messaging = [s for s in spans if s.kind in (SpanKind.PRODUCER, SpanKind.CONSUMER)]
    assert len(messaging) == 3 + 6  # three events; 1 + 1 + 1 + 3 consumer attempts
    assert {s.attributes[semconv.CORRELATION_ID] for s in messaging} == {"order_441"}
    assert {m.attributes[semconv.CORRELATION_ID] for m in markers(spans)} == {"order_441"}


def test_causation_chains_each_follow_up_to_the_event_that_caused_it(spans: list[Span]) -> None:
    placed = producer(spans, "order.placed")
    assert semconv.CAUSATION_ID not in placed.attributes
    for follow_up in ("payment.authorized", "inventory.reserved"):
        caused = producer(spans, follow_up)
        assert caused.attributes[semconv.CAUSATION_ID] == placed.attributes[semconv.MESSAGE_ID]


def test_the_whole_workflow_is_one_trace(spans: list[Span]) -> None:
    assert len({s.trace_id for s in spans}) == 1


def test_the_summary_lags_behind_its_siblings(spans: list[Span]) -> None:
    paid = producer(spans, "payment.authorized")
    [summary] = consumers(spans, "project-order-summary")
    [loyalty_marker] = [m for m in markers(spans) if m.service == "loyalty"]
    lag = Timings().scaled(SCALE).summary_lag * 1e9
    assert summary.start_ns - paid.end_ns >= lag
    assert summary.start_ns - paid.end_ns > loyalty_marker.start_ns - paid.end_ns


def test_loyalty_is_in_flight_a_start_marker_and_no_finished_span(spans: list[Span]) -> None:
    assert consumers(spans, STALLED_STEP) == []
    [marker] = [m for m in markers(spans) if m.service == "loyalty"]
    assert marker.attributes[semconv.STEP] == STALLED_STEP
    assert (
        marker.attributes[semconv.MESSAGE_ID]
        == producer(spans, "payment.authorized").attributes[semconv.MESSAGE_ID]
    )
    announced = marker.attributes[semconv.MARKER_FOR_SPAN]
    assert announced not in {s.span_id for s in spans}
    # the SDK may defer markers, so quick work may have none; any other marker announces
    # a consumer span that finished
    others = {m.attributes[semconv.MARKER_FOR_SPAN] for m in markers(spans)} - {announced}
    assert others <= {s.span_id for s in finished(spans) if s.kind is SpanKind.CONSUMER}


async def test_several_orders_make_one_workflow_each_into_a_batch_processor() -> None:
    exporter = InMemorySpanExporter()
    processor = BatchSpanProcessor(exporter)
    async with InMemoryBroker() as broker:
        run = await run_order_flow(broker, processor, orders=3, time_scale=SCALE, first_order=10)
    spans = [to_span(s) for s in exporter.get_finished_spans()]
    assert run.correlation_ids == ("order_10", "order_11", "order_12")
    for correlation_id, trace_id in zip(run.correlation_ids, run.trace_ids, strict=True):
        workflow = [s for s in spans if s.trace_id == trace_id]
        assert {s.attributes.get(semconv.CORRELATION_ID) for s in workflow} <= {
            correlation_id,
            None,
        }
        assert len(consumers(workflow, "send-warehouse-webhook")) == 3
        # the stalled branch is in flight: started (its marker went out), never finished
        assert consumers(workflow, STALLED_STEP) == []
        assert len([m for m in markers(workflow) if m.service == "loyalty"]) == 1
    processor.shutdown()


async def test_a_mistake_is_planted_before_the_flow_starts() -> None:
    planted: list[OrderFlow] = []

    def reliable_warehouse(flow: OrderFlow) -> None:
        planted.append(flow)
        flow.warehouse_api.hangs = 0
        # and a patient caller: at this time scale the timeout is 25 ms, which a loaded
        # machine can overrun with a call that does answer
        flow.timings = dataclasses.replace(flow.timings, warehouse_timeout=5.0)

    exporter = InMemorySpanExporter()
    async with InMemoryBroker() as broker:
        await run_order_flow(broker, exporter, time_scale=SCALE, mistakes=[reliable_warehouse])
    spans = [to_span(s) for s in exporter.get_finished_spans()]
    assert len(planted) == 1
    assert [a.attributes[semconv.ATTEMPT] for a in consumers(spans, "send-warehouse-webhook")] == [
        1
    ]


async def test_a_flow_that_cannot_settle_says_which_branch_is_missing() -> None:
    def dead_warehouse(flow: OrderFlow) -> None:
        flow.warehouse_api.hangs = 99

    async with InMemoryBroker() as broker:
        with pytest.raises(FlowStalledError, match="send-warehouse-webhook") as raised:
            await run_order_flow(
                broker,
                InMemorySpanExporter(),
                time_scale=SCALE,
                first_order=5,
                mistakes=[dead_warehouse],
                timeout=0.5,
            )
        [dead] = broker.dead_letters
    assert "order_5" in str(raised.value)
    assert dead.group == "send-warehouse-webhook"


async def test_bad_arguments_are_refused_with_what_to_change() -> None:
    async with InMemoryBroker() as broker:
        with pytest.raises(ConfigurationError, match="at least 1"):
            await run_order_flow(broker, InMemorySpanExporter(), orders=0)
        with pytest.raises(ConfigurationError, match="above 0"):
            await run_order_flow(broker, InMemorySpanExporter(), time_scale=0)
        with pytest.raises(ConfigurationError, match="record_order_flow"):
            capture_order_flow()
        run, spans = await record_order_flow(broker=broker, first_order=1)
    assert run.correlation_ids == ("order_1",)
    assert len(consumers(spans, "send-warehouse-webhook")) == 3


def test_the_topology_names_exactly_the_consumers_the_flow_runs(spans: list[Span]) -> None:
    topology = load_topology(topology_file())
    expected = {
        (expectation.event_name, consumer)
        for expectation in topology.events
        for consumer in expectation.consumers
    }
    observed = {
        (s.attributes[semconv.EVENT_NAME], s.attributes[semconv.CONSUMER_GROUP])
        for s in spans
        if s.kind is SpanKind.CONSUMER or s.scope == semconv.START_MARKER_SCOPE
    }
    assert observed == expected
    # the stalled branch must still be pending (not lost) when the demo reports
    stalled = topology.expectation("payment.authorized")
    assert stalled is not None and stalled.deadline_ns is not None
    assert stalled.deadline_ns > Timings().loyalty_stall * 1e9
