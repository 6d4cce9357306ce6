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

from types import TracebackType

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.span import DEFAULT_TRACE_STATE

from tracebraid import semconv
from tracebraid.model import Attributes, AttributeValue, CorrelationId
from tracebraid.sdk import _tracers
from tracebraid.sdk._header_values import CORRELATION_PREFIX, correlation_baggage
from tracebraid.sdk._traceparent import format_traceparent
from tracebraid.sdk.carriers import (
    BAGGAGE_HEADER,
    CAUSATION_ID_HEADER,
    CORRELATION_ID_HEADER,
    EVENT_ID_HEADER,
    EVENT_NAME_HEADER,
    TRACEPARENT_HEADER,
    HeaderCarrier,
)
from tracebraid.sdk.context import (
    _BAGGAGE_KEY,
    _SPAN_KEY,
    BAGGAGE_CORRELATION_KEY,
    MessageContext,
    _current,
    _message_context,
    _random_bits,
    _Workflow,
)
from tracebraid.sdk.envelope import to_envelope
from tracebraid.sdk.propagation import inject_context

__all__ = ["Publication", "publishing"]


class Publication:
    """One event being published: use with ``with`` or ``async with``; yields itself.

    After entering, ``message`` holds the new event's identities and ``span`` the PRODUCER
    span; send the message inside the block so the span covers the send.
    """

    __slots__ = (
        "_attributes",
        "_causation",
        "_context",
        "_correlation",
        "_correlation_baggage",
        "_destination",
        "_event_id",
        "_event_name",
        "_given_correlation",
        "_given_event_id",
        "_message",
        "_others",
        "_provider",
        "_system",
        "_token",
        "span",
    )

    span: Span
    _correlation: str
    _event_id: str

    def __init__(
        self,
        event_name: str,
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
        self._given_event_id = event_id
        self._given_correlation = correlation_id
        self._attributes = attributes
        self._provider = tracer_provider
        self._message: MessageContext | None = None

    def __enter__(self) -> Publication:
        current = otel_context.get_current()
        # OpenTelemetry's own baggage dict (never mutated: contexts are immutable).
        baggage = current.get(_BAGGAGE_KEY)
        if baggage is not None and type(baggage) is not dict:
            baggage = None
        workflow = _current.get()
        event = None if workflow is None else workflow._event  # the consume we are inside
        # Correlation: explicit > the workflow's (contextvar) > OTel baggage > a new one.
        correlation = self._given_correlation or (
            None if workflow is None else workflow._correlation
        )
        minted_baggage = None
        if correlation is None:
            found = baggage.get(BAGGAGE_CORRELATION_KEY) if baggage else None
            if isinstance(found, str) and found:
                correlation = found
            else:
                correlation = "corr_" + _random_bits(128).to_bytes(16).hex()
                # Only unreserved characters: the baggage member needs no encoding.
                minted_baggage = CORRELATION_PREFIX + correlation
                if event is not None:
                    # Processing an event that had no correlation ID: every follow-up of
                    # this processing shares this one; ``consuming`` resets it on exit.
                    _current.set(_Workflow(CorrelationId(correlation), event))
        self._correlation = correlation
        self._correlation_baggage = minted_baggage
        event_id = self._event_id = (
            self._given_event_id or "evt_" + _random_bits(128).to_bytes(16).hex()
        )
        causation = self._causation = None if event is None else event._event_id
        tracers = _tracers.tracers(self._provider)
        workflows = tracers.workflows
        if workflows is not None and workflows.drops(correlation):
            # A dropped workflow: no attributes, no SDK span, the identities all the same.
            self.span = workflows.dropped_span(current)
        else:
            self.span = tracers.spans.start_span(
                self._event_name + " publish",
                context=current,
                kind=SpanKind.PRODUCER,
                attributes=self._span_attributes(correlation, event_id, causation),
            )
        span = self.span
        # The block runs in the producer span, with the correlation ID in its baggage.
        if baggage is None:
            self._others = None
            baggage = {BAGGAGE_CORRELATION_KEY: correlation}
        else:
            others = {k: str(v) for k, v in baggage.items() if k != BAGGAGE_CORRELATION_KEY}
            self._others = others or None
            if baggage.get(BAGGAGE_CORRELATION_KEY) != correlation:
                baggage = {**baggage, BAGGAGE_CORRELATION_KEY: correlation}
        ctx = self._context = Context({**current, _SPAN_KEY: span, _BAGGAGE_KEY: baggage})
        self._token = otel_context.attach(ctx)
        return self

    def _span_attributes(
        self, correlation: str, event_id: str, causation: str | None
    ) -> dict[str, AttributeValue]:
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
        return attributes

    @property
    def message(self) -> MessageContext:
        """The identities of the event being published (after entering the block)."""
        message = self._message
        if message is None:
            span_context = self.span.get_span_context()
            valid = span_context.is_valid
            message = self._message = _message_context(
                span_context.trace_id.to_bytes(16).hex() if valid else None,
                span_context.span_id.to_bytes(8).hex() if valid else None,
                self._correlation,
                self._event_id,
                self._causation,
                self._event_name,
                None,
                int(span_context.trace_flags) if valid else 0x01,
                span_context.trace_state.to_header() if span_context.trace_state else "",
                self._others or {},
            )
        return message

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
        if as_bytes or type(carrier) is not dict or not self._write_headers(carrier):
            inject_context(self._context, self.message, carrier, as_bytes=as_bytes)

    def headers(self) -> dict[str, str]:
        """A new ``dict[str, str]`` of headers for this event."""
        carrier: dict[str, str] = {}
        if not self._write_headers(carrier):
            inject_context(self._context, self.message, carrier)
        return carrier

    def _write_headers(self, carrier: dict[str, str]) -> bool:
        """The hot path of ``inject``: the headers written straight from this publication,
        when nothing needs the propagators' generality (a valid span context without
        tracestate, and no baggage besides the correlation ID). False: not written."""
        span_context = self.span.get_span_context()
        trace_state = span_context.trace_state
        if self._others is not None or (trace_state is not DEFAULT_TRACE_STATE and trace_state):
            return False
        traceparent = format_traceparent(span_context)
        if traceparent is None:
            return False
        correlation = self._correlation
        carrier[TRACEPARENT_HEADER] = traceparent
        baggage = self._correlation_baggage or correlation_baggage(correlation)
        if baggage is not None:
            carrier[BAGGAGE_HEADER] = baggage
        carrier[CORRELATION_ID_HEADER] = correlation
        carrier[EVENT_ID_HEADER] = self._event_id
        if self._causation is not None:
            carrier[CAUSATION_ID_HEADER] = self._causation
        carrier[EVENT_NAME_HEADER] = self._event_name
        return True

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
        event_name, destination, system, event_id, correlation_id, attributes, tracer_provider
    )
