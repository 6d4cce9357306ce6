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
- consumer name: ``messaging.consumer.group.name`` (and Kafka aliases); without it the
  queue it reads (``messaging.destination.subscription.name``, ``messaging.rabbitmq.queue``,
  or a span name ``"<queue> <operation>"`` naming something other than the destination,
  as amqplib's does), as ``"service:queue"``; else the service alone. Never the
  destination: a redelivery through a dead-letter exchange arrives from another one, and
  must stay in the same branch. ``consumer_identified_by`` says which was used.
- message identities, each with its strength (``MessageIdentity``): the message ID
  (``messaging.message.id``, ``messaging.message_id``: tracebraid's own event ID, Celery's
  task ID, aiokafka's ``topic.partition.offset``), CloudEvents' ``cloudevents.event_id``,
  Celery's ``celery.task_id``, Kafka's ``topic/partition@offset`` (from
  ``messaging.kafka.message.offset`` + partition + destination): all strong; the Kafka key
  (``messaging.kafka.message.key``) is weak (keys are not unique) and never joins alone.
- attempt: ``tracebraid.attempt``; else ``celery.retries + 1``; else Google Pub/Sub's
  ``delivery_attempt``; else unknown (``None``), never guessed here. Below 1 (0 for
  Celery) is unknown too.
- destination: ``messaging.destination.name`` (and older keys); aio-pika's producer spans
  write ``"exchange,routing_key"``: the exchange is the destination (the routing key on
  the default exchange, whose name is empty).
- typed attributes are read however they were stored: ``2``, ``"2"`` or ``"2.0"``;
  ``True`` or ``"true"`` (the OpenTelemetry Collector's ClickHouse exporter keeps
  every attribute as a string).
- outcome, from the best evidence: ``tracebraid.outcome`` when set; else ``dead_letter``
  when ``tracebraid.dead_letter`` is true; else Celery's ``celery.state`` (``RETRY`` is a
  failed attempt, ``retry``, whose error is ``celery.retry.reason``; ``FAILURE`` is
  ``error``); else ``unknown`` for a consumer span its instrumentation ended because the
  channel or connection closed (or timed out) before the application settled the message
  (amqplib's ``channel closed``: the handler may have done its work, or not); else
  ``error`` for an ERROR status, an ``exception`` event, or a status
  message saying the message was nacked or rejected; else ``unknown`` for a consumer span
  that ends before the application handles the message (``RECEIVE_ONLY_SCOPES``: the
  span cannot show how handling went); else ``ok``.
- final: the attempt says no other will follow: Celery's ``FAILURE`` (Celery retries only
  through ``RETRY``), or a dead letter.
- dead letter: outcome ``dead_letter``, ``tracebraid.dead_letter`` true, or a
  destination whose name marks a dead-letter queue (``orders.dlq``, ``orders-dlq``,
  ``orders_dlq``, ``orders.dlx``, ``orders.dead-letter``, ``dlq``, ...).
- error: the first ``exception`` event as ``"Type: message"``, else ``error.type`` with the
  status message (kafkajs records no event), else Celery's retry reason, else the status
  message.
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
    ('consumer', 'evt_1', 'inventory', 'service')
    >>> [(i.value, i.source.value, i.strength.value) for i in view.identities]
    [('evt_1', 'message_id', 'strong')]
"""

from __future__ import annotations

import enum
import functools
import re
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
    SpanLink,
    StatusCode,
)

__all__ = [
    "DEAD_LETTER_MARKS",
    "RECEIVE_ONLY_SCOPES",
    "RULES",
    "AttemptOutcome",
    "ConsumerIdentity",
    "IdentitySource",
    "IdentityStrength",
    "MessageIdentity",
    "MessagingView",
    "Role",
    "VocabularyRules",
    "correlation_of",
    "has_messaging_attributes",
    "is_dead_letter_destination",
    "is_retry_route",
    "is_start_marker",
    "link_message_id",
    "marker_target",
    "normalize",
    "system_of",
    "written_by_sdk",
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
    SDK writes from ``tracebraid.AttemptOutcome``; when a span does not say, the best
    evidence decides (module docstring). ``unknown`` is an attempt whose span ended
    before the application handled the message: neither a success nor a failure. The
    two enums stay apart on purpose: a consumer writes how its attempt ended, and no
    span ever says "in flight" or "unknown": only the analysis can.
    """

    OK = "ok"
    ERROR = "error"
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"
    UNKNOWN = "unknown"
    IN_FLIGHT = "in_flight"

    @property
    def failed(self) -> bool:
        """True for an attempt that finished without success."""
        return self in _FAILED


_FAILED = frozenset({AttemptOutcome.ERROR, AttemptOutcome.RETRY, AttemptOutcome.DEAD_LETTER})


class ConsumerIdentity(enum.StrEnum):
    """Where a consumer's name came from; anything but ``group`` is a fallback."""

    GROUP = "group"
    QUEUE = "service+queue"
    SERVICE = "service"


class IdentityStrength(enum.StrEnum):
    """Whether an identity names one message (``strong``) or possibly several (``weak``)."""

    STRONG = "strong"
    WEAK = "weak"


class IdentitySource(enum.StrEnum):
    """Where a message identity was read."""

    MESSAGE_ID = "message_id"  # messaging.message.id / messaging.message_id
    CLOUDEVENTS = "cloudevents"  # cloudevents.event_id
    CELERY_TASK = "celery_task"  # celery.task_id
    KAFKA_OFFSET = "kafka_offset"  # topic/partition@offset
    KAFKA_KEY = "kafka_key"  # messaging.kafka.message.key: weak


@dataclass(frozen=True, slots=True)
class MessageIdentity:
    """One identity of the message a span produced or consumed, and how far it can be trusted.

    Kafka offsets are written ``kafka:topic/partition@offset`` so they never collide
    with an ID a producer chose.
    """

    value: str
    source: IdentitySource
    strength: IdentityStrength

    @property
    def strong(self) -> bool:
        """True when the identity names exactly one message."""
        return self.strength is IdentityStrength.STRONG


_PRODUCER_OPERATIONS = frozenset({"create", "send", "publish"})
_CONSUMER_OPERATIONS = frozenset({"receive", "process", "deliver"})
_UNSAID = (AttemptOutcome.IN_FLIGHT, AttemptOutcome.UNKNOWN)  # no span writes these
_OUTCOMES = {o.value: o for o in AttemptOutcome if o not in _UNSAID}
RECEIVE_ONLY_SCOPES = frozenset(
    {
        "opentelemetry.instrumentation.aiokafka",
        "opentelemetry.instrumentation.kafka",  # kafka-python
        "opentelemetry.instrumentation.confluent_kafka",
    }
)
"""Instrumentation scopes whose consumer spans never carry how handling went: they end
before the application handles the record (aiokafka, kafka-python), or last until the
next poll without ever recording its error (confluent-kafka). Their attempts are
``unknown`` unless the span itself reports an error."""
DEAD_LETTER_MARKS = ("dlq", "dlx", "dlt", "dead-letter", "dead_letter", "deadletter")
"""A destination is a dead-letter queue when its last ``.``/``-``/``_`` part is one of these."""
_DEAD_LETTER_SUFFIXES = tuple(sep + mark for mark in DEAD_LETTER_MARKS for sep in ".-_")
_MARKER_NAME_SUFFIX = " started"  # tracebraid.sdk.marker names a marker "<step> started"
_PUBSUB_ATTEMPT = "messaging.gcp_pubsub.message.delivery_attempt"
_CELERY_RETRIES = "celery.retries"
_CELERY_STATE = "celery.state"
_CELERY_RETRY_REASON = "celery.retry.reason"
_CELERY_TASK_ID = ("celery.task_id", "celery.id")
_CLOUDEVENTS_ID = "cloudevents.event_id"
_KAFKA_OFFSET = ("messaging.kafka.message.offset", "messaging.kafka.offset")
_KAFKA_PARTITION = (
    "messaging.destination.partition.id",
    "messaging.kafka.destination.partition",
    "messaging.kafka.partition",
)
_KAFKA_KEY = ("messaging.kafka.message.key", "messaging.kafka.message_key")
_QUEUE_KEYS = ("messaging.destination.subscription.name", "messaging.rabbitmq.queue")
_OTHER_IDENTITY_KEYS = frozenset(
    (_CLOUDEVENTS_ID, *_CELERY_TASK_ID, *_KAFKA_OFFSET, *_KAFKA_KEY)
)  # identities besides the message ID
_NACK_WORDS = ("nack", "reject")
# Status messages of a consumer span ended by its instrumentation, not by the application
# settling the message (amqplib ends every unsettled span of a closing channel so): how
# the handling went is not on the span.
_UNSETTLED_ENDINGS = frozenset(
    {"channel closed", "channel error", "connection closed", "instrumentation timeout"}
)
_ERROR_TYPE = "error.type"


@dataclass(frozen=True, slots=True)
class MessagingView:
    """A span as the analysis sees it: role and the identities of DESIGN.md, normalised.

    ``None`` means the span does not say; the analysis reports that as a limitation.
    ``consumer`` is set on consumer spans only. ``marker_for`` is set on start
    markers only: the span ID of the processing span the marker announces.
    ``identities`` are every identity of its message, strong ones first; ``event_id`` is
    the first strong one, ``strong_identities`` the values of the strong ones.
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
    identities: tuple[MessageIdentity, ...] = ()
    strong_identities: tuple[str, ...] = ()  # the values of the strong ``identities``
    final: bool = False  # a failure after which no attempt will come (module docstring)


def link_message_id(link: SpanLink) -> str | None:
    """The message ID a link itself carries (a batch consumer's record whose producer
    span is elsewhere), or ``None``."""
    return _first(link.attributes, _MESSAGE_ID_KEYS)


def correlation_of(attributes: Mapping[str, AttributeValue]) -> str | None:
    """The correlation ID among ``attributes`` (current and older keys), or ``None``."""
    return _first(attributes, _CORRELATION_KEYS)


def system_of(span: Span) -> str | None:
    """The messaging system a span names (``messaging.system``: ``kafka``, ``rabbitmq``...)."""
    return _text(span.attributes.get(semconv.MESSAGING_SYSTEM))


def has_messaging_attributes(span: Span) -> bool:
    """True when a span carries any ``messaging.*`` attribute."""
    return any(key.startswith("messaging.") for key in span.attributes)


def written_by_sdk(span: Span) -> bool:
    """True for a consumer span tracebraid's SDK wrote (it may also have emitted a marker)."""
    return semconv.ATTEMPT in span.attributes or semconv.STEP in span.attributes


def is_start_marker(span: Span) -> bool:
    """True for the SDK's start marker: a tiny span announcing that processing began."""
    return span.scope == semconv.START_MARKER_SCOPE


def marker_target(marker: Span) -> SpanId:
    """The span ID of the processing span a start marker announces (its own when unsaid)."""
    return SpanId(_text(marker.attributes.get(semconv.MARKER_FOR_SPAN)) or marker.span_id)


def is_dead_letter_destination(destination: str | None) -> bool:
    """True when ``destination`` names a dead-letter queue (``orders.dlq``, ``orders-dlx``...)."""
    return destination is not None and _names_dead_letter_queue(destination)


def is_retry_route(destination: str | None) -> bool:
    """True when ``destination`` names a retry or dead-letter route of another one: its
    last ``.``/``-``/``_`` part (numbers and delays like ``2`` or ``30s`` aside) reads
    ``retry`` (``orders.payment.retry``, ``orders-retry-2``) or marks a dead-letter queue
    (``orders.dlq``, ``orders.loyalty.dlt``); a name merely containing the word
    (``retry-topic-orders``) does not."""
    return destination is not None and _names_retry_route(destination)


@functools.lru_cache(maxsize=4096)
def _names_retry_route(destination: str) -> bool:
    parts = [p for p in _PARTS.split(destination.lower()) if p]
    while parts and _COUNT.fullmatch(parts[-1]):
        parts.pop()
    return bool(parts) and (parts[-1] in _ROUTE_MARKS or _names_dead_letter_queue(destination))


_PARTS = re.compile(r"[.\-_]")
_COUNT = re.compile(r"\d+[a-z]{0,2}")  # "2", "30s", "5m", "100ms"
_ROUTE_MARKS = frozenset({"retry", "retries", *DEAD_LETTER_MARKS})


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


def _destination(attributes: Mapping[str, AttributeValue]) -> str | None:
    """The destination; aio-pika's producer spans write ``"exchange,routing_key"``: the
    exchange, or on the default exchange (empty name) the queue the routing key names."""
    destination = _first(attributes, _DESTINATION_KEYS)
    if destination is not None and "," in destination:
        exchange, _, routing_key = destination.partition(",")
        return exchange or routing_key or None
    return destination


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


def _identities(
    attributes: Mapping[str, AttributeValue], message_id: str | None, destination: str | None
) -> tuple[MessageIdentity, ...]:
    """Every identity of the message, strong first (module docstring)."""
    found: list[MessageIdentity] = []
    if message_id:
        found.append(MessageIdentity(message_id, IdentitySource.MESSAGE_ID, _STRONG))
    cloud = _text(attributes.get(_CLOUDEVENTS_ID))
    if cloud:
        found.append(MessageIdentity(cloud, IdentitySource.CLOUDEVENTS, _STRONG))
    task = _first(attributes, _CELERY_TASK_ID)
    if task:
        found.append(MessageIdentity(task, IdentitySource.CELERY_TASK, _STRONG))
    offset = _integer(_first(attributes, _KAFKA_OFFSET))
    if offset is not None and destination:
        partition = _integer(_first(attributes, _KAFKA_PARTITION))
        if partition is not None:
            where = f"kafka:{destination}/{partition}@{offset}"
            found.append(MessageIdentity(where, IdentitySource.KAFKA_OFFSET, _STRONG))
    key = _first(attributes, _KAFKA_KEY)
    if key:
        found.append(MessageIdentity(key, IdentitySource.KAFKA_KEY, IdentityStrength.WEAK))
    if len(found) > 1:  # Celery writes its task ID twice: keep the first source of a value
        found = list({i.value: i for i in found[::-1]}.values())[::-1]
        found.sort(key=lambda i: not i.strong)
    return tuple(found)


_STRONG = IdentityStrength.STRONG


def _consumer_name(
    span: Span, attributes: Mapping[str, AttributeValue], destination: str | None
) -> tuple[str, ConsumerIdentity]:
    group = _first(attributes, _GROUP_KEYS)
    if group:
        return group, ConsumerIdentity.GROUP
    queue = _first(attributes, _QUEUE_KEYS)
    if queue is None:
        # amqplib names its span "<queue> process"; aio-pika and pika "<exchange> receive":
        # only a name that is not the destination names the queue.
        named, _, operation = span.name.rpartition(" ")
        if named and operation in _CONSUMER_OPERATIONS and named != destination:
            queue = named
    if queue:
        return f"{span.service}:{queue}", ConsumerIdentity.QUEUE
    return span.service, ConsumerIdentity.SERVICE


def _outcome(span: Span, role: Role, declared: str | None, flagged: bool) -> AttemptOutcome:
    """The attempt's outcome from the best evidence (order in the module docstring)."""
    outcome = _OUTCOMES.get(declared.strip().lower()) if declared else None
    if outcome is not None:
        return outcome
    if flagged:
        return AttemptOutcome.DEAD_LETTER
    state = _text(span.attributes.get(_CELERY_STATE))
    if state is not None:
        state = state.upper()
        if state == "RETRY":
            return AttemptOutcome.RETRY
        if state == "FAILURE":
            return AttemptOutcome.ERROR
    raised = any(e.name == "exception" for e in span.events)
    if (
        role is Role.CONSUMER
        and not raised
        and span.status_message
        and span.status_message.strip(" ").lower() in _UNSETTLED_ENDINGS
    ):
        return AttemptOutcome.UNKNOWN
    if span.status is StatusCode.ERROR or raised:
        return AttemptOutcome.ERROR
    if span.status_message and any(w in span.status_message.lower() for w in _NACK_WORDS):
        return AttemptOutcome.ERROR
    if (
        role is Role.CONSUMER
        and span.status is StatusCode.UNSET
        and state is None
        and span.scope in RECEIVE_ONLY_SCOPES
    ):
        return AttemptOutcome.UNKNOWN
    return AttemptOutcome.OK


def _error(span: Span) -> str | None:
    for event in span.events:
        if event.name == "exception":
            kind = _text(event.attributes.get("exception.type"))
            message = _text(event.attributes.get("exception.message"))
            if kind and message:
                return f"{kind}: {message}"
            if kind or message:
                return kind or message
    kind = _text(span.attributes.get(_ERROR_TYPE))
    if kind is not None:
        said = span.status_message
        return f"{kind}: {said}" if said and kind not in said else kind
    reason = _text(span.attributes.get(_CELERY_RETRY_REASON))
    if reason:
        return reason
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
    destination = _destination(attributes) if messaging else None
    consumer: str | None = None
    identity: ConsumerIdentity | None = None
    if role is Role.CONSUMER:
        consumer, identity = _consumer_name(span, attributes, destination)
    declared = _text(attributes.get(semconv.OUTCOME))
    flagged = _flag(attributes.get(semconv.DEAD_LETTER))
    outcome = _outcome(span, role, declared, flagged)
    identities: tuple[MessageIdentity, ...] = ()
    strong: tuple[str, ...] = ()
    event_id: str | None = None
    if messaging:
        event_id = _first(attributes, _MESSAGE_ID_KEYS)
        if _OTHER_IDENTITY_KEYS.isdisjoint(attributes):  # the common case: the ID or nothing
            if event_id:
                identities = (MessageIdentity(event_id, IdentitySource.MESSAGE_ID, _STRONG),)
                strong = (event_id,)
        else:
            identities = _identities(attributes, event_id, destination)
            strong = tuple(i.value for i in identities if i.strong)
            event_id = strong[0] if strong else None
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
        identities=identities,
        strong_identities=strong,
        final=outcome is AttemptOutcome.DEAD_LETTER
        or (outcome is AttemptOutcome.ERROR and _gave_up(attributes)),
    )


def _gave_up(attributes: Mapping[str, AttributeValue]) -> bool:
    """True when the span says its task failed for good (Celery's ``FAILURE`` state)."""
    state = _text(attributes.get(_CELERY_STATE))
    return state is not None and state.upper() == "FAILURE"


@dataclass(frozen=True, slots=True)
class VocabularyRules:
    """The keys and values ``normalize`` reads, as data, for engines that cannot run this
    module: the ClickHouse store builds its SQL expressions from ``RULES``
    (``tracebraid.store.clickhouse.vocabulary``), so both read the same keys in the same
    order; the precedence between them is the module docstring's, and a property test
    (``tests/store/test_clickhouse_vocabulary.py``) holds the SQL to ``normalize``.
    """

    operation_keys: tuple[str, ...]
    producer_operations: frozenset[str]
    consumer_operations: frozenset[str]
    destination_keys: tuple[str, ...]
    group_keys: tuple[str, ...]
    queue_keys: tuple[str, ...]
    message_id_keys: tuple[str, ...]
    cloudevents_key: str
    celery_task_keys: tuple[str, ...]
    kafka_offset_keys: tuple[str, ...]
    kafka_partition_keys: tuple[str, ...]
    correlation_keys: tuple[str, ...]
    causation_key: str
    event_name_key: str
    attempt_key: str
    celery_retries_key: str
    pubsub_attempt_key: str
    outcome_key: str
    declared_outcomes: tuple[str, ...]
    dead_letter_key: str
    celery_state_key: str
    nack_words: tuple[str, ...]
    unsettled_endings: frozenset[str]
    receive_only_scopes: frozenset[str]
    dead_letter_marks: tuple[str, ...]
    marker_scope: str
    marker_for_key: str


RULES = VocabularyRules(
    operation_keys=_OPERATION_KEYS,
    producer_operations=_PRODUCER_OPERATIONS,
    consumer_operations=_CONSUMER_OPERATIONS,
    destination_keys=_DESTINATION_KEYS,
    group_keys=_GROUP_KEYS,
    queue_keys=_QUEUE_KEYS,
    message_id_keys=_MESSAGE_ID_KEYS,
    cloudevents_key=_CLOUDEVENTS_ID,
    celery_task_keys=_CELERY_TASK_ID,
    kafka_offset_keys=_KAFKA_OFFSET,
    kafka_partition_keys=_KAFKA_PARTITION,
    correlation_keys=_CORRELATION_KEYS,
    causation_key=semconv.CAUSATION_ID,
    event_name_key=semconv.EVENT_NAME,
    attempt_key=semconv.ATTEMPT,
    celery_retries_key=_CELERY_RETRIES,
    pubsub_attempt_key=_PUBSUB_ATTEMPT,
    outcome_key=semconv.OUTCOME,
    declared_outcomes=tuple(_OUTCOMES),
    dead_letter_key=semconv.DEAD_LETTER,
    celery_state_key=_CELERY_STATE,
    nack_words=_NACK_WORDS,
    unsettled_endings=_UNSETTLED_ENDINGS,
    receive_only_scopes=RECEIVE_ONLY_SCOPES,
    dead_letter_marks=DEAD_LETTER_MARKS,
    marker_scope=semconv.START_MARKER_SCOPE,
    marker_for_key=semconv.MARKER_FOR_SPAN,
)
"""The rules ``normalize`` follows, as data (``VocabularyRules``)."""
