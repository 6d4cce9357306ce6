"""One messaging view per span, derived once: the vocabulary the store and the analysis read.

Instrumentations mix convention generations (``messaging.operation`` and
``messaging.operation.type``, ``messaging.destination`` and
``messaging.destination.name``, Celery's ``celery.retries``...). ``normalize`` reads
them all, through ``tracebraid.semconv.first_of``, into a ``MessagingView``; no
other module looks at raw messaging attribute keys. This module sits on the ground
floor, below ``tracebraid.store`` and ``tracebraid.analysis``, so both follow one set of
rules: it imports only ``tracebraid.model`` and ``tracebraid.semconv``.

Rules, in order:

- role: ``messaging.operation(.type)`` ``create``/``send``/``publish`` is a producer,
  ``receive``/``process``/``deliver`` a consumer, ``settle`` other; without an
  operation, span kind PRODUCER/CONSUMER decides; INTERNAL is internal; the rest other.
- consumer name: ``messaging.consumer.group.name`` (and Kafka aliases); without it,
  ``"service:destination"`` (``consumer_identified_by="service+destination"``), or
  ``"service:span name"`` when there is no destination either.
- attempt: ``tracebraid.attempt``; else ``celery.retries + 1``; else Google Pub/Sub's
  ``delivery_attempt``; else unknown (``None``), never guessed here. Below 1 (0 for
  Celery) is unknown too.
- typed attributes are read however they were stored: ``2``, ``"2"`` or ``"2.0"``;
  ``True`` or ``"true"`` (the OpenTelemetry Collector's ClickHouse exporter keeps
  every attribute as a string).
- outcome: ``tracebraid.outcome`` when set; else ``dead_letter`` when
  ``tracebraid.dead_letter`` is true; else ``error`` for an ERROR status; else ``ok``.
- dead letter: outcome ``dead_letter``, ``tracebraid.dead_letter`` true, or a
  destination whose name marks a dead-letter queue (``orders.dlq``, ``orders-dlq``,
  ``orders_dlq``, ``orders.dlx``, ``orders.dead-letter``, ``dlq``, ...).
- error: the first ``exception`` event as ``"Type: message"``, else the status message.
- step: ``tracebraid.step``, else the span name; a start marker stands for the span
  it announces, so its step is that span's (its name without `` started``).
- message identities (event ID, event name, destination, causation) are read on
  producer and consumer spans only; the correlation ID on every span.

Example::

    >>> from tracebraid.model import Span, SpanId, SpanKind, TraceId
    >>> span = Span(TraceId("4bf92f3577b34da6a3ce929d0e0e4736"), SpanId("00f067aa0ba902b7"),
    ...             None, "orders receive", SpanKind.CONSUMER, 0, 1, "inventory",
    ...             attributes={"messaging.operation": "receive",
    ...                         "messaging.destination": "orders",
    ...                         "messaging.message_id": "evt_1"})
    >>> view = normalize(span)
    >>> (view.role.value, view.event_id, view.consumer, view.consumer_identified_by.value)
    ('consumer', 'evt_1', 'inventory:orders', 'service+destination')
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping
from dataclasses import dataclass

from tracebraid import semconv
from tracebraid.model import (
    AttributeValue,
    CorrelationId,
    EventId,
    Span,
    SpanId,
    SpanKind,
    StatusCode,
)

__all__ = [
    "DEAD_LETTER_MARKS",
    "AttemptOutcome",
    "ConsumerIdentity",
    "MessagingView",
    "Role",
    "is_dead_letter_destination",
    "is_start_marker",
    "marker_target",
    "normalize",
]


class Role(enum.StrEnum):
    """What a span does in the messaging flow."""

    PRODUCER = "producer"
    CONSUMER = "consumer"
    INTERNAL = "internal"
    OTHER = "other"


class AttemptOutcome(enum.StrEnum):
    """How one processing attempt stands: how it ended, or ``in_flight`` while it has not.

    The finished values are those of the ``tracebraid.outcome`` attribute, which the
    SDK writes from ``tracebraid.AttemptOutcome``; when a span does not say, the status
    decides (``error`` or ``ok``). The two enums stay apart on purpose: a consumer
    writes how its attempt ended, and no span ever says "in flight": only the
    analysis can, from a start marker whose span has not arrived.
    """

    OK = "ok"
    ERROR = "error"
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"
    IN_FLIGHT = "in_flight"

    @property
    def failed(self) -> bool:
        """True for an attempt that finished without success."""
        return self in _FAILED


_FAILED = frozenset({AttemptOutcome.ERROR, AttemptOutcome.RETRY, AttemptOutcome.DEAD_LETTER})


class ConsumerIdentity(enum.StrEnum):
    """Where a consumer's name came from; anything but ``group`` is a fallback."""

    GROUP = "group"
    SERVICE_DESTINATION = "service+destination"
    SERVICE_NAME = "service+name"


_PRODUCER_OPERATIONS = frozenset({"create", "send", "publish"})
_CONSUMER_OPERATIONS = frozenset({"receive", "process", "deliver"})
_OUTCOMES = {o.value: o for o in AttemptOutcome if o is not AttemptOutcome.IN_FLIGHT}
DEAD_LETTER_MARKS = ("dlq", "dlx", "dead-letter", "dead_letter", "deadletter")
"""A destination is a dead-letter queue when its last ``.``/``-``/``_`` part is one of these."""
_DEAD_LETTER_SUFFIXES = tuple(sep + mark for mark in DEAD_LETTER_MARKS for sep in ".-_")
_MARKER_NAME_SUFFIX = " started"  # tracebraid.sdk.marker names a marker "<step> started"
_PUBSUB_ATTEMPT = "messaging.gcp_pubsub.message.delivery_attempt"
_CELERY_RETRIES = "celery.retries"


@dataclass(frozen=True, slots=True)
class MessagingView:
    """A span as the analysis sees it: role and the identities of DESIGN.md, normalised.

    ``None`` means the span does not say; the analysis reports that as a limitation.
    ``consumer`` is set on consumer spans only. ``marker_for`` is set on start
    markers only: the span ID of the processing span the marker announces.
    """

    role: Role
    operation: str | None
    event_id: EventId | None
    event_name: str | None
    destination: str | None
    consumer: str | None
    consumer_identified_by: ConsumerIdentity | None
    correlation_id: CorrelationId | None
    causation_id: EventId | None
    attempt: int | None
    outcome: AttemptOutcome
    error: str | None
    step: str
    dead_letter: bool
    marker_for: SpanId | None = None


def is_start_marker(span: Span) -> bool:
    """True for the SDK's start marker: a tiny span announcing that processing began."""
    return span.scope == semconv.START_MARKER_SCOPE


def marker_target(marker: Span) -> SpanId:
    """The span ID of the processing span a start marker announces (its own when unsaid)."""
    return SpanId(_text(marker.attributes.get(semconv.MARKER_FOR_SPAN)) or marker.span_id)


def is_dead_letter_destination(destination: str | None) -> bool:
    """True when ``destination`` names a dead-letter queue (``orders.dlq``, ``orders-dlx``...)."""
    return destination is not None and _names_dead_letter_queue(destination)


@functools.lru_cache(maxsize=4096)  # few distinct destinations, read for every span
def _names_dead_letter_queue(destination: str) -> bool:
    lowered = destination.lower()
    return lowered in DEAD_LETTER_MARKS or lowered.endswith(_DEAD_LETTER_SUFFIXES)


def _text(value: AttributeValue | None) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) if value else None
    return value if isinstance(value, str) else str(value)


def _first(attributes: Mapping[str, AttributeValue], keys: tuple[str, ...]) -> str | None:
    """``semconv.first_of`` as text, over pre-resolved alias keys (this runs per span)."""
    for key in keys:
        value = attributes.get(key)
        if value is not None and value != "":
            return value if type(value) is str else _text(value)
    return None


_OPERATION_KEYS = semconv.ALIASES[semconv.OPERATION_TYPE]
_DESTINATION_KEYS = semconv.ALIASES[semconv.DESTINATION]
_GROUP_KEYS = semconv.ALIASES[semconv.CONSUMER_GROUP]
_MESSAGE_ID_KEYS = semconv.ALIASES[semconv.MESSAGE_ID]
_CORRELATION_KEYS = semconv.ALIASES[semconv.CORRELATION_ID]


def _integer(value: AttributeValue | None) -> int | None:
    """A whole number however it was stored: ``2``, ``2.0``, ``"2"`` or ``"2.0"`` (the
    OpenTelemetry Collector's ClickHouse exporter keeps every attribute as a string)."""
    if value is None or isinstance(value, bool | tuple):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                value = float(value)
            except ValueError:
                return None
    return int(value) if value.is_integer() else None


def _flag(value: AttributeValue | None) -> bool:
    """True for ``True`` and for its text, ``"true"``, as string-typed stores keep it."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _counted_from(value: AttributeValue | None, first: int) -> int | None:
    """``value`` as a count that starts at ``first``; below it, the span does not say."""
    number = _integer(value)
    return number if number is not None and number >= first else None


def _role(kind: SpanKind, operation: str | None) -> Role:
    if operation in _PRODUCER_OPERATIONS:
        return Role.PRODUCER
    if operation in _CONSUMER_OPERATIONS:
        return Role.CONSUMER
    if operation is None:
        if kind is SpanKind.PRODUCER:
            return Role.PRODUCER
        if kind is SpanKind.CONSUMER:
            return Role.CONSUMER
        if kind is SpanKind.INTERNAL:
            return Role.INTERNAL
    return Role.OTHER


def _attempt(attributes: Mapping[str, AttributeValue]) -> int | None:
    attempt = _counted_from(attributes.get(semconv.ATTEMPT), 1)
    if attempt is not None:
        return attempt
    retries = _counted_from(attributes.get(_CELERY_RETRIES), 0)
    if retries is not None:
        return retries + 1  # Celery counts retries from 0
    return _counted_from(attributes.get(_PUBSUB_ATTEMPT), 1)


def _error(span: Span) -> str | None:
    for event in span.events:
        if event.name == "exception":
            kind = _text(event.attributes.get("exception.type"))
            message = _text(event.attributes.get("exception.message"))
            if kind and message:
                return f"{kind}: {message}"
            if kind or message:
                return kind or message
    if span.status_message:
        return span.status_message
    if span.status is StatusCode.ERROR:
        return "error (no message recorded)"
    return None


def normalize(span: Span) -> MessagingView:
    """Derive the ``MessagingView`` of one span (start markers included)."""
    attributes = span.attributes
    operation = _first(attributes, _OPERATION_KEYS)
    if operation is not None:
        operation = operation.lower()
    role = _role(span.kind, operation)
    messaging = role is Role.PRODUCER or role is Role.CONSUMER
    # Identities of a message mean nothing on other spans: skip reading them (hot path).
    destination = _first(attributes, _DESTINATION_KEYS) if messaging else None
    consumer: str | None = None
    identity: ConsumerIdentity | None = None
    if role is Role.CONSUMER:
        group = _first(attributes, _GROUP_KEYS)
        if group:
            consumer, identity = group, ConsumerIdentity.GROUP
        elif destination:
            consumer = f"{span.service}:{destination}"
            identity = ConsumerIdentity.SERVICE_DESTINATION
        else:
            consumer, identity = f"{span.service}:{span.name}", ConsumerIdentity.SERVICE_NAME
    declared = _text(attributes.get(semconv.OUTCOME))
    flagged = _flag(attributes.get(semconv.DEAD_LETTER))
    outcome = _OUTCOMES.get(declared.strip().lower()) if declared else None
    if outcome is None:
        if flagged:
            outcome = AttemptOutcome.DEAD_LETTER
        elif span.status is StatusCode.ERROR:
            outcome = AttemptOutcome.ERROR
        else:
            outcome = AttemptOutcome.OK
    event_id = _first(attributes, _MESSAGE_ID_KEYS) if messaging else None
    correlation = _first(attributes, _CORRELATION_KEYS)
    causation = _text(attributes.get(semconv.CAUSATION_ID)) if messaging else None
    marker_for: SpanId | None = None
    step = _text(attributes.get(semconv.STEP))
    if span.scope == semconv.START_MARKER_SCOPE:
        marker_for = marker_target(span)
        # A marker stands for the span it announces: its step, not "<step> started".
        step = step or span.name.removesuffix(_MARKER_NAME_SUFFIX)
    failed = outcome in _FAILED or span.status is StatusCode.ERROR
    return MessagingView(
        role=role,
        operation=operation,
        event_id=EventId(event_id) if event_id else None,
        event_name=_text(attributes.get(semconv.EVENT_NAME)) if messaging else None,
        destination=destination,
        consumer=consumer,
        consumer_identified_by=identity,
        correlation_id=CorrelationId(correlation) if correlation else None,
        causation_id=EventId(causation) if causation else None,
        attempt=_attempt(attributes) if role is Role.CONSUMER else None,
        outcome=outcome,
        error=_error(span) if failed else None,
        step=step or span.name,
        dead_letter=(
            flagged
            or outcome is AttemptOutcome.DEAD_LETTER
            or (destination is not None and _names_dead_letter_queue(destination))
        ),
        marker_for=marker_for,
    )
