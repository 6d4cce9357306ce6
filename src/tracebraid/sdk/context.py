"""The identities a message carries, and the event being processed right now.

``MessageContext`` is what travels with one message; ``Processing`` is what a consumer
is doing with it. Both are immutable and keep every identity of DESIGN.md in its own
field. Two context variables hold the current correlation ID and the current
``Processing``, so a publish inside a consume carries correlation and causation without
the caller passing them.

Example::

    >>> with correlation("order_441"):
    ...     current_correlation_id()
    'order_441'
    >>> current_correlation_id() is None
    True
"""

from __future__ import annotations

import contextvars
import enum
import functools
import random
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ParamSpec, Protocol, TypeVar

from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context

from tracebraid.model import CorrelationId, EventId, SpanId, TraceId
from tracebraid.sdk._records import layout_twin

__all__ = [
    "BAGGAGE_CORRELATION_KEY",
    "MessageContext",
    "Outcome",
    "Processing",
    "carry_context",
    "correlation",
    "current_correlation_id",
    "current_processing",
    "new_correlation_id",
    "new_event_id",
]

P = ParamSpec("P")
R = TypeVar("R")

BAGGAGE_CORRELATION_KEY = "correlation_id"
"""The W3C baggage key that carries the correlation ID across every hop."""


class Outcome(enum.StrEnum):
    """How one attempt ended: the value of the ``tracebraid.outcome`` attribute."""

    OK = "ok"
    ERROR = "error"
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True, slots=True)
class MessageContext:
    """The identities one message carries in its headers or envelope.

    ``span_id`` is the message's creation context, the producer span: a consumer of
    this message is its child (the seed envelope calls it ``parentSpanId``).

    Example::

        >>> MessageContext(trace_id=None, span_id=None, correlation_id=CorrelationId("o_1"),
        ...                event_id=EventId("evt_1"), causation_id=None,
        ...                event_name="order.placed").has_trace_context
        False
    """

    trace_id: TraceId | None
    span_id: SpanId | None
    correlation_id: CorrelationId | None
    event_id: EventId | None
    causation_id: EventId | None
    event_name: str | None
    attempt: int | None = None
    trace_flags: int = 0x01
    trace_state: str = ""
    baggage: Mapping[str, str] = field(default_factory=dict)

    @property
    def has_trace_context(self) -> bool:
        """True when both a trace ID and a creation span ID are known."""
        return self.trace_id is not None and self.span_id is not None

    @property
    def sampled(self) -> bool:
        """The W3C trace-flags sampled bit."""
        return bool(self.trace_flags & 0x01)


@dataclass(frozen=True, slots=True)
class Processing:
    """The event a consumer is processing right now, and the span doing it."""

    event_id: EventId | None
    event_name: str | None
    correlation_id: CorrelationId | None
    consumer_name: str
    step: str
    attempt: int
    trace_id: TraceId
    span_id: SpanId
    parent_span_id: SpanId | None


_MessageFields = layout_twin(MessageContext)
_ProcessingFields = layout_twin(Processing)


def _message_context(
    trace_id: str | None,
    span_id: str | None,
    correlation_id: str | None,
    event_id: str | None,
    causation_id: str | None,
    event_name: str | None,
    attempt: int | None,
    trace_flags: int,
    trace_state: str,
    baggage: Mapping[str, str],
) -> MessageContext:
    """``MessageContext(...)`` at a fifth of the cost, for the hot path (see ``_records``)."""
    fields = _MessageFields()
    fields.trace_id = trace_id
    fields.span_id = span_id
    fields.correlation_id = correlation_id
    fields.event_id = event_id
    fields.causation_id = causation_id
    fields.event_name = event_name
    fields.attempt = attempt
    fields.trace_flags = trace_flags
    fields.trace_state = trace_state
    fields.baggage = baggage
    fields.__class__ = MessageContext
    record: MessageContext = fields
    return record


def _processing_record(
    event_id: str | None,
    event_name: str | None,
    correlation_id: str | None,
    consumer_name: str,
    step: str,
    attempt: int,
    trace_id: str,
    span_id: str,
    parent_span_id: str | None,
) -> Processing:
    """``Processing(...)`` at a fifth of the cost, for the hot path (see ``_records``)."""
    fields = _ProcessingFields()
    fields.event_id = event_id
    fields.event_name = event_name
    fields.correlation_id = correlation_id
    fields.consumer_name = consumer_name
    fields.step = step
    fields.attempt = attempt
    fields.trace_id = trace_id
    fields.span_id = span_id
    fields.parent_span_id = parent_span_id
    fields.__class__ = Processing
    record: Processing = fields
    return record


_random_bits = random.getrandbits


class _CurrentEvent(Protocol):
    """What a consume puts in the context: the event ID that every publish inside needs
    as its causation ID at once, the whole ``Processing`` record only when asked for."""

    _event_id: EventId | None

    @property
    def processing(self) -> Processing: ...


class _Current(Protocol):
    """What tracebraid's context variable holds: the workflow's correlation ID and the
    consume whose event is being processed. A consume is both; ``_Workflow`` pairs
    them when only the correlation changes (``correlation()``, a minted ID)."""

    _correlation: CorrelationId | None

    @property
    def _event(self) -> _CurrentEvent | None: ...


class _Workflow:
    """A correlation ID set inside (or outside) a consume, with that consume's event."""

    __slots__ = ("_correlation", "_event")

    def __init__(self, correlation: CorrelationId | None, event: _CurrentEvent | None) -> None:
        self._correlation = correlation
        self._event = event


# One context variable for both identities: a consume sets and resets one, not two.
_current: contextvars.ContextVar[_Current | None] = contextvars.ContextVar(
    "tracebraid_current", default=None
)

# OpenTelemetry's Context is an immutable dict and ``set_value`` copies it once per key.
# The hot paths set the span and the baggage together, so they build the dict once,
# under the keys OpenTelemetry's own setters use (read from those setters here, not
# hard-coded), and read the baggage dict without wrapping it in a read-only proxy.
_SPAN_KEY = next(iter(trace.set_span_in_context(trace.INVALID_SPAN, Context())))
_BAGGAGE_KEY = next(iter(otel_baggage.set_baggage(BAGGAGE_CORRELATION_KEY, "", Context())))


def current_correlation_id() -> CorrelationId | None:
    """The correlation ID of the workflow the current code runs for, if any."""
    current = _current.get()
    return None if current is None else current._correlation


def current_processing() -> Processing | None:
    """The event being processed in the current context (inside ``consuming``), if any."""
    current = _current.get()
    event = None if current is None else current._event
    return None if event is None else event.processing


@contextmanager
def correlation(correlation_id: str) -> Iterator[CorrelationId]:
    """Run a block as part of one business workflow, e.g. in the HTTP handler that starts it.

    The ID is also put into OpenTelemetry baggage, so stock instrumentation forwards it.

    Example::

        >>> with correlation("order_441") as cid:
        ...     cid
        'order_441'
    """
    cid = CorrelationId(correlation_id)
    outer = _current.get()
    var_token = _current.set(_Workflow(cid, None if outer is None else outer._event))
    otel_token = otel_context.attach(otel_baggage.set_baggage(BAGGAGE_CORRELATION_KEY, cid))
    try:
        yield cid
    finally:
        otel_context.detach(otel_token)
        _current.reset(var_token)


def new_event_id() -> EventId:
    """A fresh event ID, ``evt_`` and 32 hex characters (random, like a UUID4)."""
    # Like OpenTelemetry's own ID generator: 128 random bits from ``random`` (re-seeded
    # after fork), several times cheaper than uuid4() and no system call per event;
    # ``to_bytes(16).hex()`` is the zero-padded lowercase hex, three times cheaper than
    # format(..., "032x").
    return EventId("evt_" + _random_bits(128).to_bytes(16).hex())


def new_correlation_id() -> CorrelationId:
    """A fresh correlation ID, ``corr_`` and 32 hex characters."""
    return CorrelationId("corr_" + _random_bits(128).to_bytes(16).hex())


def carry_context(fn: Callable[P, R]) -> Callable[P, R]:
    """Bind the current context (spans, correlation, current event) to ``fn`` for a thread.

    Thread pools do not copy context variables; wrap the callable you submit.

    Example::

        >>> from concurrent.futures import ThreadPoolExecutor
        >>> with correlation("order_441"), ThreadPoolExecutor(1) as pool:
        ...     pool.submit(carry_context(current_correlation_id)).result()
        'order_441'
    """
    ctx = contextvars.copy_context()

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        # A copy per call: the same bound callable may run in two threads at once.
        return ctx.copy().run(fn, *args, **kwargs)

    return run
