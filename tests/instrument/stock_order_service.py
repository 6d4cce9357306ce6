"""One service of the seed's order flow, written with a plain client and its stock
OpenTelemetry instrumentation, plus the five-line ``tracebraid.instrument()`` start-up.

It knows nothing of tracebraid's ``EventBus``: plain aio-pika, aiokafka or
confluent-kafka, messages that are binary-mode CloudEvents (the ``cloudevents`` SDK's
RabbitMQ and Kafka bindings, so ``ce-type`` names the event), and the client's stock
OpenTelemetry instrumentor for its spans. Each service runs in a process of its own, as in
production (the instrumentors patch the client process-wide, and each service has its
own ``service.name``)::

    python stock_order_service.py SYSTEM SERVICE BROKER NAMESPACE SPANS_FILE SCALE PROPAGATOR

SYSTEM is ``aio-pika``, ``aiokafka`` or ``confluent-kafka``; PROPAGATOR ``on`` or ``off``
(the processor alone). It prints ``ready``, then one line per business step that
finished (``done STEP ORDER``; the stalled loyalty step prints ``started``). Reading
``order N`` on stdin, checkout-api places order N; ``stop`` writes the finished spans
(OTLP protobuf) to SPANS_FILE, prints ``stopped`` and exits at once, work in flight and
all.

The flow and its delays are ``tracebraid.demo.order_flow``'s: payment and inventory
consume ``order.placed``; summary (lagging) and loyalty (stalling) ``payment.authorized``;
warehouse ``inventory.reserved``, whose API call times out twice and succeeds on the
third attempt after the back-off, redelivered by the broker (RabbitMQ: a quorum queue's
``reject(requeue=True)``; Kafka: ``seek`` back to the record's offset).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.bindings import rabbitmq as ce_rabbitmq
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tracebraid
from tracebraid.demo.order_flow import STALLED_STEP, Timings, WarehouseApi

WIRE = JSONFormat()
Handler = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Consumer:
    destination: str
    step: str
    handle: Handler
    lag: float = 0.0
    backoff: tuple[float, ...] = ()


def say(*words: object) -> None:
    print(*words, flush=True)


class Service:
    def __init__(self, name: str, namespace: str, timings: Timings, transport: Transport) -> None:
        self.name = name
        self.namespace = namespace
        self.timings = timings
        self.transport = transport
        self.warehouse = WarehouseApi(timings.warehouse_call)

    def consumers(self) -> list[Consumer]:
        t = self.timings
        return {
            "payment": [Consumer("orders", "authorize-payment", self.authorize_payment)],
            "inventory": [Consumer("orders", "reserve-inventory", self.reserve_inventory)],
            "summary": [
                Consumer("payments", "project-order-summary", self.summarise, lag=t.summary_lag)
            ],
            "loyalty": [Consumer("payments", STALLED_STEP, self.award_points)],
            "warehouse": [
                Consumer(
                    "inventory",
                    "send-warehouse-webhook",
                    self.send_webhook,
                    backoff=t.warehouse_backoff,
                )
            ],
        }.get(self.name, [])

    async def publish(self, event_type: str, destination: str, body: dict[str, Any]) -> None:
        event = CloudEvent(
            {"type": event_type, "source": f"/{self.name}", "datacontenttype": "application/json"},
            body,
        )
        await self.transport.publish(self.namespace + destination, event)

    async def place_order(self, number: int) -> None:
        order_id = f"order_{number}"
        tracer = trace.get_tracer("checkout-api")
        with (
            tracebraid.correlation(order_id),
            tracer.start_as_current_span(
                "POST /orders",
                kind=trace.SpanKind.SERVER,
                attributes={"http.request.method": "POST", "http.route": "/orders"},
            ),
        ):
            await asyncio.sleep(self.timings.checkout)
            body = {"order_id": order_id, "items": [{"sku": "sku-42", "quantity": 2}]}
            await self.publish("order.placed", "orders", body)
        say("placed", number)

    async def authorize_payment(self, order: dict[str, Any]) -> None:
        await asyncio.sleep(self.timings.payment)
        await self.publish("payment.authorized", "payments", {"order_id": order["order_id"]})

    async def reserve_inventory(self, order: dict[str, Any]) -> None:
        await asyncio.sleep(self.timings.inventory)
        await self.publish("inventory.reserved", "inventory", {"order_id": order["order_id"]})

    async def summarise(self, order: dict[str, Any]) -> None:
        await asyncio.sleep(self.timings.summary)

    async def award_points(self, order: dict[str, Any]) -> None:
        say("started", STALLED_STEP, order["order_id"])
        await asyncio.sleep(self.timings.loyalty_stall)

    async def send_webhook(self, order: dict[str, Any]) -> None:
        async with asyncio.timeout(self.timings.warehouse_timeout):
            await self.warehouse.notify(str(order["order_id"]))


class Transport:
    async def start(self, service: Service) -> None:
        raise NotImplementedError

    async def publish(self, destination: str, event: CloudEvent) -> None:
        raise NotImplementedError


async def run_handler(consumer: Consumer, body: bytes, attempt: int) -> None:
    """The business step; a failure waits out the back-off before the broker redelivers."""
    order = json.loads(body)
    try:
        await consumer.handle(order)
    except Exception:
        if attempt - 1 < len(consumer.backoff):
            await asyncio.sleep(consumer.backoff[attempt - 1])
        raise
    if consumer.step != STALLED_STEP:
        say("done", consumer.step, order["order_id"])


class AioPika(Transport):
    def __init__(self, url: str) -> None:
        self.url = url

    async def start(self, service: Service) -> None:
        import aio_pika

        self.connection = await aio_pika.connect(self.url)
        self.channel = await self.connection.channel()
        self.exchanges: dict[str, Any] = {}
        for name in ("orders", "payments", "inventory"):
            full = service.namespace + name
            self.exchanges[full] = await self.channel.declare_exchange(
                full, aio_pika.ExchangeType.FANOUT, auto_delete=True
            )
        for consumer in service.consumers():
            queue = await self.channel.declare_queue(
                f"{service.namespace}{consumer.destination}:{consumer.step}",
                durable=True,
                arguments={"x-queue-type": "quorum", "x-expires": 60_000},
            )
            await queue.bind(self.exchanges[service.namespace + consumer.destination])
            await queue.consume(self.callback(consumer))

    def callback(self, consumer: Consumer) -> Callable[[Any], Awaitable[None]]:
        attempts: dict[str, int] = {}

        async def on_message(message: Any) -> None:
            async with message.process(requeue=True, ignore_processed=True):
                await asyncio.sleep(consumer.lag)
                key = str(message.headers.get("ce-id"))
                attempts[key] = attempts.get(key, 0) + 1
                await run_handler(consumer, message.body, attempts[key])

        return on_message

    async def publish(self, destination: str, event: CloudEvent) -> None:
        import aio_pika

        wire = ce_rabbitmq.to_binary(event, WIRE)
        message = aio_pika.Message(
            wire.body,
            headers=dict(wire.headers),
            content_type=wire.content_type,
            message_id=event.get_id(),  # AMQP's own message ID is the event's
        )
        await self.exchanges[destination].publish(message, routing_key="")


class AioKafka(Transport):
    def __init__(self, servers: str) -> None:
        self.servers = servers

    async def start(self, service: Service) -> None:
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

        self.producer = AIOKafkaProducer(bootstrap_servers=self.servers)
        await self.producer.start()
        self.tasks = []
        for consumer in service.consumers():
            client = AIOKafkaConsumer(
                service.namespace + consumer.destination,
                bootstrap_servers=self.servers,
                group_id=f"{service.namespace}{consumer.step}",
                auto_offset_reset="earliest",
                enable_auto_commit=False,
            )
            await client.start()
            self.tasks.append(asyncio.create_task(self.loop(client, consumer)))

    async def loop(self, client: Any, consumer: Consumer) -> None:
        from aiokafka import TopicPartition

        attempts: dict[tuple[int, int], int] = {}
        while True:
            record = await client.getone()  # the stock instrumentation's span ends here
            await asyncio.sleep(consumer.lag)
            key = (record.partition, record.offset)
            attempts[key] = attempts.get(key, 0) + 1
            try:
                await run_handler(consumer, record.value, attempts[key])
            except Exception:
                # Kafka keeps no delivery count: read the same record again.
                client.seek(TopicPartition(record.topic, record.partition), record.offset)
                continue
            await client.commit()

    async def publish(self, destination: str, event: CloudEvent) -> None:
        wire = ce_kafka.to_binary(event, WIRE)
        await self.producer.send_and_wait(
            destination, wire.value, headers=list(wire.headers.items())
        )


class ConfluentKafka(Transport):
    """confluent-kafka: a blocking client, so each consumer polls in a thread of its own
    and runs the business step there (its instrumentation keeps the consumer span open
    and current until the next poll)."""

    def __init__(self, servers: str) -> None:
        self.servers = servers

    async def start(self, service: Service) -> None:
        import threading

        from confluent_kafka import Producer

        self.producer = Producer({"bootstrap.servers": self.servers, "linger.ms": 0})
        ready = []
        for consumer in service.consumers():
            subscribed = threading.Event()
            thread = threading.Thread(
                target=self.loop, args=(service, consumer, subscribed), daemon=True
            )
            thread.start()
            ready.append(subscribed)
        for subscribed in ready:
            await asyncio.to_thread(subscribed.wait)

    def loop(self, service: Service, consumer: Consumer, subscribed: Any) -> None:
        import time

        from confluent_kafka import Consumer as KafkaConsumer
        from confluent_kafka import TopicPartition

        client = KafkaConsumer(
            {
                "bootstrap.servers": self.servers,
                "group.id": f"{service.namespace}{consumer.step}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                # A test's short-lived group: rebalance and fetch without the defaults' waits.
                "session.timeout.ms": 6000,
                "heartbeat.interval.ms": 500,
                "fetch.wait.max.ms": 50,
                "topic.metadata.refresh.interval.ms": 1000,
            }
        )
        client.subscribe([service.namespace + consumer.destination])
        subscribed.set()
        attempts: dict[tuple[int, int], int] = {}
        while True:
            record = client.poll(0.1)  # the stock instrumentation's span stays open
            if record is None or record.error():
                continue
            time.sleep(consumer.lag)
            key = (record.partition(), record.offset())
            attempts[key] = attempts.get(key, 0) + 1
            try:
                asyncio.run(run_handler(consumer, record.value(), attempts[key]))
            except Exception:
                # Kafka keeps no delivery count: read the same record again.
                client.seek(TopicPartition(record.topic(), record.partition(), record.offset()))
                continue
            client.commit(record, asynchronous=False)

    async def publish(self, destination: str, event: CloudEvent) -> None:
        wire = ce_kafka.to_binary(event, WIRE)
        self.producer.produce(destination, wire.value, headers=list(wire.headers.items()))
        self.producer.flush()


async def main(
    system: str, name: str, broker: str, namespace: str, spans_file: Path, scale: float, on: bool
) -> None:
    # A failed attempt is the flow's business (the broker redelivers it), not log noise.
    logging.getLogger("aio_pika").setLevel(logging.CRITICAL)
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: None)
    exporter = InMemorySpanExporter()
    # -- the service's start-up: its own provider, then the five-line tracebraid path --
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    tracebraid.instrument(propagator=on)
    transport: Transport
    if system == "aio-pika":
        from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor

        AioPikaInstrumentor().instrument(skip_dep_check=True)
        transport = AioPika(broker)
    elif system == "aiokafka":
        from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor

        AIOKafkaInstrumentor().instrument()
        transport = AioKafka(broker)
    else:
        from opentelemetry.instrumentation.confluent_kafka import ConfluentKafkaInstrumentor

        ConfluentKafkaInstrumentor().instrument()
        transport = ConfluentKafka(broker)
    service = Service(name, namespace, Timings().scaled(scale), transport)
    await transport.start(service)
    say("ready")
    orders = set()
    while True:
        line = (await asyncio.to_thread(sys.stdin.readline)).split()
        if not line or line[0] == "stop":
            break
        if line[0] == "order":
            orders.add(asyncio.create_task(service.place_order(int(line[1]))))
    provider.force_flush()
    spans_file.write_bytes(encode_spans(exporter.get_finished_spans()).SerializeToString())
    say("stopped")
    os._exit(0)  # as if the process died: work in flight stays unfinished


if __name__ == "__main__":
    system, name, broker, namespace, spans_file, scale, propagator = sys.argv[1:8]
    asyncio.run(
        main(system, name, broker, namespace, Path(spans_file), float(scale), propagator == "on")
    )
