"""Hand-shaped spans for the lint tests: stock OpenTelemetry instrumentation and mistakes.

``Spans`` writes spans with deterministic IDs. ``aio_pika_*`` write what
``opentelemetry-instrumentation-aio-pika`` writes (see its ``span_builder.py``): the
producer ``"<exchange>,<routing key> send"`` with ``messaging.destination`` and no
operation (so ``messaging.temp_destination``), the consumer ``"<exchange> receive"``
with ``messaging.operation = receive``, ``messaging.message_id`` and
``messaging.conversation_id`` from the message's properties, ``net.peer.*``, and no
``tracebraid.*`` attribute at all.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from tracebraid import semconv
from tracebraid.model import (
    AttributeValue,
    Span,
    SpanId,
    SpanKind,
    SpanLink,
    StatusCode,
    TraceId,
)

T0 = 1_767_225_600_000_000_000
MS = 1_000_000


@dataclass
class Spans:
    """A growing list of spans with deterministic IDs; ``at`` is milliseconds from T0."""

    spans: list[Span] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def trace(self) -> TraceId:
        return TraceId(f"{next(self._ids):032x}")

    def add(
        self,
        name: str,
        kind: SpanKind,
        service: str,
        *,
        parent: Span | None = None,
        trace: TraceId | None = None,
        attributes: dict[str, AttributeValue] | None = None,
        links: tuple[Span, ...] = (),
        at: float = 0.0,
        ms: float = 1.0,
        failed: bool = False,
    ) -> Span:
        span = Span(
            trace_id=parent.trace_id if parent else trace or self.trace(),
            span_id=SpanId(f"{next(self._ids):016x}"),
            parent_span_id=parent.span_id if parent else None,
            name=name,
            kind=kind,
            start_ns=T0 + round(at * MS),
            end_ns=T0 + round((at + ms) * MS),
            service=service,
            status=StatusCode.ERROR if failed else StatusCode.UNSET,
            attributes=attributes or {},
            links=tuple(SpanLink(s.trace_id, s.span_id) for s in links),
        )
        self.spans.append(span)
        return span

    # -- tracebraid's SDK shape --
    def publish(
        self,
        parent: Span,
        event: str,
        event_id: str,
        *,
        correlation: str | None = "order_1",
        causation: str | None = None,
        at: float = 1.0,
        destination: str = "orders",
    ) -> Span:
        attributes: dict[str, AttributeValue] = {
            semconv.MESSAGING_SYSTEM: "memory",
            semconv.DESTINATION: destination,
            semconv.OPERATION_TYPE: "send",
            semconv.MESSAGE_ID: event_id,
            semconv.EVENT_NAME: event,
        }
        if correlation:
            attributes[semconv.CORRELATION_ID] = correlation
        if causation:
            attributes[semconv.CAUSATION_ID] = causation
        return self.add(
            f"{event} publish", SpanKind.PRODUCER, parent.service, parent=parent,
            attributes=attributes, at=at,
        )  # fmt: skip

    def consume(
        self,
        producer: Span | None,
        step: str,
        service: str,
        *,
        event_id: str | None = None,
        event: str | None = None,
        correlation: str | None = "order_1",
        attempt: int | None = 1,
        group: str | None = None,
        name: str | None = None,
        propagate: bool = True,
        link_only: bool = False,
        at: float = 5.0,
        failed: bool = False,
    ) -> Span:
        source = producer.attributes if producer is not None else {}
        attributes: dict[str, AttributeValue] = {
            semconv.MESSAGING_SYSTEM: "memory",
            semconv.DESTINATION: str(source.get(semconv.DESTINATION, "orders")),
            semconv.OPERATION_TYPE: "process",
            semconv.CONSUMER_GROUP: group or step,
            semconv.STEP: step,
            semconv.MESSAGE_ID: event_id or str(source.get(semconv.MESSAGE_ID, "")),
            semconv.EVENT_NAME: event or str(source.get(semconv.EVENT_NAME, "")),
            semconv.OUTCOME: "retry" if failed else "ok",
        }
        if attempt is not None:
            attributes[semconv.ATTEMPT] = attempt
        if correlation:
            attributes[semconv.CORRELATION_ID] = correlation
        child = producer is not None and propagate and not link_only
        return self.add(
            name or step,
            SpanKind.CONSUMER,
            service,
            parent=producer if child else None,
            attributes={k: v for k, v in attributes.items() if v != ""},
            links=(producer,) if producer is not None and propagate else (),
            at=at,
            failed=failed,
        )

    # -- stock opentelemetry-instrumentation-aio-pika --
    def aio_pika_publish(
        self,
        parent: Span,
        exchange: str,
        routing_key: str,
        *,
        message_id: str | None = None,
        correlation_id: str | None = None,
        at: float = 1.0,
    ) -> Span:
        destination = f"{exchange},{routing_key}"
        attributes: dict[str, AttributeValue] = {
            "messaging.system": "rabbitmq",
            "messaging.destination": destination,
            "messaging.temp_destination": True,
            "net.peer.name": "localhost",
            "net.peer.port": 5672,
        }
        if message_id:
            attributes["messaging.message_id"] = message_id
        if correlation_id:
            attributes["messaging.conversation_id"] = correlation_id
        return self.add(
            f"{destination} send", SpanKind.PRODUCER, parent.service, parent=parent,
            attributes=attributes, at=at,
        )  # fmt: skip

    def aio_pika_receive(
        self,
        producer: Span | None,
        exchange: str,
        service: str,
        *,
        message_id: str | None = None,
        correlation_id: str | None = None,
        propagate: bool = True,
        at: float = 5.0,
        failed: bool = False,
    ) -> Span:
        attributes: dict[str, AttributeValue] = {
            "messaging.system": "rabbitmq",
            "messaging.destination": exchange,
            "messaging.operation": "receive",
            "net.peer.name": "localhost",
            "net.peer.port": 5672,
        }
        if message_id:
            attributes["messaging.message_id"] = message_id
        if correlation_id:
            attributes["messaging.conversation_id"] = correlation_id
        return self.add(
            f"{exchange} receive",
            SpanKind.CONSUMER,
            service,
            parent=producer if producer is not None and propagate else None,
            attributes=attributes,
            at=at,
            failed=failed,
        )
