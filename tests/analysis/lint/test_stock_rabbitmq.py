"""The lint on spans from stock ``opentelemetry-instrumentation-aio-pika`` against the real
RabbitMQ on loopback: spans that never heard of tracebraid. Requeued retries carry no
attempt numbers, consumer spans are named ``<exchange> receive``, the consumer group is
unknown, and a producer that drops the headers starts an island."""

from __future__ import annotations

import asyncio
import uuid

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

from tracebraid.analysis.lint import LintReport, lint
from tracebraid.sdk.convert import to_span

pytestmark = pytest.mark.broker

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


async def _run(run: str) -> LintReport:
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
            orders = await channel.declare_exchange(f"tb-lint-orders-{run}", auto_delete=True)
            audit = await channel.declare_exchange(f"tb-lint-audit-{run}", auto_delete=True)
            reserve_queue = await channel.declare_queue(exclusive=True)
            audit_queue = await channel.declare_queue(exclusive=True)
            await reserve_queue.bind(orders, routing_key="reserve")
            await audit_queue.bind(audit, routing_key="audit")
            deliveries = 0
            reserved, audited = asyncio.Event(), asyncio.Event()

            async def reserve(message: AbstractIncomingMessage) -> None:
                nonlocal deliveries
                deliveries += 1
                if deliveries == 1:
                    await message.nack(requeue=True)
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
    spans = [to_span(s) for s in exporter.get_finished_spans()]
    provider.shutdown()
    return lint(spans)


async def test_the_lint_reads_stock_aio_pika_spans() -> None:
    run = uuid.uuid4().hex[:8]
    report = await _run(run)
    found = {(f.rule, f.step) for f in report.findings}
    reserve_step = f"tb-lint-orders-{run} receive"
    assert ("TB101", "POST /orders") in found  # the audit publish dropped its headers
    assert ("TB601", reserve_step) in found  # a requeued retry with no attempt numbers
    assert ("TB501", reserve_step) in found  # "<exchange> receive"
    missing = next(f for f in report.findings if f.rule == "TB401" and f.step == reserve_step)
    assert "consumerName" in missing.details["missing"]
    assert "correlationId" not in missing.details["missing"]  # message.correlation_id
    naming = next(f for f in report.findings if f.rule == "TB501" and f.step == reserve_step)
    assert "verb-noun" in str(naming.details["suggestion"])
