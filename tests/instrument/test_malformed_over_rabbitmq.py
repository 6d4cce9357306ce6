"""A malformed tracebraid or CloudEvents header never reaches a stock consume loop: the
message is processed, the consumer span keeps what was readable, and ``NoParent(reason)``
says why there is no parent. Real RabbitMQ, the stock aio-pika instrumentation (patched
for this test only, then removed) and ``tracebraid.instrument()``."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator

import aio_pika
import pytest
from opentelemetry import propagate
from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import tracebraid
from tracebraid import semconv
from tracebraid.sdk.broker.rabbitmq import DEFAULT_RABBITMQ_URL
from tracebraid.sdk.stock import Received, received

pytestmark = pytest.mark.broker


@contextlib.contextmanager
def stock_service() -> Iterator[InMemorySpanExporter]:
    """aio-pika instrumented as a stock service is, with tracebraid.instrument(); undone after."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    saved = propagate.get_global_textmap()
    tracebraid.instrument(provider)
    instrumentor = AioPikaInstrumentor()
    instrumentor.instrument(tracer_provider=provider, skip_dep_check=True)
    try:
        yield exporter
    finally:
        instrumentor.uninstrument()
        propagate.set_global_textmap(saved)
        provider.shutdown()


MALFORMED = {
    "tracebraid-headers": {
        "traceparent": "00-garbage-01",
        "x-event-id": "evt_bad",
        "x-correlation-id": bytearray(b"\xff\xfe"),  # AMQP byte array, not UTF-8
        "x-attempt": "zero",
    },
    "cloudevents-headers": {
        "ce-specversion": "1.0",
        "ce-id": "evt_bad",
        "ce-type": "order.placed",
        "ce-source": "/checkout",
        "ce-traceparent": "00-garbage-01",
        "ce-correlationid": bytearray(b"\xc3\x28"),
    },
}


@pytest.mark.parametrize("style", sorted(MALFORMED))
async def test_a_malformed_header_is_processed_with_what_was_readable(style: str) -> None:
    seen: list[tuple[Received | None, tracebraid.Processing | None]] = []
    with stock_service() as exporter:
        connection = await aio_pika.connect(DEFAULT_RABBITMQ_URL)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(f"tb-adopt-{uuid.uuid4().hex[:10]}", exclusive=True)
            done = asyncio.Event()

            async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                async with message.process():
                    seen.append((received(), tracebraid.current_processing()))
                    done.set()

            await queue.consume(on_message)
            # Published below the instrumentation, as a foreign producer would send it.
            underlay = await channel.get_underlay_channel()
            await underlay.basic_publish(
                b"{}",
                routing_key=queue.name,
                properties=aio_pika.Message(b"", headers=MALFORMED[style]).properties,
            )
            async with asyncio.timeout(10):
                await done.wait()
    [(incoming, processing)] = seen
    assert incoming is not None and incoming.extracted.no_parent is not None
    assert "garbage" in incoming.extracted.no_parent.reason
    assert incoming.extracted.problems  # the unreadable correlation ID, said why
    assert processing is not None and processing.event_id == "evt_bad"
    assert processing.correlation_id is None
    [consumer] = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CONSUMER]
    assert consumer.attributes is not None
    assert consumer.attributes[semconv.MESSAGE_ID] == "evt_bad"
    assert consumer.parent is None  # no parent invented
