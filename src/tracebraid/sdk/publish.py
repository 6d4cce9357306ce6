"""Publishing an event: a PRODUCER span, and every identity injected into the message.

Inside a consume, the event being processed becomes the new event's causation ID and
its correlation ID carries over, without the caller passing either: a follow-up event
cannot lose its workflow by accident.

Example::

    >>> with publishing("order.placed", destination="orders") as pub:
    ...     headers = pub.headers()
    ...     # broker.send("orders", body, headers=headers)
    >>> sorted(headers)[:3]
    ['baggage', 'x-correlation-id', 'x-event-id']
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType

from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from tracebraid import semconv
from tracebraid.model import Attributes, AttributeValue
from tracebraid.sdk import _tracers
from tracebraid.sdk.carriers import HeaderCarrier
from tracebraid.sdk.context import (
    BAGGAGE_CORRELATION_KEY,
    MessageContext,
    Processing,
    _correlation,
    _message_context,
    _processing,
    new_correlation_id,
    new_event_id,
)
from tracebraid.sdk.envelope import to_envelope
from tracebraid.sdk.propagation import inject_context, inject_traced

__all__ = ["Publication", "publishing"]


class Publication:
    """One event being published: use with ``with`` or ``async with``; yields itself.

    After entering, ``message`` holds the new event's identities and ``span`` the PRODUCER
    span; send the message inside the block so the span covers the send.
    """

    __slots__ = (
        "_attributes",
        "_context",
        "_correlation_id",
        "_destination",
        "_event_id",
        "_event_name",
        "_provider",
        "_system",
        "_token",
        "_traced",
        "message",
        "span",
    )

    message: MessageContext
    span: Span

    def __init__(
        self,
        event_name: str,
        *,
        destination: str,
        system: str,
        event_id: str | None,
        correlation_id: str | None,
        attributes: Attributes | None,
        tracer_provider: trace.TracerProvider | None,
    ) -> None:
        self._event_name = event_name
        self._destination = destination
        self._system = system
        self._event_id = event_id
        self._correlation_id = correlation_id
        self._attributes = attributes
        self._provider = tracer_provider

    def _resolve_correlation(
        self, baggage: Mapping[str, object], processing: Processing | None
    ) -> str:
        if self._correlation_id:
            return self._correlation_id
        found = _correlation.get()
        if found is not None:
            return found
        from_baggage = baggage.get(BAGGAGE_CORRELATION_KEY)
        if isinstance(from_baggage, str) and from_baggage:
            return from_baggage
        minted = new_correlation_id()
        if processing is not None:
            # Processing an event that had no correlation ID: every follow-up of this
            # processing shares the one minted here; ``consuming`` resets it on exit.
            _correlation.set(minted)
        return minted

    def __enter__(self) -> Publication:
        current = otel_context.get_current()
        baggage = otel_baggage.get_all(current)
        processing = _processing.get()
        correlation = self._resolve_correlation(baggage, processing)
        event_id = self._event_id or new_event_id()
        causation = processing.event_id if processing is not None else None
        attributes: dict[str, AttributeValue] = {
            semconv.MESSAGING_SYSTEM: self._system,
            semconv.DESTINATION: self._destination,
            semconv.OPERATION_TYPE: "send",
            semconv.MESSAGE_ID: event_id,
            semconv.CORRELATION_ID: correlation,
            semconv.EVENT_NAME: self._event_name,
        }
        if causation is not None:
            attributes[semconv.CAUSATION_ID] = causation
        if self._attributes:
            attributes.update(self._attributes)
        span = _tracers.tracers(self._provider).spans.start_span(
            self._event_name + " publish",
            context=current,
            kind=SpanKind.PRODUCER,
            attributes=attributes,
        )
        ctx = trace.set_span_in_context(span, current)
        if baggage.get(BAGGAGE_CORRELATION_KEY) != correlation:
            ctx = otel_baggage.set_baggage(BAGGAGE_CORRELATION_KEY, correlation, ctx)
        others = (
            {k: str(v) for k, v in baggage.items() if k != BAGGAGE_CORRELATION_KEY}
            if baggage
            else {}
        )
        span_context = span.get_span_context()
        valid = span_context.is_valid
        trace_state = span_context.trace_state.to_header() if span_context.trace_state else ""
        self.message = _message_context(
            format(span_context.trace_id, "032x") if valid else None,
            format(span_context.span_id, "016x") if valid else None,
            correlation,
            event_id,
            causation,
            self._event_name,
            None,
            int(span_context.trace_flags) if valid else 0x01,
            trace_state,
            others,
        )
        # Most messages need none of the propagators' generality (see ``inject_traced``).
        self._traced = valid and not trace_state and not others
        self.span = span
        self._context = ctx
        self._token = otel_context.attach(ctx)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is not None:
                self.span.record_exception(exc, escaped=True)
                self.span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            self.span.end()
        finally:
            otel_context.detach(self._token)

    async def __aenter__(self) -> Publication:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def inject(self, carrier: HeaderCarrier, *, as_bytes: bool = False) -> None:
        """Write the event's identities and trace context into ``carrier``."""
        if self._traced and not as_bytes and type(carrier) is dict:
            inject_traced(self.message, carrier)
        else:
            inject_context(self._context, self.message, carrier, as_bytes=as_bytes)

    def headers(self) -> dict[str, str]:
        """A new ``dict[str, str]`` of headers for this event."""
        carrier: dict[str, str] = {}
        if self._traced:
            inject_traced(self.message, carrier)
        else:
            inject_context(self._context, self.message, carrier)
        return carrier

    def envelope(self) -> dict[str, object]:
        """The seed's JSON envelope fields for this event (add your payload to it)."""
        return to_envelope(self.message)


def publishing(
    event_name: str,
    *,
    destination: str,
    system: str = "tracebraid",
    event_id: str | None = None,
    correlation_id: str | None = None,
    attributes: Attributes | None = None,
    tracer_provider: trace.TracerProvider | None = None,
) -> Publication:
    """Publish ``event_name`` to ``destination`` under a PRODUCER span.

    The event ID is ``event_id`` or a fresh ``evt_…``; the correlation ID is
    ``correlation_id``, else the current workflow's, else a fresh ``corr_…``; the
    causation ID is the event being processed in the current context, if any.
    """
    return Publication(
        event_name,
        destination=destination,
        system=system,
        event_id=event_id,
        correlation_id=correlation_id,
        attributes=attributes,
        tracer_provider=tracer_provider,
    )
