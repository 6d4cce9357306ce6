"""Identities for spans and messages tracebraid did not create: stock instrumentation's.

``tracebraid.propagator`` and ``tracebraid.SpanProcessor`` share these rules, so a
producer span and the message it sends always name the same event:

- **incoming** (``Received``): what the propagator read from a message, kept in the
  OpenTelemetry ``Context`` the instrumentation extracted (``received(ctx)``).
- **ambient** (``ambient``): the workflow's correlation ID and the event being processed,
  from the message received in ``ctx``, else tracebraid's current processing (its own
  ``consuming`` or a stock consumer span ``restore`` made current), else the
  ``correlation_id`` baggage entry.
- **carried** (``carried``): identities the application already put in the message it
  publishes (``x-event-id`` or a CloudEvent's ``ce-id``, ``ce-type``...): those are the
  message's own, adopted by its producer span and never overwritten.
- a producer span's event ID is the message's own, else the one its instrumentation
  recorded (``messaging.message.id``: AMQP's ``message_id``), else a fresh ``evt_…``,
  stored on the span so the propagator writes the same one.

Example::

    >>> from opentelemetry.context import Context
    >>> from tracebraid.sdk.propagation import extract
    >>> incoming = Received(extract({"x-event-id": "evt_1", "x-correlation-id": "o_1"}), None)
    >>> ambient(with_received(Context(), incoming))
    ('o_1', 'evt_1')
    >>> carried([("ce_id", b"evt_9"), ("ce_type", b"order.placed")]).event_name
    'order.placed'
"""

from __future__ import annotations

import contextlib
import contextvars
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import Span

from tracebraid import semconv
from tracebraid.model import AttributeValue, CorrelationId, EventId, SpanId
from tracebraid.sdk import carriers as h
from tracebraid.sdk.cloudevents import CloudEventIdentity, binary_attributes, cloudevent_identity
from tracebraid.sdk.context import (
    BAGGAGE_CORRELATION_KEY,
    Processing,
    _current,
    _processing_record,
    new_event_id,
)
from tracebraid.sdk.propagation import Extracted

__all__ = [
    "CLOUDEVENT_ID",
    "CLOUDEVENT_SOURCE",
    "CLOUDEVENT_TYPE",
    "NOTHING_CARRIED",
    "Carried",
    "Received",
    "ambient",
    "carried",
    "expecting",
    "finished",
    "in_hand",
    "is_readable",
    "linked_received",
    "producer_event_id",
    "received",
    "remember_extracted",
    "restore",
    "sending",
    "span_attributes",
    "stamp_consumer",
    "stamp_producer",
    "take_expected",
    "with_received",
]

# The OpenTelemetry CloudEvents span attributes.
CLOUDEVENT_ID = "cloudevents.event_id"
CLOUDEVENT_TYPE = "cloudevents.event_type"
CLOUDEVENT_SOURCE = "cloudevents.event_source"

_RECEIVED_KEY = otel_context.create_key("tracebraid-received")


@dataclass(frozen=True, slots=True)
class Received:
    """What the propagator read from one incoming message: tracebraid's identities (with
    ``no_parent`` saying why a parent is missing) and the CloudEvent it is, if one."""

    extracted: Extracted
    cloud_event: CloudEventIdentity | None


def received(ctx: Context | None = None) -> Received | None:
    """The message the propagator extracted into ``ctx`` (default: the current context)."""
    found = otel_context.get_value(_RECEIVED_KEY, ctx)
    return found if isinstance(found, Received) else None


def with_received(ctx: Context, incoming: Received) -> Context:
    """``ctx`` holding ``incoming`` as the message received."""
    return otel_context.set_value(_RECEIVED_KEY, incoming, ctx)


# The message the propagator read last in this task or thread. Instrumentations that
# follow the messaging conventions' other shape (confluent-kafka's) extract only to link
# the consumer span to the message and start the span in another context.
_last_extracted: contextvars.ContextVar[Received | None] = contextvars.ContextVar(
    "tracebraid_last_extracted", default=None
)


def remember_extracted(incoming: Received) -> None:
    """Note ``incoming`` as the message this task or thread read last (the propagator)."""
    _last_extracted.set(incoming)


def linked_received(links: Sequence[trace.Link]) -> Received | None:
    """The message a consumer span links to, when it links to exactly one and that one
    is the message this task or thread extracted last (``None`` for a batch)."""
    if len(links) != 1:
        return None
    incoming = _last_extracted.get()
    if incoming is None:
        return None
    found = incoming.extracted.span_context
    linked = links[0].context
    if found is None or (found.trace_id, found.span_id) != (linked.trace_id, linked.span_id):
        return None
    return incoming


def ambient(ctx: Context | None = None) -> tuple[str | None, str | None]:
    """(correlation ID, event being processed) for a message published in ``ctx``."""
    correlation: str | None = None
    cause: str | None = None
    incoming = received(ctx)
    if incoming is not None:
        message = incoming.extracted.context
        correlation = message.correlation_id
        # A hop that carried no event of its own (an HTTP call made while processing an
        # event) carries that event as its causation: it is still the one being processed.
        cause = message.event_id or message.causation_id
    if cause is None:
        current = _current.get()
        if current is not None:
            event = current._event
            cause = None if event is None else event._event_id
            correlation = correlation or current._correlation
    if correlation is None:
        found = otel_baggage.get_baggage(BAGGAGE_CORRELATION_KEY, ctx)
        if isinstance(found, str) and found:
            correlation = found
    return correlation, cause


@dataclass(frozen=True, slots=True)
class Carried:
    """Identities already in a message being published (tracebraid's headers or a
    binary-mode CloudEvent's), and the CloudEvent header prefix as written, if any."""

    event_id: str | None = None
    event_name: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    cloud_event: CloudEventIdentity | None = None
    cloud_event_prefix: str | None = None
    # The tracebraid headers and CloudEvent attributes the message has (lowercase names).
    headers: frozenset[str] = frozenset()
    cloud_attributes: frozenset[str] = frozenset()


NOTHING_CARRIED = Carried()
"""What ``carried`` returns for a message that carries no identity (the same object)."""
# Headers the W3C propagators wrote before this one: never an identity of the message.
_NOT_CARRIED = frozenset((h.TRACEPARENT_HEADER, h.TRACESTATE_HEADER, h.BAGGAGE_HEADER))
_CARRIED_HEADERS = frozenset(
    (h.EVENT_ID_HEADER, h.EVENT_NAME_HEADER, h.CORRELATION_ID_HEADER, h.CAUSATION_ID_HEADER)
)


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            return bytes(value).decode("utf-8") or None
        except UnicodeDecodeError:
            return None
    return None


def carried(carrier: object) -> Carried:
    """What ``carrier`` (headers being published) already says; never raises."""
    try:
        kind = type(carrier)
        if kind is dict or (kind is not list and isinstance(carrier, Mapping)):
            pairs: Iterable[tuple[object, object]] = carrier.items()  # type: ignore[attr-defined]
        elif kind is list or isinstance(carrier, tuple):
            pairs = [p for p in carrier if type(p) is tuple and len(p) == 2]  # type: ignore[attr-defined]
        else:
            return NOTHING_CARRIED
        ours: dict[str, str] = {}
        prefix: str | None = None
        for name, value in pairs:
            if type(name) is not str or name in _NOT_CARRIED:
                continue
            lowered = name.lower()
            if lowered in _CARRIED_HEADERS:
                text = _text(value)
                if text is not None:
                    ours.setdefault(lowered, text)
            elif prefix is None and lowered[3:] == "id" and lowered[:3] in ("ce-", "ce_"):
                prefix = name[:3]
            elif prefix is None and lowered in ("cloudevents_id", "cloudevents:id"):
                prefix = name[:12]
        if not ours and prefix is None:
            return NOTHING_CARRIED
        cloud = binary_attributes(carrier) if prefix is not None else {}
        identity = cloudevent_identity(cloud) if cloud else None
        return Carried(
            event_id=ours.get(h.EVENT_ID_HEADER) or (identity.id if identity else None),
            event_name=ours.get(h.EVENT_NAME_HEADER) or (identity.type if identity else None),
            correlation_id=ours.get(h.CORRELATION_ID_HEADER) or _text(cloud.get("correlationid")),
            causation_id=ours.get(h.CAUSATION_ID_HEADER) or _text(cloud.get("causationid")),
            cloud_event=identity,
            cloud_event_prefix=prefix if identity else None,
            headers=frozenset(ours),
            cloud_attributes=frozenset(cloud),
        )
    except Exception:  # publishing must never fail because of tracing
        return NOTHING_CARRIED


_READABLE_TYPES: set[type] = set()


def is_readable(span: object) -> bool:
    """True for an SDK span (its kind and attributes can be read). The span types seen
    are remembered: ``isinstance`` against an ABC is slow, and this runs on every hop."""
    kind = type(span)
    if kind in _READABLE_TYPES:
        return True
    if isinstance(span, ReadableSpan):
        _READABLE_TYPES.add(kind)
        return True
    return False


def _bounded(span: object) -> BoundedAttributes | None:
    """An SDK span's own attribute store, when it is the SDK's (read on every hop)."""
    found = getattr(span, "_attributes", None)
    return found if type(found) is BoundedAttributes else None


def span_attributes(span: Span) -> Mapping[str, AttributeValue]:
    """A span's attributes, to read (empty for a span that is not readable).

    An SDK span's are read from its own store's dict: the public ``span.attributes``
    wraps them in a new proxy per call, whose ``get`` runs through ``Mapping.get`` in
    Python, several times the cost of a dict lookup (this runs several times per hop).

        >>> from opentelemetry.sdk.trace import TracerProvider
        >>> span = TracerProvider().get_tracer("t").start_span("s", attributes={"a": 1})
        >>> span_attributes(span)["a"]
        1
    """
    bounded = _bounded(span)
    if bounded is not None:
        return bounded._dict  # type: ignore[return-value]
    if is_readable(span):
        found: Mapping[str, AttributeValue] | None = span.attributes  # type: ignore[attr-defined]
        if found is not None:
            return found
    return {}


_attributes = span_attributes


def _as_text(value: AttributeValue | None) -> str | None:
    return value if isinstance(value, str) and value else None


def _first_text(attributes: Mapping[str, AttributeValue], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = attributes.get(key)
        if type(value) is str and value:
            return value
    return None


_MESSAGE_ID_ALIASES = semconv.ALIASES[semconv.MESSAGE_ID]
_CORRELATION_ALIASES = semconv.ALIASES[semconv.CORRELATION_ID]


def stamp_producer(span: Span, ctx: Context | None, message: Carried = NOTHING_CARRIED) -> str:
    """Give a producer span the event ID, correlation and causation of the message it
    sends (what is already on the span stays); returns the event ID."""
    attributes = _attributes(span)
    event_id = message.event_id or _first_text(attributes, _MESSAGE_ID_ALIASES)
    updates: dict[str, AttributeValue] = {}
    if event_id is None:
        event_id = new_event_id()
    if attributes.get(semconv.MESSAGE_ID) != event_id:
        updates[semconv.MESSAGE_ID] = event_id
    correlation = message.correlation_id or _first_text(attributes, _CORRELATION_ALIASES)
    stamped_cause = attributes.get(semconv.CAUSATION_ID)
    cause = message.causation_id
    if correlation is None or (cause is None and stamped_cause is None):
        found_correlation, found_cause = ambient(ctx)
        correlation = correlation or found_correlation
        cause = cause or found_cause
    if correlation is not None and attributes.get(semconv.CORRELATION_ID) != correlation:
        updates[semconv.CORRELATION_ID] = correlation
    if cause is not None and cause != event_id and stamped_cause is None:
        updates[semconv.CAUSATION_ID] = cause
    elif stamped_cause == event_id:
        # Republishing the message being processed (a retry): the processor named it as
        # its own cause before the message's own ID was known. "" reads as no causation.
        updates[semconv.CAUSATION_ID] = message.causation_id or ""
    if message.event_name is not None and semconv.EVENT_NAME not in attributes:
        updates[semconv.EVENT_NAME] = message.event_name
    if message.cloud_event is not None:
        updates.update(_cloud_event_attributes(message.cloud_event))
    if updates and span.is_recording():
        _set(span, updates)
    return event_id


def producer_event_id(span: Span) -> str | None:
    """The event ID stamped on a producer span, if any."""
    return _as_text(_attributes(span).get(semconv.MESSAGE_ID))


def _plain(updates: Mapping[str, AttributeValue]) -> bool:
    """True when every value is a ``str`` or an ``int``, which the SDK stores unchanged."""
    for value in updates.values():
        kind = type(value)
        if kind is not str and kind is not int:
            return False
    return True


def _set(span: Span, updates: Mapping[str, AttributeValue]) -> None:
    bounded = _bounded(span)
    lock = getattr(span, "_lock", None)
    if (
        bounded is not None
        and lock is not None
        and bounded.max_value_len is None
        and not bounded._immutable
        and (bounded.maxlen is None or len(bounded._dict) + len(updates) <= bounded.maxlen)
        and _plain(updates)
    ):
        # What the SDK's set_attribute does for a text or integer value when no limit
        # applies (no truncation, no eviction), under the same two locks, without its
        # per-value validation: these values are tracebraid's own identities, checked
        # above. The processor stamps two to six attributes on every messaging span, and
        # the SDK's path costs about 1.5 us per attribute.
        with lock, bounded._lock:
            if getattr(span, "_end_time", None) is None:
                store = bounded._dict
                for key, value in updates.items():
                    store.pop(key, None)  # a value set again moves last, as in the SDK
                    store[key] = value
                return
    # One set_attribute per key: the SDK validates a whole mapping given to
    # set_attributes as a nested value first, which costs half as much again.
    set_attribute = span.set_attribute
    for key, value in updates.items():
        set_attribute(key, value)


def _cloud_event_attributes(identity: CloudEventIdentity) -> dict[str, AttributeValue]:
    found: dict[str, AttributeValue] = {CLOUDEVENT_ID: identity.id}
    if identity.type is not None:
        found[CLOUDEVENT_TYPE] = identity.type
    if identity.source is not None:
        found[CLOUDEVENT_SOURCE] = identity.source
    return found


def stamp_consumer(span: Span, incoming: Received) -> None:
    """Give a consumer span the identities of the message it received, and make that
    message the one being processed for the rest of the task or thread (``restore``)."""
    attributes = _attributes(span)
    message = incoming.extracted.context
    updates: dict[str, AttributeValue] = {}
    # What the message carries is its identity, as on the producer span that sent it; an
    # instrumentation's own value (AMQP's message_id) stays only where the message is silent.
    # Spelled out, not a loop over (key, value) pairs: this runs once per consumed message.
    event_id = message.event_id
    if event_id is not None and attributes.get(semconv.MESSAGE_ID) != event_id:
        updates[semconv.MESSAGE_ID] = event_id
    correlation = message.correlation_id
    if correlation is not None and attributes.get(semconv.CORRELATION_ID) != correlation:
        updates[semconv.CORRELATION_ID] = correlation
    causation = message.causation_id
    if causation is not None and attributes.get(semconv.CAUSATION_ID) != causation:
        updates[semconv.CAUSATION_ID] = causation
    event_name = message.event_name
    if event_name is not None and attributes.get(semconv.EVENT_NAME) != event_name:
        updates[semconv.EVENT_NAME] = event_name
    attempt = message.attempt
    if attempt is not None and attributes.get(semconv.ATTEMPT) != attempt:
        updates[semconv.ATTEMPT] = attempt
    if incoming.cloud_event is not None:
        updates.update(_cloud_event_attributes(incoming.cloud_event))
    if updates and span.is_recording():
        _set(span, updates)
    if event_id is not None:
        _keep_event_id(span, event_id)
    restore(
        span,
        event_id or _first_text(attributes, _MESSAGE_ID_ALIASES),
        correlation or _first_text(attributes, _CORRELATION_ALIASES),
        event_name,
    )


_MESSAGE_ID_KEYS = frozenset(semconv.ALIASES[semconv.MESSAGE_ID])


def _keep_event_id(span: Span, event_id: str) -> None:
    """Keep the event ID on the span when its instrumentation writes its own message ID
    later: the Kafka instrumentations set ``messaging.message.id`` to
    ``topic.partition.offset`` after the span started (the offset is in
    ``messaging.kafka.message.offset`` already), which would cut the consumer off from
    the event its producer sent."""
    own = getattr(span, "__dict__", None)
    if own is None:
        return
    # The class's function and a weak reference, not the bound method: the bound method
    # would hold the span from its own ``__dict__``, a reference cycle per consumed
    # message, which only the garbage collector frees. A ``set_attribute`` already set on
    # this span (by someone else) is chained to as it is.
    keeping_event_id: Callable[[str, object], None]
    try:
        this = weakref.ref(span)
    except TypeError:  # a span type without weak references: the bound method
        this = None
    if this is None or "set_attribute" in own:
        chained: Callable[[str, object], None] = span.set_attribute  # type: ignore[assignment]

        def keeping_event_id(key: str, value: object) -> None:
            if key not in _MESSAGE_ID_KEYS:
                chained(key, value)

    else:
        of_class = type(span).set_attribute

        def keeping_event_id(key: str, value: object) -> None:
            if key not in _MESSAGE_ID_KEYS:
                found = this()
                if found is not None:
                    of_class(found, key, value)  # type: ignore[arg-type]

    span.set_attribute = keeping_event_id  # type: ignore[method-assign]


class _StockConsumption:
    """A stock instrumentation's consumer span as tracebraid's current processing (the
    ``context._Current`` shape): what publishes after it name as cause and workflow."""

    __slots__ = ("_correlation", "_event_id", "_event_name", "_record", "_span")

    def __init__(
        self,
        span: Span,
        event_id: EventId | None,
        correlation: CorrelationId | None,
        event_name: str | None,
    ) -> None:
        self._span = span
        self._event_id = event_id
        self._correlation = correlation
        self._event_name = event_name
        self._record: Processing | None = None

    @property
    def _event(self) -> _StockConsumption:
        return self

    @property
    def processing(self) -> Processing:
        record = self._record
        if record is None:
            attributes = _attributes(self._span)
            span_context = self._span.get_span_context()
            name = self._span.name if isinstance(self._span, ReadableSpan) else ""
            parent = self._span.parent if isinstance(self._span, ReadableSpan) else None
            attempt = attributes.get(semconv.ATTEMPT)
            record = self._record = _processing_record(
                self._event_id,
                self._event_name,
                self._correlation,
                str(semconv.first_of(attributes, semconv.CONSUMER_GROUP) or name),
                str(attributes.get(semconv.STEP) or name),
                attempt if isinstance(attempt, int) else 1,
                format(span_context.trace_id, "032x"),
                format(span_context.span_id, "016x"),
                SpanId(format(parent.span_id, "016x")) if parent is not None else None,
            )
        return record


def restore(
    span: Span, event_id: str | None, correlation: str | None, event_name: str | None
) -> None:
    """Make a consumer span's message the one being processed, for the rest of the task
    or thread that received it (until it receives the next one).

    Kafka clients' instrumentations end the consumer span when ``getone``/``poll``
    returns, before the application processes the record; what that processing publishes
    still names the record as its cause and keeps its workflow. Set even without
    identities: a message from an uninstrumented producer must not inherit the cause of
    the one this task received before it.
    """
    # The NewTypes as annotations only: calling one is a Python function call per message.
    event: EventId | None = event_id or None  # type: ignore[assignment]
    workflow: CorrelationId | None = correlation or None  # type: ignore[assignment]
    _current.set(_StockConsumption(span, event, workflow, event_name))


def finished() -> None:
    """The message being processed is done: what this thread or task publishes next is
    no longer its follow-up. For frameworks that say when a message's handling ends
    (Celery's ``task_postrun``); Kafka-style polls keep ``restore``'s message until the
    next one arrives, since nothing marks the end of its processing.
    """
    _current.set(None)


# An integration over a framework whose instrumentation injects and extracts with its own
# propagators (FastStream's telemetry middleware) hands the processor the message it is
# sending, or has received, for the spans that instrumentation starts next.
_sending: contextvars.ContextVar[Carried | None] = contextvars.ContextVar(
    "tracebraid_sending", default=None
)
_expected: contextvars.ContextVar[tuple[Received, Mapping[str, AttributeValue]] | None] = (
    contextvars.ContextVar("tracebraid_expected", default=None)
)


@contextlib.contextmanager
def sending(message: Carried) -> Iterator[None]:
    """Within it, producer spans are for ``message`` (its identities already in the
    headers being sent): an instrumentation's "create" and "publish" spans alike."""
    token = _sending.set(message)
    try:
        yield
    finally:
        _sending.reset(token)


def in_hand() -> Carried:
    """The message being sent in this context (``sending``), else ``NOTHING_CARRIED``."""
    return _sending.get() or NOTHING_CARRIED


@contextlib.contextmanager
def expecting(
    incoming: Received, attributes: Mapping[str, AttributeValue] | None = None
) -> Iterator[None]:
    """Within it, the next consumer span that starts without the message in its context
    is for ``incoming`` and gets ``attributes`` too (the business step, say)."""
    token = _expected.set((incoming, attributes or {}))
    try:
        yield
    finally:
        _expected.reset(token)


def take_expected() -> tuple[Received, Mapping[str, AttributeValue]] | None:
    """The message ``expecting`` announced and its attributes, once: the consumer spans
    after the first are not its."""
    expected = _expected.get()
    if expected is not None:
        _expected.set(None)
    return expected
