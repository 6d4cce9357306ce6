"""OpenTelemetry SDK ``ReadableSpan`` -> tracebraid ``Span``: the one place the SDK's types end.

Example::

    >>> from opentelemetry.sdk.trace import TracerProvider
    >>> provider = TracerProvider()
    >>> with provider.get_tracer("demo").start_as_current_span("reserve-inventory") as s:
    ...     pass
    >>> to_span(s).name
    'reserve-inventory'
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind as OtelSpanKind
from opentelemetry.trace import StatusCode as OtelStatusCode
from opentelemetry.util.types import Attributes as OtelAttributes

from tracebraid.model import (
    Attributes,
    AttributeValue,
    Span,
    SpanEvent,
    SpanId,
    SpanKind,
    SpanLink,
    StatusCode,
    TraceId,
)

__all__ = ["to_span"]

_KINDS = {
    OtelSpanKind.INTERNAL: SpanKind.INTERNAL,
    OtelSpanKind.SERVER: SpanKind.SERVER,
    OtelSpanKind.CLIENT: SpanKind.CLIENT,
    OtelSpanKind.PRODUCER: SpanKind.PRODUCER,
    OtelSpanKind.CONSUMER: SpanKind.CONSUMER,
}
_STATUSES = {
    OtelStatusCode.UNSET: StatusCode.UNSET,
    OtelStatusCode.OK: StatusCode.OK,
    OtelStatusCode.ERROR: StatusCode.ERROR,
}


def _attributes(raw: OtelAttributes | Mapping[str, object] | None) -> Attributes:
    if not raw:
        return {}
    out: dict[str, AttributeValue] = {}
    for key, value in raw.items():
        # The SDK hands out sequences as tuples already; anything else is kept as text.
        if isinstance(value, str | bool | int | float | tuple):
            out[key] = value
        else:
            out[key] = str(value)
    return out


def to_span(readable: ReadableSpan) -> Span:
    """Convert one finished OpenTelemetry SDK span into a tracebraid ``Span``."""
    ctx = readable.get_span_context()
    assert ctx is not None, "a ReadableSpan always has a context"
    parent = readable.parent
    resource = readable.resource.attributes if readable.resource is not None else {}
    scope = readable.instrumentation_scope
    start = readable.start_time or 0
    return Span(
        trace_id=TraceId(format(ctx.trace_id, "032x")),
        span_id=SpanId(format(ctx.span_id, "016x")),
        parent_span_id=SpanId(format(parent.span_id, "016x")) if parent is not None else None,
        name=readable.name,
        kind=_KINDS.get(readable.kind, SpanKind.UNSPECIFIED),
        start_ns=start,
        end_ns=readable.end_time if readable.end_time is not None else start,
        service=str(resource.get("service.name", "unknown_service")),
        status=_STATUSES[readable.status.status_code],
        status_message=readable.status.description or "",
        attributes=_attributes(readable.attributes),
        events=tuple(
            SpanEvent(name=e.name, time_ns=e.timestamp, attributes=_attributes(e.attributes))
            for e in readable.events
        ),
        links=tuple(
            SpanLink(
                trace_id=TraceId(format(link.context.trace_id, "032x")),
                span_id=SpanId(format(link.context.span_id, "016x")),
                attributes=_attributes(link.attributes),
            )
            for link in readable.links
        ),
        resource=_attributes(resource),
        scope=scope.name if scope is not None else "",
    )
