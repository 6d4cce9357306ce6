"""Small span factories for the SQLite store's own tests (deterministic IDs)."""

from __future__ import annotations

import itertools
from typing import Any

from tracebraid.model import (
    AttributeValue,
    Span,
    SpanId,
    SpanKind,
    SpanLink,
    StatusCode,
    TraceId,
)

T0 = 1_760_000_000_000_000_000
MS = 1_000_000
_ids = itertools.count(1)


def new_trace_id() -> TraceId:
    return TraceId(f"{next(_ids):032x}")


def new_span_id() -> SpanId:
    return SpanId(f"{next(_ids):016x}")


def make_span(
    trace_id: TraceId | None = None,
    *,
    name: str = "reserve-inventory",
    parent: Span | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    start_ms: float = 0,
    duration_ms: float = 10,
    service: str = "inventory",
    status: StatusCode = StatusCode.UNSET,
    attributes: dict[str, AttributeValue] | None = None,
    links: tuple[Span, ...] = (),
    **fields: Any,
) -> Span:
    """A span; ``parent`` sets trace and parent IDs, ``links`` links to other spans."""
    if parent is not None:
        trace_id = parent.trace_id
    start = T0 + int(start_ms * MS)
    return Span(
        trace_id=trace_id if trace_id is not None else new_trace_id(),
        span_id=fields.pop("span_id", None) or new_span_id(),
        parent_span_id=parent.span_id if parent is not None else None,
        name=name,
        kind=kind,
        start_ns=start,
        end_ns=start + int(duration_ms * MS),
        service=service,
        status=status,
        attributes=attributes or {},
        links=tuple(SpanLink(s.trace_id, s.span_id) for s in links),
        **fields,
    )


def producer(
    parent: Span | None,
    event_id: str,
    *,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    start_ms: float = 0,
    trace_id: TraceId | None = None,
) -> Span:
    """A PRODUCER span publishing ``event_id`` the way tracebraid's SDK does."""
    attributes: dict[str, AttributeValue] = {
        "messaging.message.id": event_id,
        "messaging.destination.name": "orders",
        "messaging.operation.type": "send",
    }
    if correlation_id is not None:
        attributes["messaging.message.conversation_id"] = correlation_id
    if causation_id is not None:
        attributes["tracebraid.causation_id"] = causation_id
    return make_span(
        trace_id,
        name="orders publish",
        parent=parent,
        kind=SpanKind.PRODUCER,
        start_ms=start_ms,
        service="checkout-api",
        attributes=attributes,
    )


def consumer(
    parent: Span | None,
    event_id: str,
    consumer_name: str,
    *,
    correlation_id: str | None = None,
    attempt: int = 1,
    start_ms: float = 0,
    links: tuple[Span, ...] = (),
) -> Span:
    """A CONSUMER span processing ``event_id``; ``parent=None`` starts a new trace."""
    attributes: dict[str, AttributeValue] = {
        "messaging.message.id": event_id,
        "messaging.consumer.group.name": consumer_name,
        "messaging.operation.type": "process",
        "tracebraid.attempt": attempt,
    }
    if correlation_id is not None:
        attributes["messaging.message.conversation_id"] = correlation_id
    return make_span(
        name=consumer_name,
        parent=parent,
        kind=SpanKind.CONSUMER,
        start_ms=start_ms,
        service=consumer_name,
        attributes=attributes,
        links=links,
    )


def trace_of(count: int, *, start_ms: float = 0, **root_fields: Any) -> list[Span]:
    """A root span and ``count - 1`` children."""
    root = make_span(name="POST /orders", kind=SpanKind.SERVER, start_ms=start_ms, **root_fields)
    children = [make_span(parent=root, start_ms=start_ms + i + 1) for i in range(count - 1)]
    return [root, *children]
