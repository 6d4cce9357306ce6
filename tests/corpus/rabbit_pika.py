"""The order workflow's services on pika (BlockingConnection), traced by stock instrumentation.

Each service runs in its own process (``rabbit_flow.run`` starts them); see
``rabbit_flow`` for the flow and what each service does. Consumers use
``basic_consume`` callbacks, which the instrumentation runs inside the consumer span.
A callback that raises propagates out of ``process_data_events`` (pika's way), so the
handler nacks or rejects first, re-raises for the span to record the exception, and the
consume loop carries on.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pika
from opentelemetry.instrumentation.pika import PikaInstrumentor
from opentelemetry.trace import SpanKind
from pika.adapters.blocking_connection import BlockingChannel
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
        _checkout(args)
    else:
        Consumer(args, PLANS[args.service]).run()


def _properties(
    label: str, message_id: str, headers: dict[str, Any] | None = None
) -> pika.BasicProperties:
    return pika.BasicProperties(
        message_id=message_id,
        correlation_id=CORRELATION_ID,
        type=label,
        content_type="application/json",
        headers=headers or {},
    )


def _publish(
    channel: BlockingChannel, args: ServiceArgs, journal: Journal, publish: Publish
) -> None:
    body = json.dumps({"event": publish.label, "order": 441}).encode()
    for _ in range(publish.copies):
        channel.basic_publish(
            exchange=args.names(publish.exchange),
            routing_key="",
            body=body,
            properties=_properties(publish.label, publish.message_id),
        )
        journal.published(publish, args.names(publish.exchange), traced=True)


def _checkout(args: ServiceArgs) -> None:
    """checkout's POST /orders: the server span a web framework would make, two publishes."""
    provider = telemetry("checkout", args.endpoint)
    PikaInstrumentor().instrument(tracer_provider=provider)
    journal = Journal(args.run, "checkout")
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    tracer = provider.get_tracer("checkout")
    attributes = {"http.request.method": "POST", "http.route": "/orders"}
    with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER, attributes=attributes):
        for publish in CHECKOUT:
            _publish(channel, args, journal, publish)
    connection.close()
    provider.shutdown()


class Consumer:
    """One service consuming its queue; ``audit-relay`` is the uninstrumented forwarder."""

    def __init__(self, args: ServiceArgs, plan: Plan) -> None:
        self.args = args
        self.plan = plan
        self.journal = Journal(args.run, plan.service)
        self.deliveries = 0
        self.reconnect = False
        self.raised: BaseException | None = None

    def run(self) -> None:
        provider = None
        if not self.plan.relay_to:
            provider = telemetry(self.plan.service, self.args.endpoint)
            PikaInstrumentor().instrument(tracer_provider=provider)
        first = True
        while not self.args.stop_file.exists():
            connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
            channel = connection.channel()
            channel.basic_qos(prefetch_count=1)
            if first and self.plan.starts_late:
                self.args.ready()
                while not self.args.go_file.exists():
                    time.sleep(0.005)
            channel.basic_consume(self.args.names(self.plan.queue), self.on_message)
            if first:
                self.args.ready()
                first = False
            self.reconnect = False
            while not (self.args.stop_file.exists() or self.reconnect):
                try:
                    connection.process_data_events(time_limit=0.02)
                except Exception as error:
                    if error is not self.raised:
                        raise
            # ack lost: the channel closes with the delivery unacked, so the broker redelivers
            connection.close()
        if provider is not None:
            provider.shutdown()

    def on_message(
        self,
        channel: BlockingChannel,
        method: pika.spec.Basic.Deliver,
        properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        delivery = Delivery(
            label=str(properties.type),
            message_id=str(properties.message_id),
            exchange=method.exchange or "",
            routing_key=method.routing_key or "",
            redelivered=bool(method.redelivered),
            # the instrumentation has already read the trace headers, left them in place
            headers=dict(properties.headers or {}),
        )
        self.deliveries += 1
        plan = self.plan
        if plan.relay_to:  # a forwarder that copies body and message_id, not the headers
            channel.basic_publish(
                exchange=self.args.names(plan.relay_to),
                routing_key="",
                body=body,
                properties=_properties(delivery.label, delivery.message_id),
            )
            channel.basic_ack(method.delivery_tag)
            delivery.record(self.journal, plan, "succeeded")
            return
        try:
            time.sleep(plan.work_s)
            if plan.fails(self.deliveries):
                raise ERRORS[plan.error](f"{plan.service} failed on delivery {self.deliveries}")
            for publish in plan.publishes:
                _publish(channel, self.args, self.journal, publish)
            if plan.ack_lost_first and self.deliveries == 1:
                delivery.record(self.journal, plan, "succeeded")
                self.reconnect = True
                return
            channel.basic_ack(method.delivery_tag)
            delivery.record(self.journal, plan, "succeeded")
        except Exception as error:
            self.give_back(channel, method, properties, body, delivery)
            delivery.record(self.journal, plan, "failed", type(error).__name__)
            self.raised = error
            raise  # the instrumentation's span records the exception and ERROR status

    def give_back(
        self,
        channel: BlockingChannel,
        method: pika.spec.Basic.Deliver,
        properties: pika.BasicProperties,
        body: bytes,
        delivery: Delivery,
    ) -> None:
        """The retry pattern: nack with requeue, or reject into the DLX / park the message."""
        if self.args.pattern == "requeue":
            time.sleep(REQUEUE_BACKOFF_S)
            channel.basic_nack(method.delivery_tag, requeue=True)
            return
        attempt = delivery.rejected_before(self.args.names(self.plan.queue)) + 1
        if attempt < MAX_ATTEMPTS:
            channel.basic_reject(method.delivery_tag, requeue=False)
            return
        parking = Publish(delivery.label + PARKED, "parking", delivery.message_id)
        channel.basic_publish(
            exchange=self.args.names("parking"),
            routing_key="",
            body=body,
            properties=_properties(delivery.label, delivery.message_id, dict(delivery.headers)),
        )
        self.journal.published(parking, self.args.names("parking"), traced=True)
        channel.basic_ack(method.delivery_tag)
