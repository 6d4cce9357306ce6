"""The order workflow's services on aio-pika, traced by the stock aio-pika instrumentation.

Each service runs in its own process (``rabbit_flow.run`` starts them); see
``rabbit_flow`` for the flow and what each service does.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aio_pika
from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
from opentelemetry.trace import SpanKind
from rabbit_flow import (
    AMQP_URL,
    CHECKOUT,
    CORRELATION_ID,
    MAX_ATTEMPTS,
    PARKED,
    PLANS,
    REQUEUE_BACKOFF_S,
    Delivery,
    Journal,
    Plan,
    Publish,
    ServiceArgs,
    telemetry,
)

ERRORS: dict[str, type[Exception]] = {
    "TimeoutError": TimeoutError,
    "ConnectionError": ConnectionError,
}


def serve(args: ServiceArgs) -> None:
    """Run ``args.service`` until the coordinator's stop file appears."""
    if args.service == "checkout":
        asyncio.run(_checkout(args))
    else:
        asyncio.run(Consumer(args, PLANS[args.service]).run())


def _message(
    label: str, message_id: str, headers: dict[str, Any] | None = None
) -> aio_pika.Message:
    body = json.dumps({"event": label, "order": 441}).encode()
    return aio_pika.Message(
        body,
        message_id=message_id,
        correlation_id=CORRELATION_ID,
        type=label,
        content_type="application/json",
        headers=headers or {},
    )


async def _publish(
    channel: aio_pika.abc.AbstractChannel, args: ServiceArgs, journal: Journal, publish: Publish
) -> None:
    exchange = await channel.get_exchange(args.names(publish.exchange), ensure=False)
    for _ in range(publish.copies):
        await exchange.publish(_message(publish.label, publish.message_id), routing_key="")
        journal.published(publish, args.names(publish.exchange), traced=True)


async def _checkout(args: ServiceArgs) -> None:
    """checkout's POST /orders: the server span a web framework would make, two publishes."""
    provider = telemetry("checkout", args.endpoint)
    AioPikaInstrumentor().instrument(tracer_provider=provider)
    journal = Journal(args.run, "checkout")
    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel()
    tracer = provider.get_tracer("checkout")
    attributes = {"http.request.method": "POST", "http.route": "/orders"}
    with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER, attributes=attributes):
        for publish in CHECKOUT:
            await _publish(channel, args, journal, publish)
    await connection.close()
    provider.shutdown()


class Consumer:
    """One service consuming its queue; ``audit-relay`` is the uninstrumented forwarder."""

    def __init__(self, args: ServiceArgs, plan: Plan) -> None:
        self.args = args
        self.plan = plan
        self.journal = Journal(args.run, plan.service)
        self.deliveries = 0
        self.reconnect = asyncio.Event()
        self.channel: aio_pika.abc.AbstractChannel | None = None

    async def run(self) -> None:
        provider = None
        if not self.plan.relay_to:
            provider = telemetry(self.plan.service, self.args.endpoint)
            AioPikaInstrumentor().instrument(tracer_provider=provider)
        first = True
        while not self.args.stop_file.exists():
            connection = await aio_pika.connect(AMQP_URL)
            self.channel = await connection.channel()
            await self.channel.set_qos(prefetch_count=1)
            queue = await self.channel.get_queue(self.args.names(self.plan.queue), ensure=False)
            if first and self.plan.starts_late:
                self.args.ready()
                while not self.args.go_file.exists():
                    await asyncio.sleep(0.005)
            await queue.consume(self.on_message)
            if first:
                self.args.ready()
                first = False
            self.reconnect.clear()
            while not (self.args.stop_file.exists() or self.reconnect.is_set()):
                await asyncio.sleep(0.02)
            # ack lost: the channel closes with the delivery unacked, so the broker redelivers
            await connection.close()
        if provider is not None:
            provider.shutdown()

    async def on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        delivery = Delivery(
            label=str(message.type),
            message_id=str(message.message_id),
            exchange=message.exchange or "",
            routing_key=message.routing_key or "",
            redelivered=bool(message.redelivered),
            headers=dict(message.headers or {}),
        )
        self.deliveries += 1
        assert self.channel is not None
        plan = self.plan
        if plan.relay_to:  # a forwarder that copies body and message_id, not the headers
            exchange = await self.channel.get_exchange(self.args.names(plan.relay_to), ensure=False)
            await exchange.publish(_message(delivery.label, delivery.message_id), routing_key="")
            await message.ack()
            delivery.record(self.journal, plan, "succeeded")
            return
        try:
            await asyncio.sleep(plan.work_s)
            if plan.fails(self.deliveries):
                raise ERRORS[plan.error](f"{plan.service} failed on delivery {self.deliveries}")
            for publish in plan.publishes:
                await _publish(self.channel, self.args, self.journal, publish)
            if plan.ack_lost_first and self.deliveries == 1:
                delivery.record(self.journal, plan, "succeeded")
                self.reconnect.set()
                return
            await message.ack()
            delivery.record(self.journal, plan, "succeeded")
        except Exception as error:
            await self.give_back(message, delivery)
            delivery.record(self.journal, plan, "failed", type(error).__name__)
            raise  # the instrumentation's span records the exception and ERROR status

    async def give_back(
        self, message: aio_pika.abc.AbstractIncomingMessage, delivery: Delivery
    ) -> None:
        """The retry pattern: nack with requeue, or reject into the DLX / park the message."""
        assert self.channel is not None
        if self.args.pattern == "requeue":
            await asyncio.sleep(REQUEUE_BACKOFF_S)
            await message.nack(requeue=True)
            return
        attempt = delivery.rejected_before(self.args.names(self.plan.queue)) + 1
        if attempt < MAX_ATTEMPTS:
            await message.reject(requeue=False)
            return
        parking = Publish(delivery.label + PARKED, "parking", delivery.message_id)
        exchange = await self.channel.get_exchange(self.args.names("parking"), ensure=False)
        copy = _message(delivery.label, delivery.message_id, dict(delivery.headers))
        await exchange.publish(copy, routing_key="")
        self.journal.published(parking, self.args.names("parking"), traced=True)
        await message.ack()
