"""Processing a delivered event: a CONSUMER span named after the business step.

For one message the span is a child of the message's creation context *and* links to
it (one trace per workflow in any backend; the link survives backends that re-root).
For a batch it only links, one link per message, as the messaging conventions say.
While the block runs, the correlation ID and the event being processed are the
current ones, so every publish inside carries correlation and causation.

Example::

    >>> from tracebraid.sdk.propagation import extract
    >>> incoming = extract({"x-event-id": "evt_1", "x-correlation-id": "order_441"})
    >>> with consuming(incoming, step="reserve-inventory", consumer="inventory",
    ...                destination="orders") as c:
    ...     c.processing.correlation_id
    'order_441'
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Sequence
from types import TracebackType

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode

from tracebraid import semconv
from tracebraid.errors import InputError
from tracebraid.model import Attributes, AttributeValue, CorrelationId, EventId, SpanId
from tracebraid.sdk import _tracers
from tracebraid.sdk._incoming import Incoming, common, resolve
from tracebraid.sdk.context import (
    _BAGGAGE_KEY,
    _SPAN_KEY,
    BAGGAGE_CORRELATION_KEY,
    MessageContext,
    Outcome,
    Processing,
    _Current,
    _current,
    _CurrentEvent,
    _processing_record,
)
from tracebraid.sdk.marker import CLOCK, PendingMarker
from tracebraid.sdk.propagation import Extracted

__all__ = ["Consumption", "consuming", "consuming_batch"]

_NO_ATTRIBUTES: dict[str, AttributeValue] = {}  # never mutated
_ROOT = Context()  # contexts are immutable: one empty root serves every consumer
_OUTCOME_VALUES = {outcome: outcome.value for outcome in Outcome}  # .value is a slow property


class Consumption:
    """One attempt at processing one message (or one batch): ``with`` or ``async with``.

    Leaving the block with an exception records it, sets ERROR status and outcome
    ``error`` unless ``fail`` or ``dead_letter`` already chose an outcome; leaving it
    cleanly sets outcome ``ok``.
    """

    __slots__ = (
        "_attributes",
        "_backoff_ms",
        "_batch",
        "_consumer",
        "_correlation",
        "_current_token",
        "_destination",
        "_event_id",
        "_event_name",
        "_link_only",
        "_marker_attributes",
        "_marker_due_ns",
        "_marker_tracer",
        "_otel_token",
        "_parent_id",
        "_parents",
        "_provider",
        "_record",
        "_recorded",
        "_start_ns",
        "_started_with",
        "_step",
        "_system",
        "_tracked",
        "_wants_marker",
        "attempt",
        "messages",
        "no_parent",
        "outcome",
        "span",
    )

    span: Span
    _correlation: CorrelationId | None
    _event_id: EventId | None
    _event_name: str | None
    _parent_id: SpanId | None
    _current_token: contextvars.Token[_Current | None]
    _otel_token: contextvars.Token[Context]
    _marker_tracer: trace.Tracer
    _marker_attributes: dict[str, AttributeValue]
    _marker_due_ns: int
    _start_ns: int
    _started_with: tuple[Context, list[Link], dict[str, AttributeValue], trace.Tracer, int]

    def __init__(
        self,
        incoming: Sequence[Incoming],
        batch: bool,
        step: str,
        consumer: str,
        destination: str,
        system: str,
        attempt: int | None,
        link_only: bool,
        start_marker: bool | None,
        attributes: Attributes | None,
        tracer_provider: trace.TracerProvider | None,
    ) -> None:
        if len(incoming) == 1:
            first = incoming[0]
            if isinstance(first, Extracted):
                message, parent, self.no_parent = first.context, first.span_context, first.no_parent
            else:
                message, parent, self.no_parent = resolve(first)
            self.messages: tuple[MessageContext, ...] = (message,)
            self._parents: tuple[trace.SpanContext | None, ...] = (parent,)
            first_attempt = message.attempt
        else:
            resolved = [resolve(item) for item in incoming]
            self.messages = tuple(r[0] for r in resolved)
            self._parents = tuple(r[1] for r in resolved)
            self.no_parent = None
            first_attempt = None
        self._batch = batch
        self._step = step
        self._consumer = consumer
        self._destination = destination
        self._system = system
        self.attempt = attempt or first_attempt or 1
        self._link_only = link_only or batch
        self._wants_marker = start_marker
        self._attributes = attributes
        self._provider = tracer_provider
        self.outcome: Outcome | None = None
        self._backoff_ms: float | None = None
        self._recorded: BaseException | None = None
        self._tracked = False
        self._record: Processing | None = None

    @property
    def message(self) -> MessageContext:
        """The message being processed (for a batch, its first message)."""
        return self.messages[0]

    @property
    def processing(self) -> Processing:
        """What ``current_processing()`` returns inside the block (built when first asked
        for: most processing never asks, and every publish needs only the event ID)."""
        record = self._record
        if record is None:
            span_context = self.span.get_span_context()
            record = self._record = _processing_record(
                self._event_id,
                self._event_name,
                self._correlation,
                self._consumer,
                self._step,
                self.attempt,
                span_context.trace_id.to_bytes(16).hex(),
                span_context.span_id.to_bytes(8).hex(),
                self._parent_id,
            )
        return record

    def __enter__(self) -> Consumption:
        correlation: CorrelationId | None
        if self._batch:
            shared = common([m.correlation_id for m in self.messages])
            correlation = CorrelationId(shared) if shared else None
            event_name = common([m.event_name for m in self.messages])
            event_id = causation = None
        else:
            first = self.messages[0]
            correlation, event_id = first.correlation_id, first.event_id
            event_name, causation = first.event_name, first.causation_id
        self._correlation = correlation
        self._event_id = event_id
        self._event_name = event_name
        tracers = _tracers.tracers(self._provider)
        workflows = tracers.workflows
        # A dropped workflow (WorkflowSampler): no SDK span, no start marker, and no
        # attributes unless a failure may be re-recorded (keep_retries, _kept_failure).
        dropped_by = (
            workflows
            if workflows is not None
            and correlation is not None
            and workflows.drops(correlation, self.attempt)
            else None
        )
        attributes = (
            _NO_ATTRIBUTES
            if dropped_by is not None and not dropped_by.keep_retries
            else self._span_attributes(correlation, event_id, event_name, causation)
        )

        parents = self._parents
        self._parent_id = None
        if self._link_only:
            # Processing inside another span: its child, the message(s) only linked.
            parent_ctx = otel_context.get_current()
            links = [Link(p) for p in parents if p is not None]
            values = dict(parent_ctx)
            if correlation is not None:
                baggage = parent_ctx.get(_BAGGAGE_KEY)
                values[_BAGGAGE_KEY] = {
                    **(baggage if type(baggage) is dict else {}),
                    BAGGAGE_CORRELATION_KEY: correlation,
                }
        else:
            # A new context: whatever span is current (a broker loop's) is not the parent.
            parent = parents[0]
            if parent is None:
                parent_ctx = _ROOT
                links = []
            else:
                parent_ctx = Context({_SPAN_KEY: trace.NonRecordingSpan(parent)})
                links = [Link(parent)]
                self._parent_id = self.messages[0].span_id
            carried = self.messages[0].baggage
            values = {}
            if correlation is not None:
                values[_BAGGAGE_KEY] = {**carried, BAGGAGE_CORRELATION_KEY: correlation}
            elif carried:
                values[_BAGGAGE_KEY] = dict(carried)
        start_ns = time.time_ns()
        span: Span
        if dropped_by is not None:
            span = self.span = dropped_by.dropped_span(parent_ctx)
        else:
            span = self.span = tracers.spans.start_span(
                self._step,
                context=parent_ctx,
                kind=SpanKind.CONSUMER,
                attributes=attributes,
                links=links,
                start_time=start_ns,
            )
        # Kept to re-record a failed attempt that the sampler dropped (see _kept_failure).
        self._started_with = (parent_ctx, links, attributes, tracers.spans, start_ns)
        # The block runs in the consumer span, with the message's baggage.
        values[_SPAN_KEY] = span
        self._otel_token = otel_context.attach(Context(values))
        self._current_token = _current.set(self)
        if dropped_by is None and (
            tracers.start_markers if self._wants_marker is None else self._wants_marker
        ):
            self._marker_tracer = tracers.markers
            self._marker_attributes = attributes
            self._start_ns = start_ns
            if tracers.marker_delay_ns > 0:
                self._marker_due_ns = start_ns + tracers.marker_delay_ns
                self._tracked = True
                CLOCK.in_flight.add(self)  # CLOCK.track, inlined
                if CLOCK.blocked:
                    CLOCK.unblock()
            elif span.get_span_context().is_valid:
                self._start_marker().emit()
        return self

    def _span_attributes(
        self,
        correlation: CorrelationId | None,
        event_id: EventId | None,
        event_name: str | None,
        causation: EventId | None,
    ) -> dict[str, AttributeValue]:
        attributes: dict[str, AttributeValue] = {
            semconv.MESSAGING_SYSTEM: self._system,
            semconv.DESTINATION: self._destination,
            semconv.OPERATION_TYPE: "process",
            semconv.CONSUMER_GROUP: self._consumer,
            semconv.STEP: self._step,
            semconv.ATTEMPT: self.attempt,
        }
        if event_id is not None:
            attributes[semconv.MESSAGE_ID] = event_id
        if correlation is not None:
            attributes[semconv.CORRELATION_ID] = correlation
        if event_name is not None:
            attributes[semconv.EVENT_NAME] = event_name
        if causation is not None:
            attributes[semconv.CAUSATION_ID] = causation
        if self._batch:
            attributes[semconv.BATCH_COUNT] = len(self.messages)
        if self._attributes:
            attributes.update(self._attributes)
        return attributes

    @property
    def _event(self) -> _CurrentEvent:
        """The consume whose event is being processed: this one (see ``context._Current``)."""
        return self

    def _start_marker(self) -> PendingMarker:
        """The start marker announcing this processing (``CLOCK`` asks when it is due)."""
        return PendingMarker(
            self._marker_tracer,
            self._step,
            self.span.get_span_context(),
            self._marker_attributes,
            self._start_ns,
        )

    def fail(
        self,
        error: BaseException | None = None,
        *,
        outcome: Outcome = Outcome.RETRY,
        backoff_ms: float | None = None,
    ) -> None:
        """Record that this attempt failed, without raising: ``outcome`` says what happens
        next (``retry`` with ``backoff_ms`` before redelivery, ``dead_letter``, ``error``).
        """
        self.outcome = outcome
        if error is not None:
            self.span.record_exception(error)
            self._recorded = error
            self.span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        else:
            self.span.set_status(Status(StatusCode.ERROR, f"attempt ended with {outcome}"))
        if backoff_ms is not None:
            self._backoff_ms = backoff_ms
        if outcome is Outcome.DEAD_LETTER:
            self.span.set_attribute(semconv.DEAD_LETTER, True)

    def dead_letter(self, error: BaseException | None = None) -> None:
        """Record that this message goes to the dead-letter destination after this attempt."""
        self.fail(error, outcome=Outcome.DEAD_LETTER)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        span = self.span
        if self._tracked:
            CLOCK.in_flight.discard(self)  # CLOCK.untrack, inlined
        if (exc is not None or self.outcome not in (None, Outcome.OK)) and not span.is_recording():
            span = self._kept_failure(exc)
        try:
            if exc is not None:
                if exc is not self._recorded:
                    span.record_exception(exc, escaped=True)
                if self.outcome is None:
                    self.outcome = Outcome.ERROR
                    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            elif self.outcome is None:
                self.outcome = Outcome.OK
            if self._backoff_ms is None:
                span.set_attribute(semconv.OUTCOME, _OUTCOME_VALUES[self.outcome])
            else:
                span.set_attributes(
                    {
                        semconv.OUTCOME: _OUTCOME_VALUES[self.outcome],
                        semconv.BACKOFF_MS: self._backoff_ms,
                    }
                )
            span.end()
        finally:
            _current.reset(self._current_token)
            otel_context.detach(self._otel_token)

    def _kept_failure(self, exc: BaseException | None) -> Span:
        """A failed attempt the sampler dropped at its start, asked for again now that it
        failed: a ``WorkflowSampler(keep_retries=True)`` keeps it (marked partial), any
        other sampler drops it again. Its span ID is new: work it published points at the
        dropped one, which is what the partial mark tells the analysis."""
        parent_ctx, links, attributes, tracer, start_ns = self._started_with
        span = tracer.start_span(
            self._step,
            context=parent_ctx,
            kind=SpanKind.CONSUMER,
            attributes={**attributes, semconv.SAMPLING_KEEP: "failure"},
            links=links,
            start_time=start_ns,
        )
        if span.is_recording():
            error = self._recorded
            if error is not None and error is not exc:
                span.record_exception(error)
            if error is not None or exc is not None:
                shown = error if error is not None else exc
                span.set_status(Status(StatusCode.ERROR, f"{type(shown).__name__}: {shown}"))
            else:
                span.set_status(Status(StatusCode.ERROR, f"attempt ended with {self.outcome}"))
            if self.outcome is Outcome.DEAD_LETTER:
                span.set_attribute(semconv.DEAD_LETTER, True)
        return span

    async def __aenter__(self) -> Consumption:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def consuming(
    incoming: Incoming,
    *,
    step: str,
    consumer: str,
    destination: str,
    system: str = "tracebraid",
    attempt: int | None = None,
    link_only: bool = False,
    start_marker: bool | None = None,
    attributes: Attributes | None = None,
    tracer_provider: trace.TracerProvider | None = None,
) -> Consumption:
    """Process one message as business step ``step`` of consumer group ``consumer``.

    ``incoming`` is what ``extract``/``extract_envelope`` returned (or a ``MessageContext``).
    ``attempt`` defaults to the attempt the message carries, else 1. ``link_only=True``
    makes the span a child of the *current* span and only links the message (processing
    that runs inside another span, per the messaging conventions).
    """
    return Consumption(
        (incoming,),
        False,
        step,
        consumer,
        destination,
        system,
        attempt,
        link_only,
        start_marker,
        attributes,
        tracer_provider,
    )


def consuming_batch(
    incoming: Sequence[Incoming],
    *,
    step: str,
    consumer: str,
    destination: str,
    system: str = "tracebraid",
    attempt: int = 1,
    start_marker: bool | None = None,
    attributes: Attributes | None = None,
    tracer_provider: trace.TracerProvider | None = None,
) -> Consumption:
    """Process a batch as one step: one CONSUMER span linking every message, parented by
    the current span (if any). A batch has no single current event, so publishes inside
    carry no causation ID; they keep the correlation ID if every message shares one.
    """
    if not incoming:
        raise InputError("consuming_batch needs at least one message; got an empty batch")
    return Consumption(
        tuple(incoming),
        True,
        step,
        consumer,
        destination,
        system,
        attempt,
        True,
        start_marker,
        attributes,
        tracer_provider,
    )
