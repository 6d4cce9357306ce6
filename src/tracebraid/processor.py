"""A span processor giving any instrumentation's messaging spans tracebraid's identities.

Added to a ``TracerProvider`` (``tracebraid.instrument()`` does it), it works on the
PRODUCER and CONSUMER spans of every instrumentation (aio-pika, aiokafka,
confluent-kafka, Celery...), never on tracebraid's own spans, which have them already:

- **producer spans** get ``messaging.message.id`` (the event ID, minted when the
  instrumentation recorded none), ``messaging.message.conversation_id`` (the workflow's
  correlation ID) and ``tracebraid.causation_id`` (the event being processed in context);
  ``tracebraid.propagator`` writes the same identities into the message.
- **consumer spans** get the identities the propagator read from the message (event ID,
  correlation, causation, event name, attempt, and ``cloudevents.event_id``/``event_type``
  for a CloudEvent), and the message becomes the one being processed for the rest of the
  task or thread (``tracebraid.current_processing()``; publishes name it as their cause
  and are children of its span), even with Kafka clients whose consumer span ends
  before the record is processed.
- **start markers**: a consumer span still running ``start_marker_after_ms`` after it
  began gets a start marker (``tracebraid.sdk.marker``), so in-flight and stuck work is
  visible although OpenTelemetry exports a span only when it ends.

Example::

    >>> from opentelemetry.sdk.trace import TracerProvider
    >>> provider = TracerProvider()
    >>> provider.add_span_processor(SpanProcessor(provider))
    >>> tracer = provider.get_tracer("my.instrumentation")
    >>> from opentelemetry.trace import SpanKind
    >>> with tracer.start_as_current_span("orders publish", kind=SpanKind.PRODUCER) as span:
    ...     span.attributes["messaging.message.id"].startswith("evt_")
    True
"""

from __future__ import annotations

import time

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span
from opentelemetry.sdk.trace import SpanProcessor as OTelSpanProcessor

from tracebraid import semconv
from tracebraid.model import AttributeValue
from tracebraid.sdk._tracers import SCOPE
from tracebraid.sdk.marker import CLOCK, PendingMarker
from tracebraid.sdk.stock import (
    in_hand,
    linked_received,
    received,
    stamp_consumer,
    stamp_producer,
    take_expected,
)

__all__ = ["SpanProcessor"]

_OWN_SCOPES = frozenset((SCOPE, semconv.START_MARKER_SCOPE))
_VERSION = "0.1.0"


class _InFlight:
    """One stock consumer span the marker clock may announce (``marker.InFlight``)."""

    __slots__ = ("_marker_due_ns", "span", "tracer")

    def __init__(self, span: Span, tracer: trace.Tracer, due_ns: int) -> None:
        self.span = span
        self.tracer = tracer
        self._marker_due_ns = due_ns

    def _start_marker(self) -> PendingMarker:
        attributes: dict[str, AttributeValue] = dict(self.span.attributes or {})  # type: ignore[arg-type]
        step = attributes.get(semconv.STEP)
        return PendingMarker(
            self.tracer,
            step if isinstance(step, str) else self.span.name,
            self.span.get_span_context(),
            attributes,
            self.span.start_time or time.time_ns(),
        )


class SpanProcessor(OTelSpanProcessor):
    """Stamps tracebraid's identities on other instrumentations' messaging spans and
    announces their consumer spans still running after ``start_marker_after_ms``.

    ``tracer_provider`` is the provider the markers go to (the one this processor is
    added to); without one, start markers are off. ``start_marker_after_ms=None`` turns
    them off too.
    """

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        *,
        start_marker_after_ms: float | None = 100.0,
    ) -> None:
        self._provider = tracer_provider
        self._marker_tracer: trace.Tracer | None = None
        self._delay_ns = (
            None if start_marker_after_ms is None else int(start_marker_after_ms * 1_000_000)
        )
        self._in_flight: dict[int, _InFlight] = {}

    def _markers(self) -> trace.Tracer | None:
        if self._provider is None or self._delay_ns is None:
            return None
        tracer = self._marker_tracer
        if tracer is None:
            tracer = self._marker_tracer = self._provider.get_tracer(
                semconv.START_MARKER_SCOPE, _VERSION
            )
        return tracer

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        kind = span.kind
        if kind is not trace.SpanKind.PRODUCER and kind is not trace.SpanKind.CONSUMER:
            return
        scope = span.instrumentation_scope
        if scope is not None and scope.name in _OWN_SCOPES:
            return
        try:
            ctx = parent_context if parent_context is not None else otel_context.get_current()
            if kind is trace.SpanKind.PRODUCER:
                stamp_producer(span, ctx, in_hand())
                return
            incoming = received(ctx)
            if incoming is None:
                # confluent-kafka's shape: the span links to the message it processes.
                incoming = linked_received(span.links)
            if incoming is None:
                # An integration announced it (FastStream's telemetry extracts the trace
                # context with its own propagators, into a fresh context).
                expected = take_expected()
                if expected is not None:
                    incoming, attributes = expected
                    span.set_attributes(attributes)
            if incoming is None:
                return  # not one message (a poll span, a batch): nothing to restore
            stamp_consumer(span, incoming)
            # The consumer span stays the current span of the task or thread that received
            # the message until it receives the next one, with the message's baggage:
            # Kafka clients' instrumentations end it (and detach their context) when
            # getone/poll returns, and what the processing publishes must still be its
            # child, in its trace. Instrumentations that process inside the span (aio-pika)
            # restore their own context afterwards, which undoes this one too.
            otel_context.attach(trace.set_span_in_context(span, ctx))
            self._track(span)
        except Exception:  # tracing must never break the instrumented application
            return

    def _track(self, span: Span) -> None:
        tracer = self._markers()
        if tracer is None or self._delay_ns is None:
            return
        start = span.start_time or time.time_ns()
        work = _InFlight(span, tracer, start + self._delay_ns)
        # One dict operation, atomic under the GIL: no lock on the hot path.
        self._in_flight[span.context.span_id] = work
        # ``CLOCK.track`` spelled out (one set operation; the clock's thread is woken
        # only when it blocked after a quiet second), as tracebraid's own consumers do.
        CLOCK.in_flight.add(work)
        if CLOCK.blocked:
            CLOCK.unblock()

    def on_end(self, span: ReadableSpan) -> None:
        if span.kind is not trace.SpanKind.CONSUMER or not self._in_flight:
            return
        context = span.context
        if context is None:
            return
        work = self._in_flight.pop(context.span_id, None)
        if work is not None:
            CLOCK.in_flight.discard(work)  # ``CLOCK.untrack``, spelled out

    def shutdown(self) -> None:
        pending = list(self._in_flight.values())
        self._in_flight.clear()
        for work in pending:
            CLOCK.untrack(work)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
