"""One workflow recorded by stock ``opentelemetry-instrumentation-aio-pika`` against the real
RabbitMQ on loopback: spans that never heard of tracebraid.

``POST /orders`` publishes ``evt_r1`` (correlation ``order_7`` as the AMQP
``correlation_id``) to a reserve queue whose consumer nacks with requeue ``failures``
times, raising ``TimeoutError``, before it acks. An audit event ``evt_a1`` is published
by a producer that drops the headers, so its consumer starts a new trace (an island);
``audit_inside_order`` puts that publish inside ``POST /orders`` rather than in a
``POST /audit`` request of its own.
"""

from __future__ import annotations

import asyncio

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Tracer

from tracebraid.model import Span
from tracebraid.sdk.convert import to_span

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


async def record_stock_workflow(
    prefix: str, run: str, *, failures: int, audit_inside_order: bool
) -> list[Span]:
    """Run the workflow above on exchanges ``{prefix}-orders-{run}``, ``{prefix}-audit-{run}``."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("shop")
    instrumentor = AioPikaInstrumentor()
    # The instrumentation declares aio-pika < 10; its hooks work on the 10.x installed here.
    instrumentor.instrument(tracer_provider=provider, skip_dep_check=True)
    try:
        async with await aio_pika.connect(AMQP_URL) as connection:
            channel = await connection.channel()
            orders = await channel.declare_exchange(f"{prefix}-orders-{run}", auto_delete=True)
            audit = await channel.declare_exchange(f"{prefix}-audit-{run}", auto_delete=True)
            reserve_queue = await channel.declare_queue(exclusive=True)
            audit_queue = await channel.declare_queue(exclusive=True)
            await reserve_queue.bind(orders, routing_key="reserve")
            await audit_queue.bind(audit, routing_key="audit")
            deliveries = 0
            reserved, audited = asyncio.Event(), asyncio.Event()

            async def reserve(message: AbstractIncomingMessage) -> None:
                nonlocal deliveries
                deliveries += 1
                if deliveries <= failures:
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
                if audit_inside_order:
                    await _publish_audit_without_headers(tracer, audit)
            if not audit_inside_order:
                with tracer.start_as_current_span("POST /audit", kind=SpanKind.SERVER):
                    await _publish_audit_without_headers(tracer, audit)
            await asyncio.wait_for(asyncio.gather(reserved.wait(), audited.wait()), 20)
    finally:
        instrumentor.uninstrument()
    provider.force_flush()
    spans = [to_span(s) for s in exporter.get_finished_spans()]
    provider.shutdown()
    return spans


async def _publish_audit_without_headers(
    tracer: Tracer, audit: aio_pika.abc.AbstractExchange
) -> None:
    with (
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
