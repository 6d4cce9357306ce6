"""The seed's order flow as six FastStream services on one real broker, each with its own
``TracerProvider``, FastStream's ``TelemetryMiddleware`` and ``TracebraidMiddleware``.

Events fan out as on tracebraid's ``EventBus``: RabbitMQ fanout exchanges with a queue
per step, Kafka topics with a consumer group per step, NATS subjects with a queue group
per step, Redis streams with a group per step. Each message names its event in ``x-event-name``. The
warehouse webhook's call times out twice; the handler sends the same message again
after the flow's back-off (``x-attempt`` + 1) and fails the attempt. Order 442 is paid
by a gift card that is declined on both attempts: a final failure.

Example::

    flow = FastStreamFlow(RABBITMQ, exporter, namespace="tb-integ-1a2b.")
    async with flow.running():
        await flow.place_order(441)
        await flow.settled()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from faststream import Context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tracebraid
from tracebraid.demo.order_flow import SERVICES, SETTLED_STEPS, STALLED_STEP, Timings
from tracebraid.integrations.faststream import TracebraidMiddleware

SCALE = 0.1
MESSAGE = Context("message")  # FastStream injects the message being handled
Handler = Callable[..., Awaitable[None]]
# tracebraid's headers a retry sends again with the message (the app's choice to make).
IDENTITY_HEADERS = ("x-event-id", "x-correlation-id", "x-causation-id", "x-event-name")


@dataclass(frozen=True)
class Kind:
    """One FastStream broker: how to make it, subscribe a step and publish an event."""

    name: str
    url: str

    def broker(self, provider: TracerProvider) -> Any:
        telemetry: Any
        if self.name == "rabbitmq":
            from faststream.rabbit import RabbitBroker
            from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware

            telemetry = RabbitTelemetryMiddleware(tracer_provider=provider)
            return RabbitBroker(
                self.url, middlewares=[TracebraidMiddleware, telemetry], logger=None
            )
        if self.name == "kafka":
            from faststream.kafka import KafkaBroker
            from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware

            telemetry = KafkaTelemetryMiddleware(tracer_provider=provider)
            return KafkaBroker(self.url, middlewares=[TracebraidMiddleware, telemetry], logger=None)
        if self.name == "nats":
            from faststream.nats import NatsBroker
            from faststream.nats.opentelemetry import NatsTelemetryMiddleware

            telemetry = NatsTelemetryMiddleware(tracer_provider=provider)
            return NatsBroker(self.url, middlewares=[TracebraidMiddleware, telemetry], logger=None)
        from faststream.redis import RedisBroker
        from faststream.redis.opentelemetry import RedisTelemetryMiddleware

        telemetry = RedisTelemetryMiddleware(tracer_provider=provider)
        return RedisBroker(self.url, middlewares=[TracebraidMiddleware, telemetry], logger=None)

    def subscribe(self, broker: Any, destination: str, step: str, handler: Handler) -> None:
        if self.name == "rabbitmq":
            from faststream.rabbit import ExchangeType, RabbitExchange, RabbitQueue

            exchange = RabbitExchange(destination, type=ExchangeType.FANOUT, auto_delete=True)
            queue = RabbitQueue(f"{destination}:{step}", auto_delete=True)
            broker.subscriber(queue, exchange)(handler)
        elif self.name == "kafka":
            broker.subscriber(
                destination, group_id=destination + step, auto_offset_reset="earliest"
            )(handler)
        elif self.name == "nats":
            broker.subscriber(destination, queue=step)(handler)
        else:
            from faststream.redis import StreamSub

            # A stream with a group per step: pub/sub would lose what is published
            # before a subscription is in place.
            sub = StreamSub(destination, group=step, consumer=step)
            broker.subscriber(stream=sub)(handler)

    async def publish(
        self, broker: Any, destination: str, body: dict[str, Any], headers: dict[str, str]
    ) -> None:
        if self.name == "rabbitmq":
            from faststream.rabbit import ExchangeType, RabbitExchange

            exchange = RabbitExchange(destination, type=ExchangeType.FANOUT, auto_delete=True)
            await broker.publish(body, exchange=exchange, headers=headers)
        elif self.name == "redis":
            await broker.publish(body, stream=destination, headers=headers)
        else:
            await broker.publish(body, destination, headers=headers)


class FastStreamFlow:
    """The flow's six services on ``kind``'s broker, their spans in ``exporter``."""

    def __init__(self, kind: Kind, exporter: InMemorySpanExporter, namespace: str) -> None:
        self.kind = kind
        self.namespace = namespace
        self.timings = Timings().scaled(SCALE)
        self.providers = {}
        for service in SERVICES:
            provider = TracerProvider(resource=Resource.create({"service.name": service}))
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            self.providers[service] = provider
        self.brokers = {s: kind.broker(p) for s, p in self.providers.items()}
        self.done: set[str] = set()
        self.changed = asyncio.Event()
        self.release = asyncio.Event()  # lets the stalled loyalty step end at teardown

    def destination(self, name: str) -> str:
        return self.namespace + name

    async def send(self, service: str, event: str, destination: str, body: dict[str, Any]) -> None:
        headers = {"x-event-name": event}
        await self.kind.publish(self.brokers[service], self.destination(destination), body, headers)

    def mark(self, step: str) -> None:
        self.done.add(step)
        self.changed.set()

    def subscribe_all(self) -> None:
        t = self.timings

        async def authorize_payment(body: dict[str, Any]) -> None:
            await asyncio.sleep(t.payment)
            await self.send("payment", "payment.authorized", "payments", body)
            self.mark("authorize-payment")

        async def reserve_inventory(body: dict[str, Any]) -> None:
            await asyncio.sleep(t.inventory)
            await self.send("inventory", "inventory.reserved", "inventory", body)
            self.mark("reserve-inventory")

        async def project_order_summary(body: dict[str, Any]) -> None:
            await asyncio.sleep(t.summary_lag + t.summary)
            self.mark("project-order-summary")

        async def award_loyalty_points(body: dict[str, Any]) -> None:
            self.mark(STALLED_STEP)
            await self.release.wait()  # stalls: in flight when the flow is read

        async def send_warehouse_webhook(body: dict[str, Any], message: Any = MESSAGE) -> None:
            attempt = int(message.headers.get("x-attempt", 1))
            try:
                async with asyncio.timeout(t.warehouse_timeout):
                    if attempt <= 2:
                        await asyncio.Event().wait()  # the warehouse API hangs
                    await asyncio.sleep(t.warehouse_call)
            except TimeoutError:
                await asyncio.sleep(t.warehouse_backoff[attempt - 1])
                again = {k: message.headers[k] for k in IDENTITY_HEADERS if k in message.headers}
                again["x-attempt"] = str(attempt + 1)
                await self.kind.publish(
                    self.brokers["warehouse"], self.destination("inventory"), body, again
                )
                raise
            self.mark("send-warehouse-webhook")

        async def charge_gift_card(body: dict[str, Any], message: Any = MESSAGE) -> None:
            attempt = int(message.headers.get("x-attempt", 1))
            if attempt < 2:
                again = {k: message.headers[k] for k in IDENTITY_HEADERS if k in message.headers}
                again["x-attempt"] = str(attempt + 1)
                await self.kind.publish(
                    self.brokers["payment"], self.destination("gift-cards"), body, again
                )
            else:
                self.mark("charge-gift-card")  # out of retries: the final failure
            raise ValueError("gift card declined")

        k, b = self.kind, self.brokers
        k.subscribe(
            b["payment"], self.destination("gift-cards"), "charge-gift-card", charge_gift_card
        )
        k.subscribe(
            b["payment"], self.destination("orders"), "authorize-payment", authorize_payment
        )
        k.subscribe(
            b["inventory"], self.destination("orders"), "reserve-inventory", reserve_inventory
        )
        k.subscribe(
            b["summary"],
            self.destination("payments"),
            "project-order-summary",
            project_order_summary,
        )
        k.subscribe(b["loyalty"], self.destination("payments"), STALLED_STEP, award_loyalty_points)
        k.subscribe(
            b["warehouse"],
            self.destination("inventory"),
            "send-warehouse-webhook",
            send_warehouse_webhook,
        )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FastStreamFlow]:
        self.subscribe_all()
        started = list(self.brokers.values())
        try:
            # At once: each Kafka subscriber waits for its group to form.
            await asyncio.gather(*(broker.start() for broker in started))
            if self.kind.name == "nats":
                await asyncio.sleep(0.2)  # core NATS: the subscriptions reach the server first
            yield self
        finally:
            self.release.set()
            for broker in started:
                await broker.stop()
            for provider in self.providers.values():
                provider.shutdown()

    async def place_order(self, number: int) -> None:
        """checkout-api's ``POST /orders``: a SERVER span that publishes ``order.placed``."""
        tracer = self.providers["checkout-api"].get_tracer("checkout-api")
        order_id = f"order_{number}"
        with (
            tracebraid.correlation(order_id),
            tracer.start_as_current_span("POST /orders", kind=trace.SpanKind.SERVER),
        ):
            await asyncio.sleep(self.timings.checkout)
            if number == 442:  # paid by gift card, which is declined on every attempt
                await self.send(
                    "checkout-api", "gift-card.charged", "gift-cards", {"order_id": order_id}
                )
                return
            body = {"order_id": order_id, "items": [{"sku": "sku-42", "quantity": 2}]}
            await self.send("checkout-api", "order.placed", "orders", body)

    async def settled(self) -> None:
        expected = {*SETTLED_STEPS, STALLED_STEP, "charge-gift-card"}
        while not self.done >= expected:
            self.changed.clear()
            await self.changed.wait()


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()
