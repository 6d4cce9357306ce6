"""The seed's common mistakes, each planted once in a realistic place of the order flow.

``tracebraid demo --with-mistakes`` passes ``MISTAKES`` to the runner; ``tracebraid
lint`` then finds each exactly once, at the service and step named here:

=====  ============  ======================  ===========================================
rule   service       step                    what the service does wrong
=====  ============  ======================  ===========================================
TB701  checkout-api  place-order             copies each order to the audit exchange
                                             through RabbitMQ's HTTP API: a plain POST
TB302  checkout-api  place-order             uses the order ID as order.placed's event ID
TB101  payment       authorize-payment       its relay forwards only x-* headers, so
                                             traceparent is lost: summary and loyalty
                                             start new traces
TB501  inventory     reserve-inventory       a generic job wrapper renames the consumer
                                             span to "process"
TB201  summary       project-order-summary   publishes order.summary.updated by hand,
                                             with traceparent but no correlation ID
TB601  warehouse     send-warehouse-webhook  consumes through a client that reports no
                                             delivery count: every retry says attempt 1
=====  ============  ======================  ===========================================

Each mistake is a ``Mistake`` (``flow -> None``) that changes one service before the
flow starts; ``PlantedMistake`` also says which finding it should produce.

Example::

    >>> [(m.rule, m.service) for m in MISTAKES][:2]
    [('TB701', 'checkout-api'), ('TB302', 'checkout-api')]
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace

from opentelemetry import trace
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tracebraid import semconv
from tracebraid.demo.order_flow import CHECKOUT, OrderFlow
from tracebraid.model import Attributes
from tracebraid.sdk.broker.base import Delivery
from tracebraid.sdk.broker.bus import EventBus, Received
from tracebraid.sdk.broker.forwarding import ForwardingBroker
from tracebraid.sdk.context import MessageContext, current_correlation_id, new_event_id

__all__ = ["MISTAKES", "PlantedMistake"]

_SCOPE = "tracebraid.demo.mistakes"
_AUDIT_API = "http://rabbitmq.internal:15672/api/exchanges/%2F/audit/publish"
_Publish = Callable[..., Awaitable[MessageContext]]


@dataclass(frozen=True, slots=True)
class PlantedMistake:
    """One planted mistake: ``plant(flow)`` changes the flow; the rest says what lint finds."""

    rule: str
    service: str
    step: str
    what: str
    plant: Callable[[OrderFlow], None]

    def __call__(self, flow: OrderFlow) -> None:
        self.plant(flow)


def _replace_publish(bus: EventBus, wrap: Callable[[_Publish], _Publish]) -> None:
    # An instance attribute shadows the method: one service's publishing habit changes.
    setattr(bus, "publish", wrap(bus.publish))  # noqa: B010


class _RelayKeepingOwnHeaders(ForwardingBroker):
    """An outbox relay that forwards only the application's own ``x-*`` headers."""

    async def publish(
        self, destination: str, payload: bytes, headers: Mapping[str, str], *, message_id: str
    ) -> None:
        own = {k: v for k, v in headers.items() if k.lower().startswith("x-")}
        await self.inner.publish(destination, payload, own, message_id=message_id)


class _NoDeliveryCounts(ForwardingBroker):
    """A client that cannot tell a redelivery from a first delivery."""

    def incoming(self, delivery: Delivery) -> Delivery:
        return replace(delivery, delivery_count=1)


def _audit_copy_over_http(flow: OrderFlow) -> None:
    tracer = flow.providers[CHECKOUT].get_tracer(_SCOPE)

    def wrap(publish: _Publish) -> _Publish:
        async def publish_and_copy(
            event_name: str, payload: bytes, **options: object
        ) -> MessageContext:
            message = await publish(event_name, payload, **options)
            with tracer.start_as_current_span(
                "POST",
                kind=SpanKind.CLIENT,
                attributes={
                    "http.request.method": "POST",
                    "url.full": _AUDIT_API,
                    "server.address": "rabbitmq.internal",
                    "server.port": 15672,
                },
            ) as span:
                await asyncio.sleep(0)  # the demo has no management API to call
                span.set_attribute("http.response.status_code", 200)
            return message

        return publish_and_copy

    _replace_publish(flow.buses[CHECKOUT], wrap)


def _order_id_as_event_id(flow: OrderFlow) -> None:
    def wrap(publish: _Publish) -> _Publish:
        async def publish_with_order_id(
            event_name: str, payload: bytes, **options: object
        ) -> MessageContext:
            if event_name == "order.placed" and options.get("event_id") is None:
                options["event_id"] = current_correlation_id()  # the order ID: order_<n>
            return await publish(event_name, payload, **options)

        return publish_with_order_id

    _replace_publish(flow.buses[CHECKOUT], wrap)


def _relay_drops_trace_headers(flow: OrderFlow) -> None:
    bus = flow.buses["payment"]
    bus.broker = _RelayKeepingOwnHeaders(bus.broker)


def _generic_consumer_span_name(flow: OrderFlow) -> None:
    handler = flow.reserve_inventory

    async def process(received: Received) -> None:
        trace.get_current_span().update_name("process")
        await handler(received)

    setattr(flow, "reserve_inventory", process)  # noqa: B010 - the handler the flow subscribes


def _follow_up_without_correlation(flow: OrderFlow) -> None:
    handler = flow.project_order_summary
    tracer = flow.providers["summary"].get_tracer(_SCOPE)
    destination = flow.destination("summaries")

    async def project_and_announce(received: Received) -> None:
        await handler(received)
        event_id = new_event_id()
        attributes: Attributes = {
            semconv.MESSAGING_SYSTEM: flow.broker.system,
            semconv.DESTINATION: destination,
            semconv.OPERATION_TYPE: "send",
            semconv.MESSAGE_ID: event_id,
            semconv.EVENT_NAME: "order.summary.updated",
        }
        with tracer.start_as_current_span(
            "order.summary.updated publish", kind=SpanKind.PRODUCER, attributes=attributes
        ):
            headers: dict[str, str] = {"x-event-id": event_id}
            TraceContextTextMapPropagator().inject(headers)  # traceparent only
            body = json.loads(received.payload)
            payload = json.dumps({"order_id": body.get("order_id"), "status": "authorized"})
            await flow.broker.publish(destination, payload.encode(), headers, message_id=event_id)

    setattr(flow, "project_order_summary", project_and_announce)  # noqa: B010


def _retries_without_delivery_counts(flow: OrderFlow) -> None:
    bus = flow.buses["warehouse"]
    bus.broker = _NoDeliveryCounts(bus.broker)


MISTAKES: tuple[PlantedMistake, ...] = (
    PlantedMistake(
        "TB701",
        CHECKOUT,
        "place-order",
        "copies each order to the audit exchange with a plain HTTP POST to the broker's API",
        _audit_copy_over_http,
    ),
    PlantedMistake(
        "TB302",
        CHECKOUT,
        "place-order",
        "uses the order ID (the correlation ID) as the event ID of order.placed",
        _order_id_as_event_id,
    ),
    PlantedMistake(
        "TB101",
        "payment",
        "authorize-payment",
        "its relay forwards only x-* headers: traceparent is lost, consumers start new traces",
        _relay_drops_trace_headers,
    ),
    PlantedMistake(
        "TB501",
        "inventory",
        "reserve-inventory",
        "a generic job wrapper renames the consumer span to 'process'",
        _generic_consumer_span_name,
    ),
    PlantedMistake(
        "TB201",
        "summary",
        "project-order-summary",
        "publishes order.summary.updated by hand: traceparent, but no correlation ID",
        _follow_up_without_correlation,
    ),
    PlantedMistake(
        "TB601",
        "warehouse",
        "send-warehouse-webhook",
        "consumes through a client without delivery counts: every retry says attempt 1",
        _retries_without_delivery_counts,
    ),
)
"""Every planted mistake, one per seed mistake (and the design-review case)."""
