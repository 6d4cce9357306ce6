"""Spans shaped as stock OpenTelemetry instrumentations write them (attribute names,
span kinds, parents, links and scopes as read from their sources), for tests that need
a shape the recorded corpus does not isolate.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from tracebraid.model import (
    AttributeValue,
    Span,
    SpanId,
    SpanKind,
    SpanLink,
    StatusCode,
    TraceId,
)

MS = 1_000_000
AIOKAFKA = "opentelemetry.instrumentation.aiokafka"
CONFLUENT = "opentelemetry.instrumentation.confluent_kafka"
CELERY = "opentelemetry.instrumentation.celery"
AIO_PIKA = "opentelemetry.instrumentation.aio_pika"


@dataclass
class StockSpans:
    """A growing list of spans; each ``add`` returns the span it made."""

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
        at_ms: float,
        ms: float = 1.0,
        parent: Span | None = None,
        trace: TraceId | None = None,
        links: tuple[Span, ...] = (),
        scope: str = "",
        status: StatusCode = StatusCode.UNSET,
        status_message: str = "",
        **attributes: AttributeValue,
    ) -> Span:
        span = Span(
            trace_id=parent.trace_id if parent else trace or self.trace(),
            span_id=SpanId(f"{next(self._ids):016x}"),
            parent_span_id=parent.span_id if parent else None,
            name=name,
            kind=kind,
            start_ns=round(at_ms * MS),
            end_ns=round((at_ms + ms) * MS),
            service=service,
            status=status,
            status_message=status_message,
            attributes={k.replace("__", "."): v for k, v in attributes.items()},
            links=tuple(SpanLink(t.trace_id, t.span_id) for t in links),
            scope=scope,
        )
        self.spans.append(span)
        return span

    # -- aiokafka: the producer span carries no message ID; a receive span is the child
    # of the producer's span and ends before the application handles the record.
    def aiokafka_send(
        self, service: str, topic: str, *, at_ms: float, parent: Span | None = None,
        key: str = "order-1",
    ) -> Span:  # fmt: skip
        return self.add(f"{topic} send", SpanKind.PRODUCER, service, at_ms=at_ms, parent=parent,
                        scope=AIOKAFKA, messaging__system="kafka",
                        messaging__destination__name=topic,
                        messaging__destination__partition__id="0",
                        messaging__kafka__message__key=key,
                        messaging__operation__type="publish")  # fmt: skip

    def aiokafka_receive(
        self, sent: Span | None, service: str, topic: str, offset: int, *, at_ms: float,
        trace: TraceId | None = None,
    ) -> Span:  # fmt: skip
        return self.add(f"{topic} receive", SpanKind.CONSUMER, service, at_ms=at_ms, ms=0.2,
                        parent=sent, trace=trace, scope=AIOKAFKA, messaging__system="kafka",
                        messaging__destination__name=topic,
                        messaging__destination__partition__id="0",
                        messaging__kafka__message__key="order-1",
                        messaging__consumer__group__name=f"{service}-group",
                        messaging__operation__type="receive",
                        messaging__kafka__message__offset=offset,
                        messaging__message__id=f"{topic}.0.{offset}")  # fmt: skip
