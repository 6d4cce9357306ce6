"""Stock ``opentelemetry-instrumentation-aio-pika`` against the real RabbitMQ on loopback:
retries by nack/requeue, and a consumer whose producer dropped the headers. The spans
never heard of tracebraid; the analysis must still find attempts and stitch the island,
and say what it cannot know."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage
from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tracebraid.analysis import AttemptOutcome, IslandCause, WorkflowAnalysis, analyze
from tracebraid.sdk.convert import to_span

pytestmark = pytest.mark.broker

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
TIMEOUT = "TimeoutError"


@pytest.fixture
async def rabbit_analysis() -> AsyncIterator[WorkflowAnalysis]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("shop")
    instrumentor = AioPikaInstrumentor()
    # The instrumentation declares aio-pika < 10; its hooks work on the 10.x installed here.
    instrumentor.instrument(tracer_provider=provider, skip_dep_check=True)
    run = uuid.uuid4().hex[:8]
    try:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            orders = await channel.declare_exchange(f"tb-orders-{run}", auto_delete=True)
            audit = await channel.declare_exchange(f"tb-audit-{run}", auto_delete=True)
            reserve_queue = await channel.declare_queue(exclusive=True)
            audit_queue = await channel.declare_queue(exclusive=True)
            await reserve_queue.bind(orders, routing_key="reserve")
            await audit_queue.bind(audit, routing_key="audit")

            deliveries = 0
            reserved, audited = asyncio.Event(), asyncio.Event()

            async def reserve(message: AbstractIncomingMessage) -> None:
                nonlocal deliveries
                deliveries += 1
                if deliveries <= 2:
                    await message.nack(requeue=True)  # redelivered by the broker
                    raise TimeoutError("warehouse API did not answer")
                await message.ack()
                reserved.set()

            async def record(message: AbstractIncomingMessage) -> None:
                await message.ack()
                audited.set()

            await reserve_queue.consume(reserve)
            await audit_queue.consume(record)

            with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER):
                await orders.publish(
                    aio_pika.Message(b"{}", message_id="evt_r1", correlation_id="order_7"),
                    routing_key="reserve",
                )
            with (
                tracer.start_as_current_span("POST /audit", kind=SpanKind.SERVER),
                tracer.start_as_current_span(
                    f"{audit.name},audit send",
                    kind=SpanKind.PRODUCER,
                    attributes={
                        "messaging.system": "rabbitmq",
                        "messaging.destination": f"{audit.name},audit",
                        "messaging.message_id": "evt_a1",
                    },
                ),
                suppress_instrumentation(),  # this producer drops the headers
            ):
                await audit.publish(aio_pika.Message(b"{}", message_id="evt_a1"), "audit")
            await asyncio.wait_for(asyncio.gather(reserved.wait(), audited.wait()), 20)
    finally:
        instrumentor.uninstrument()
    provider.force_flush()
    yield analyze([to_span(s) for s in exporter.get_finished_spans()])
    provider.shutdown()


async def test_retries_by_requeue_are_attempts_in_start_order(
    rabbit_analysis: WorkflowAnalysis,
) -> None:
    (reserve,) = rabbit_analysis.branches_of("evt_r1")
    assert [a.outcome for a in reserve.attempts] == [
        AttemptOutcome.ERROR,
        AttemptOutcome.ERROR,
        AttemptOutcome.OK,
    ]
    assert [a.number for a in reserve.attempts] == [1, 2, 3]
    assert all(a.reported_number is None for a in reserve.attempts)
    assert reserve.attempts[0].error is not None and TIMEOUT in reserve.attempts[0].error
    assert reserve.retries == 2
    assert reserve.consumer_identified_by.value == "service+destination"
    assert reserve.producer is not None and not reserve.stitched
    assert rabbit_analysis.correlation_ids == ("order_7",)  # from the message's correlation_id


async def test_a_consumer_whose_producer_dropped_the_headers_is_stitched(
    rabbit_analysis: WorkflowAnalysis,
) -> None:
    (audit,) = rabbit_analysis.branches_of("evt_a1")
    assert audit.stitched and audit.producer is not None
    (island,) = rabbit_analysis.islands
    assert island.cause is IslandCause.STITCHED and island.event_id == "evt_a1"
    (broken,) = rabbit_analysis.breaks
    assert broken.count == 1 and broken.event_ids == ("evt_a1",)


async def test_stock_spans_say_what_they_cannot_tell(rabbit_analysis: WorkflowAnalysis) -> None:
    codes = {item.code for item in rabbit_analysis.limitations}
    assert {
        "consumer_group_unknown",
        "attempt_numbers_absent",
        "event_name_absent",
        "start_markers_absent",
    } <= codes
