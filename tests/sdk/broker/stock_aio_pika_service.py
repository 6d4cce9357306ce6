"""A shipping service instrumented only with the stock opentelemetry-instrumentation-aio-pika.

It knows nothing of tracebraid: plain aio-pika, plain AMQP properties, and
``AioPikaInstrumentor`` for its spans. It runs in a process of its own because the
instrumentor patches aio-pika for the whole process (the tracebraid service beside it
must not be patched). Run by the interop test::

    python stock_aio_pika_service.py URL ORDERS_EXCHANGE INVENTORY_EXCHANGE SPANS_FILE

It binds a queue to INVENTORY_EXCHANGE, prints ``ready``, places an order (a SERVER
span that publishes to ORDERS_EXCHANGE), waits for one message on its queue, writes
its spans to SPANS_FILE as one OTLP protobuf ``ExportTraceServiceRequest``, prints
``done`` and exits.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aio_pika
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

ORDER_EVENT_ID = "evt_stock_900"
ORDER_CORRELATION_ID = "order_900"


async def run(url: str, orders: str, inventory: str, spans_file: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "shipping"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # aio-pika 10 is newer than the instrumentation declares; its API is what it patches.
    AioPikaInstrumentor().instrument(tracer_provider=provider, skip_dep_check=True)
    tracer = provider.get_tracer("shipping")
    received = asyncio.Event()

    async def on_reserved(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            received.set()

    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        stock = await channel.declare_exchange(
            inventory, aio_pika.ExchangeType.FANOUT, durable=True
        )
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(stock)
        await queue.consume(on_reserved)
        print("ready", flush=True)
        with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER):
            exchange = await channel.get_exchange(orders)
            order = aio_pika.Message(
                b'{"order_id":"order_900"}',
                message_id=ORDER_EVENT_ID,
                correlation_id=ORDER_CORRELATION_ID,
            )
            await exchange.publish(order, routing_key="")
        async with asyncio.timeout(10):
            await received.wait()
    provider.force_flush()
    spans_file.write_bytes(encode_spans(exporter.get_finished_spans()).SerializeToString())
    print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])))
