"""FastStream services instrumented with FastStream's own ``TelemetryMiddleware`` and
``TracebraidMiddleware`` (plus ``tracebraid.instrument()``) run the order flow on real
RabbitMQ, Kafka (tansu, a Kafka-protocol broker), NATS and Redis, and the workflow
analyses like the same flow on tracebraid's ``EventBus``: the same branches by step and
event name, attempts, correlation and causation chain, the stalled loyalty step in
flight; a gift card declined on every attempt fails. Without the propagator the
middleware carries nothing and the lint reports the lost correlation (TB201).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator

import pytest
import redis
from faststream_flow import FastStreamFlow, Kind
from flow_shape import ORDER, SCALE, StepShape, step_shape
from opentelemetry import propagate
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tracebraid
from tracebraid.analysis import WorkflowAnalysis, analyze, load_topology
from tracebraid.analysis.lint import lint
from tracebraid.collector.otlp import decode_protobuf
from tracebraid.demo import record_order_flow, topology_file
from tracebraid.instrument import install_propagator
from tracebraid.model import Span

pytestmark = [pytest.mark.broker, pytest.mark.slow]

RABBITMQ = "amqp://guest:guest@127.0.0.1:5672/"
NATS = "nats://127.0.0.1:4222"
REDIS = "redis://127.0.0.1:6379/9"
DESTINATIONS = ("orders", "payments", "inventory", "gift-cards")


def analysed(spans: list[Span]) -> WorkflowAnalysis:
    return analyze(spans, topology=load_topology(topology_file()))


@pytest.fixture(scope="module")
def on_event_bus() -> WorkflowAnalysis:
    _, spans = asyncio.run(record_order_flow(time_scale=SCALE, first_order=ORDER))
    return analysed(spans)


@contextlib.contextmanager
def global_propagator(on: bool) -> Iterator[None]:
    """tracebraid's propagator in OpenTelemetry's global one (or not), undone after."""
    saved = propagate.get_global_textmap()
    if on:
        install_propagator()
    try:
        yield
    finally:
        propagate.set_global_textmap(saved)


async def run_flow(kind: Kind, *, propagator: bool) -> list[Span]:
    exporter = InMemorySpanExporter()
    namespace = f"tb-integ-{uuid.uuid4().hex[:10]}."
    if kind.name == "kafka":
        await create_topics(kind.url, namespace)
    flow = FastStreamFlow(kind, exporter, namespace)
    with global_propagator(propagator):
        for provider in flow.providers.values():
            tracebraid.instrument(provider, propagator=False)
        async with flow.running():
            async with asyncio.timeout(60):
                await flow.place_order(ORDER)
                await flow.place_order(ORDER + 1)
                await flow.settled()
            await asyncio.sleep(0.4)  # past the start-marker threshold of the stalled step
            finished = exporter.get_finished_spans()
    if kind.name == "redis":
        redis.Redis.from_url(kind.url).delete(*(namespace + d for d in DESTINATIONS))
    # Through OTLP, as the collector would receive them.
    decoded = decode_protobuf(encode_spans(finished).SerializeToString())
    assert not decoded.rejections
    return list(decoded.spans)


async def create_topics(bootstrap: str, namespace: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(namespace + d, 1, 1) for d in DESTINATIONS])
    finally:
        await admin.close()


def lost_correlations(spans: list[Span]) -> list[str]:
    return [f.message for f in lint(spans).findings if f.rule == "TB201"]


def events_by_step(analysis: WorkflowAnalysis) -> dict[str, str | None]:
    return {b.step: b.event_name for b in analysis.branches}


@pytest.fixture(params=["rabbitmq", "kafka", "nats", "redis"])
def kind(request: pytest.FixtureRequest) -> Kind:
    if request.param == "kafka":
        bootstrap: str = request.getfixturevalue("kafka_bootstrap")
        return Kind("kafka", bootstrap)
    return Kind(request.param, {"rabbitmq": RABBITMQ, "nats": NATS, "redis": REDIS}[request.param])


async def test_faststream_services_analyse_like_the_event_bus(
    kind: Kind, on_event_bus: WorkflowAnalysis
) -> None:
    spans = await run_flow(kind, propagator=True)
    analysis = analysed(spans)
    shape: StepShape = step_shape(analysis)
    bus = step_shape(on_event_bus)
    assert (shape.branches, shape.causation) == (bus.branches, bus.causation)
    flow_events = events_by_step(analysis)
    assert flow_events.pop("charge-gift-card") == "gift-card.charged"
    assert flow_events == events_by_step(on_event_bus)
    assert shape.correlations == (f"order_{ORDER}", f"order_{ORDER + 1}")
    [webhook] = [b for b in analysis.branches if b.step == "send-warehouse-webhook"]
    assert [a.reported_number for a in webhook.attempts] == [None, 2, 3]
    assert [str(f.consumer).split(":")[0] for f in analysis.in_flight] == ["loyalty"]

    def pending(analysis: WorkflowAnalysis) -> list[tuple[str | None, str, str]]:
        return sorted((p.event_name, p.state.value, p.reason.value) for p in analysis.pending)

    assert pending(on_event_bus) == [("payment.authorized", "pending", "in_flight")]
    assert pending(analysis) == [
        ("gift-card.charged", "pending", "failing"),  # no deadline declared for it
        *pending(on_event_bus),
    ]
    assert lost_correlations(spans) == []
    [gift_card] = [b for b in analysis.branches if b.step == "charge-gift-card"]
    assert [a.outcome.value for a in gift_card.attempts] == ["error", "error"]
    assert gift_card.status.value == "failed"
    assert "gift card declined" in str(gift_card.attempts[-1].error)


@pytest.mark.parametrize("broker", ["nats", "kafka"])
async def test_faststream_without_the_propagator_loses_the_correlation(
    broker: str, request: pytest.FixtureRequest
) -> None:
    # On Kafka the consumer's message ID is its offset, never the producer's event ID:
    # the lint pairs them by structure (the consumer is the producer span's child).
    url = NATS if broker == "nats" else request.getfixturevalue("kafka_bootstrap")
    spans = await run_flow(Kind(broker, url), propagator=False)
    assert lost_correlations(spans)
