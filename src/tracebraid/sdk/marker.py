"""Start markers: in-flight work made visible before its span ends.

OpenTelemetry exports a span only when it ends, so work that is slow, stuck or lost
with its process would be invisible. When processing begins, tracebraid emits a tiny
span that is started and ended at once, from the instrumentation scope
``semconv.START_MARKER_SCOPE``, with ``tracebraid.marker.span_id`` naming the span it
announces. The analysis reads a marker with no finished span as work in flight.

Example::

    >>> from opentelemetry.sdk.trace import TracerProvider
    >>> tracer = TracerProvider().get_tracer(semconv.START_MARKER_SCOPE)
    >>> emit_start_marker(tracer, "reserve-inventory", None, "00f067aa0ba902b7", {}, 0)
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.context import Context

from tracebraid import semconv

__all__ = ["emit_start_marker"]


def emit_start_marker(
    tracer: trace.Tracer,
    step: str,
    context: Context | None,
    span_id: str,
    attributes: Mapping[str, object],
    start_ns: int | None,
) -> None:
    """Emit the start marker for the span ``span_id`` (a child of it, via ``context``)."""
    marker_attributes = dict(attributes)
    marker_attributes[semconv.MARKER_FOR_SPAN] = span_id
    marker = tracer.start_span(
        f"{step} started",
        context=context,
        kind=trace.SpanKind.INTERNAL,
        attributes=marker_attributes,  # type: ignore[arg-type]
        start_time=start_ns,
    )
    marker.end(end_time=start_ns)
