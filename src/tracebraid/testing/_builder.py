"""The workflow builder behind ``tracebraid.testing.workflows``: spans written step by step.

Import it from ``tracebraid.testing.workflows``; this module only keeps the builder
apart from the ready-made shapes.

Example::

    >>> from tracebraid.testing.workflows import Try, WorkflowBuilder
    >>> builder = WorkflowBuilder(correlation_id="order_1")
    >>> post = builder.action("POST /orders", service="checkout-api", duration_ms=12)
    >>> placed = builder.publish(post, "order.placed", destination="orders")
    >>> work = builder.consume(placed, "reserve-inventory", service="inventory", wait_ms=2,
    ...                        tries=[Try(500, error="TimeoutError: dependency timed out",
    ...                                   backoff_ms=200), Try(30)])
    >>> len(work.attempts), len(builder.build().spans)
    (2, 6)
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from tracebraid import semconv
from tracebraid.model import (
    AttributeValue,
    CorrelationId,
    EventId,
    Span,
    SpanEvent,
    SpanId,
    SpanKind,
    SpanLink,
    StatusCode,
    TraceId,
)

__all__ = [
    "DEFAULT_FIRST_EVENT",
    "DEFAULT_START_NS",
    "Consumed",
    "Message",
    "Try",
    "Workflow",
    "WorkflowBuilder",
]

DEFAULT_START_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
DEFAULT_FIRST_EVENT = 8821  # event IDs count up from evt_8821
_MS = 1_000_000


def _ns(ms: float) -> int:
    return round(ms * _MS)


@dataclass(frozen=True, slots=True)
class Try:
    """One planned processing attempt: how long it runs and how it ends.

    ``error`` (``"TimeoutError: dependency timed out"``) makes it fail; ``backoff_ms`` is
    the pause before the next attempt; ``dead_letter`` marks the attempt that gave up.
    """

    duration_ms: float
    error: str | None = None
    backoff_ms: float = 0.0
    dead_letter: bool = False


@dataclass(frozen=True, slots=True)
class Message:
    """A published event: the producer span and the identities it carries."""

    span: Span
    event_id: EventId
    event_name: str
    destination: str
    correlation_id: CorrelationId | None


@dataclass(frozen=True, slots=True)
class Consumed:
    """The spans of one consumer's processing of one message, one per attempt."""

    message: Message
    attempts: tuple[Span, ...]
    markers: tuple[Span, ...]

    @property
    def last(self) -> Span:
        """The last attempt (the successful one, when there is one)."""
        return self.attempts[-1]


@dataclass(frozen=True, slots=True)
class Workflow:
    """A built workflow: its spans, plus the names tests look things up by."""

    spans: tuple[Span, ...]
    correlation_id: CorrelationId | None
    start_ns: int
    events: dict[str, EventId] = field(default_factory=dict)
    """Event name -> the event ID of its first publish."""

    @property
    def end_ns(self) -> int:
        """The latest end of any span."""
        return max(span.end_ns for span in self.spans)

    @property
    def trace_ids(self) -> frozenset[TraceId]:
        """Every trace the workflow spans."""
        return frozenset(span.trace_id for span in self.spans)


class WorkflowBuilder:
    """Writes the spans of a workflow step by step; ``build()`` returns them.

    ``stock=True`` writes what stock OpenTelemetry messaging instrumentation writes:
    ``messaging.operation``/``messaging.destination``/``messaging.message_id``, no
    consumer group, attempt, event name, correlation or start markers.
    """

    def __init__(
        self,
        *,
        correlation_id: str | None = "order_441",
        start_ns: int = DEFAULT_START_NS,
        seed: int = 0,
        stock: bool = False,
        markers: bool = True,
        system: str = "inproc",
        first_event: int = DEFAULT_FIRST_EVENT,
    ) -> None:
        self.correlation_id = CorrelationId(correlation_id) if correlation_id else None
        self.start_ns = start_ns
        self.stock = stock
        self.markers = markers and not stock
        self.system = system
        self._rng = random.Random(seed)
        self._spans: list[Span] = []
        self._positions: dict[tuple[TraceId, SpanId], int] = {}
        self._processing: dict[SpanId, EventId] = {}  # consumer span -> the event it handles
        self._next_event = first_event
        self._events: dict[str, EventId] = {}

    # -- identities --
    def new_trace_id(self) -> TraceId:
        """A fresh trace ID."""
        return TraceId(f"{self._rng.getrandbits(128) | 1:032x}")

    def _span_id(self) -> SpanId:
        return SpanId(f"{self._rng.getrandbits(64) | 1:016x}")

    def _event_id(self) -> EventId:
        event_id = EventId(f"evt_{self._next_event}")
        self._next_event += 1
        return event_id

    def offset_ms(self, ns: int) -> float:
        """Milliseconds from the workflow's start to the timestamp ``ns``."""
        return (ns - self.start_ns) / _MS

    def at(self, ms: float) -> int:
        """The timestamp ``ms`` milliseconds after the workflow's start."""
        return self.start_ns + _ns(ms)

    def _add(self, span: Span) -> Span:
        self._positions[span.key] = len(self._spans)
        self._spans.append(span)
        return span

    # -- spans --
    def action(
        self,
        name: str,
        *,
        service: str,
        duration_ms: float,
        at_ms: float = 0.0,
        kind: SpanKind = SpanKind.SERVER,
        trace_id: TraceId | None = None,
    ) -> Span:
        """The user action a workflow starts from (``POST /orders``): a root span."""
        return self._add(
            Span(
                trace_id=trace_id or self.new_trace_id(),
                span_id=self._span_id(),
                parent_span_id=None,
                name=name,
                kind=kind,
                start_ns=self.at(at_ms),
                end_ns=self.at(at_ms + duration_ms),
                service=service,
                status=StatusCode.OK if kind is SpanKind.SERVER else StatusCode.UNSET,
                attributes={"http.request.method": name.split(" ")[0]} if " " in name else {},
            )
        )

    def step(
        self,
        parent: Span,
        name: str,
        *,
        at_ms: float,
        duration_ms: float,
        error: str | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> Span:
        """A business step or client call inside ``parent`` (same trace)."""
        end = self.at(at_ms + duration_ms)
        status, status_message, events = _failure(error, end)
        return self._add(
            Span(
                trace_id=parent.trace_id,
                span_id=self._span_id(),
                parent_span_id=parent.span_id,
                name=name,
                kind=kind,
                start_ns=self.at(at_ms),
                end_ns=end,
                service=parent.service,
                status=status,
                status_message=status_message,
                events=events,
            )
        )

    def publish(
        self,
        parent: Span,
        event_name: str,
        *,
        destination: str,
        at_ms: float | None = None,
        duration_ms: float = 1.0,
        event_id: EventId | None = None,
    ) -> Message:
        """A PRODUCER span publishing ``event_name`` from inside ``parent``.

        Without ``at_ms`` it publishes just before ``parent`` ends. The causation ID is
        the event ``parent`` was processing, when ``parent`` is a consumer span.
        """
        if at_ms is None:
            start = max(parent.start_ns, parent.end_ns - _ns(duration_ms + 1.0))
        else:
            start = self.at(at_ms)
        event_id = event_id or self._event_id()
        self._events.setdefault(event_name, event_id)
        attributes: dict[str, AttributeValue] = {semconv.MESSAGING_SYSTEM: self.system}
        if self.stock:
            attributes["messaging.destination"] = destination
            attributes["messaging.message_id"] = event_id
        else:
            attributes[semconv.OPERATION_TYPE] = "send"
            attributes[semconv.DESTINATION] = destination
            attributes[semconv.MESSAGE_ID] = event_id
            attributes[semconv.EVENT_NAME] = event_name
            if self.correlation_id:
                attributes[semconv.CORRELATION_ID] = self.correlation_id
            cause = self._processing.get(parent.span_id)
            if cause:
                attributes[semconv.CAUSATION_ID] = cause
        span = self._add(
            Span(
                trace_id=parent.trace_id,
                span_id=self._span_id(),
                parent_span_id=parent.span_id,
                name=f"{destination} send" if self.stock else f"{event_name} publish",
                kind=SpanKind.PRODUCER,
                start_ns=start,
                end_ns=start + _ns(duration_ms),
                service=parent.service,
                attributes=attributes,
            )
        )
        return Message(span, event_id, event_name, destination, self.correlation_id)

    def consume(
        self,
        message: Message,
        step: str,
        *,
        service: str,
        wait_ms: float = 2.0,
        duration_ms: float = 20.0,
        tries: Sequence[Try] | None = None,
        group: str | None = None,
        propagate: bool = True,
        link_only: bool = False,
        in_flight: bool = False,
        clock_skew_ms: float = 0.0,
    ) -> Consumed:
        """A consumer processing ``message``: one CONSUMER span per attempt.

        ``wait_ms`` is the queue wait before the first attempt; ``tries`` plans every
        attempt (default: one successful attempt of ``duration_ms``). ``group`` is the
        consumer group (default: the service). ``propagate=False`` drops the trace
        context, as a producer that loses headers does: the consumer starts a new trace
        with neither parent nor link (an island). ``link_only=True`` starts a new trace
        linked to the producer (a correct, link-only hand-off). ``in_flight=True``
        writes only the start marker of the last attempt, as for work still running.
        ``clock_skew_ms`` shifts the consumer's clock back by that much.
        """
        plan = list(tries) if tries else [Try(duration_ms)]
        trace_id = message.span.trace_id
        parent: SpanId | None = message.span.span_id
        links: tuple[SpanLink, ...] = (SpanLink(message.span.trace_id, message.span.span_id),)
        if not propagate or link_only:
            trace_id, parent = self.new_trace_id(), None
            links = links if link_only else ()
        attempts: list[Span] = []
        markers: list[Span] = []
        start = message.span.end_ns + _ns(wait_ms) - _ns(clock_skew_ms)
        for number, planned in enumerate(plan, start=1):
            attributes = self._consumer_attributes(message, step, group or service, number)
            if not self.stock:
                attributes[semconv.OUTCOME] = (
                    "dead_letter" if planned.dead_letter else "error" if planned.error else "ok"
                )
                if planned.dead_letter:
                    attributes[semconv.DEAD_LETTER] = True
            end = start + _ns(planned.duration_ms)
            status, status_message, events = _failure(planned.error, end)
            span = Span(
                trace_id=trace_id,
                span_id=self._span_id(),
                parent_span_id=parent,
                name=f"{message.destination} receive" if self.stock else step,
                kind=SpanKind.CONSUMER,
                start_ns=start,
                end_ns=end,
                service=service,
                status=status,
                status_message=status_message,
                attributes=attributes,
                events=events,
                links=links,
            )
            last = number == len(plan)
            if self.markers or (in_flight and last):
                markers.append(self._add(_marker(span, self._span_id())))
            if not (in_flight and last):
                attempts.append(self._add(span))
                self._processing[span.span_id] = message.event_id
            start = span.end_ns + _ns(planned.backoff_ms)
        return Consumed(message, tuple(attempts), tuple(markers))

    def batch(
        self,
        messages: Sequence[Message],
        step: str,
        *,
        service: str,
        at_ms: float,
        duration_ms: float,
        group: str | None = None,
    ) -> Span:
        """A batch consumer: one CONSUMER span in a new trace linking every message."""
        attributes = self._consumer_attributes(None, step, group or service, 1)
        attributes[semconv.BATCH_COUNT] = len(messages)
        if messages:
            attributes[semconv.DESTINATION if not self.stock else "messaging.destination"] = (
                messages[0].destination
            )
        return self._add(
            Span(
                trace_id=self.new_trace_id(),
                span_id=self._span_id(),
                parent_span_id=None,
                name=step,
                kind=SpanKind.CONSUMER,
                start_ns=self.at(at_ms),
                end_ns=self.at(at_ms + duration_ms),
                service=service,
                attributes=attributes,
                links=tuple(
                    SpanLink(m.span.trace_id, m.span.span_id, {semconv.MESSAGE_ID: m.event_id})
                    for m in messages
                ),
            )
        )

    def add_link(self, holder: Span, target: Span) -> Span:
        """Give ``holder`` (already written) a link to ``target``; returns the new span."""
        updated = replace(holder, links=(*holder.links, SpanLink(target.trace_id, target.span_id)))
        self._spans[self._positions[holder.key]] = updated
        return updated

    def drop(self, span: Span) -> None:
        """Remove ``span``, as a lost export would: its children keep their parent ID."""
        position = self._positions.pop(span.key)
        last = self._spans.pop()
        if position < len(self._spans):
            self._spans[position] = last
            self._positions[last.key] = position

    def __len__(self) -> int:
        return len(self._spans)

    def build(self) -> Workflow:
        """The workflow written so far."""
        return Workflow(tuple(self._spans), self.correlation_id, self.start_ns, dict(self._events))

    def _consumer_attributes(
        self, message: Message | None, step: str, group: str, attempt: int
    ) -> dict[str, AttributeValue]:
        attributes: dict[str, AttributeValue] = {semconv.MESSAGING_SYSTEM: self.system}
        if self.stock:
            attributes["messaging.operation"] = "receive"
            if message is not None:
                attributes["messaging.destination"] = message.destination
                attributes["messaging.message_id"] = message.event_id
            return attributes
        attributes[semconv.OPERATION_TYPE] = "process"
        attributes[semconv.CONSUMER_GROUP] = group
        attributes[semconv.STEP] = step
        attributes[semconv.ATTEMPT] = attempt
        if self.correlation_id:
            attributes[semconv.CORRELATION_ID] = self.correlation_id
        if message is not None:
            attributes[semconv.DESTINATION] = message.destination
            attributes[semconv.MESSAGE_ID] = message.event_id
            attributes[semconv.EVENT_NAME] = message.event_name
            cause = message.span.attributes.get(semconv.CAUSATION_ID)
            if isinstance(cause, str):
                attributes[semconv.CAUSATION_ID] = cause
        return attributes


def _failure(error: str | None, at_ns: int) -> tuple[StatusCode, str, tuple[SpanEvent, ...]]:
    """Status, status message and exception event of a span that failed with ``error``."""
    if error is None:
        return StatusCode.UNSET, "", ()
    kind, _, text = error.partition(": ")
    exception = {"exception.type": kind, "exception.message": text or kind}
    return StatusCode.ERROR, error, (SpanEvent("exception", at_ns, exception),)


def _marker(span: Span, marker_id: SpanId) -> Span:
    """The start marker tracebraid's SDK emits for ``span``: an INTERNAL child of it,
    named ``"<step> started"``, carrying its attributes and the announced span ID."""
    attributes = dict(span.attributes)
    attributes[semconv.MARKER_FOR_SPAN] = span.span_id
    return Span(
        trace_id=span.trace_id,
        span_id=marker_id,
        parent_span_id=span.span_id,
        name=f"{span.name} started",
        kind=SpanKind.INTERNAL,
        start_ns=span.start_ns,
        end_ns=span.start_ns,
        service=span.service,
        attributes=attributes,
        scope=semconv.START_MARKER_SCOPE,
    )
