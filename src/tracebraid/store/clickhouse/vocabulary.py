"""The messaging vocabulary as ClickHouse SQL: each ``MessagingView`` field an expression.

``otel_traces`` keeps every attribute as a string in ``SpanAttributes``, and the
fleet aggregates must read a span as ``tracebraid.messaging.normalize`` does without
pulling the table into Python. Every expression here is built from
``tracebraid.messaging.RULES`` (the keys and values ``normalize`` reads, declared
once), in the precedence ``normalize`` applies, so the two cannot read different
keys; ``tests/store/test_clickhouse_vocabulary.py`` runs both over generated spans of
every convention generation and holds them equal.

Each field is a named column of ``VIEW`` (a select list over one ``otel_traces``
row) and is ``''`` (or ``NULL`` for a number) where the view says ``None``.

Example::

    >>> "SpanAttributes['messaging.message.id']" in VIEW and f"AS {EVENT_ID}" in VIEW
    True
"""

from __future__ import annotations

from collections.abc import Iterable

from tracebraid.messaging import RULES, AttemptOutcome
from tracebraid.model import SpanKind, StatusCode
from tracebraid.store.clickhouse.codec import ERROR_STATUSES, kind_values, status_values

__all__ = [
    "ATTEMPT",
    "CAUSATION",
    "COLUMNS",
    "CONSUMER",
    "CORRELATION",
    "DEAD_LETTER",
    "DESTINATION",
    "EVENT_ID",
    "FAILED_OUTCOMES",
    "IDENTITIES",
    "MARKER",
    "MARKER_FOR",
    "OPERATION",
    "OUTCOME",
    "ROLE",
    "VIEW",
    "inline",
]


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _set(values: Iterable[str]) -> str:
    return "(" + ", ".join(_quote(v) for v in sorted(values)) + ")"


def _attr(key: str) -> str:
    return f"SpanAttributes[{_quote(key)}]"


def _first(keys: Iterable[str]) -> str:
    """The first non-empty value among ``keys`` ('' when none): ``messaging._first``."""
    unique = list(dict.fromkeys(keys))
    if len(unique) == 1:
        return _attr(unique[0])
    branches = ", ".join(f"{_attr(k)} != '', {_attr(k)}" for k in unique)
    return f"multiIf({branches}, '')"


def _integer(text: str) -> str:
    """A whole number however it was written ("2", "2.0"), else NULL: ``messaging._integer``."""
    t = f"trimBoth({text})"
    return (
        f"multiIf(isNotNull(toInt64OrNull({t})), toInt64OrNull({t}), "
        f"isNotNull(toFloat64OrNull({t})) AND toFloat64OrNull({t}) = floor(toFloat64OrNull({t})), "
        f"toInt64(toFloat64OrNull({t})), NULL)"
    )


def _counted_from(text: str, first: int) -> str:
    number = _integer(text)
    return f"if({number} >= {first}, {number}, NULL)"


def _kinds(kind: SpanKind) -> str:
    return _set(kind_values(kind))


# Each field is computed once per row, as a named column the later ones read (the SQL
# stays small enough for ClickHouse to plan quickly, however often a query reads it).
OPERATION = "MsgOperation"
"""``MessagingView.operation`` ('' when unsaid)."""
ROLE = "MsgRole"
"""``MessagingView.role`` for the roles that matter here (``internal`` reads ``other``)."""
DESTINATION = "MsgDestination"
"""``MessagingView.destination``."""
CORRELATION = "MsgCorrelation"
"""``MessagingView.correlation_id``."""
EVENT_ID = "MsgEventId"
"""``MessagingView.event_id``: the first strong identity."""
CONSUMER = "MsgConsumer"
"""``MessagingView.consumer``: the group, else the service and queue, else the service."""
ATTEMPT = "MsgAttempt"
"""``MessagingView.attempt`` (NULL: unknown)."""
OUTCOME = "MsgOutcome"
"""``MessagingView.outcome``, from the best evidence."""
DEAD_LETTER = "MsgDeadLetter"
"""``MessagingView.dead_letter``."""
MARKER = "MsgMarker"
"""True for a start marker."""
MARKER_FOR = "MsgMarkerFor"
"""``MessagingView.marker_for``: the span a start marker announces ('' on other spans)."""
IDENTITIES = "MsgIdentities"
"""``MessagingView.strong_identities``, as an array (empty on other spans)."""
CAUSATION = "MsgCausation"
"""``MessagingView.causation_id``."""

_MESSAGING = f"{ROLE} IN ('producer', 'consumer')"
# aio-pika's producers write "exchange,routing_key": the exchange, else the routing key.
_RAW_DESTINATION = _first(RULES.destination_keys)
_COMMA = f"position({_RAW_DESTINATION}, ',')"
_EXCHANGE = f"substring({_RAW_DESTINATION}, 1, {_COMMA} - 1)"
_DESTINATION = (
    f"if({_COMMA} > 0, if({_EXCHANGE} != '', {_EXCHANGE}, "
    f"substring({_RAW_DESTINATION}, {_COMMA} + 1)), {_RAW_DESTINATION})"
)
_OFFSET = _integer(_first(RULES.kafka_offset_keys))
_PARTITION = _integer(_first(RULES.kafka_partition_keys))
_KAFKA = (
    f"if(isNotNull({_OFFSET}) AND isNotNull({_PARTITION}) AND {DESTINATION} != '', "
    f"concat('kafka:', {DESTINATION}, '/', toString({_PARTITION}), '@', toString({_OFFSET})), '')"
)
_MESSAGE_ID = _first(RULES.message_id_keys)
_CLOUD = _attr(RULES.cloudevents_key)
_TASK = _first(RULES.celery_task_keys)
_GROUP = _first(RULES.group_keys)
_QUEUE = _first(RULES.queue_keys)
_NAMED = "extract(SpanName, '^(.*) [^ ]*$')"
_NAMED_OPERATION = "extract(SpanName, ' ([^ ]*)$')"
_QUEUE_OR_NAME = (
    f"multiIf({_QUEUE} != '', {_QUEUE}, {_NAMED} != '' AND {_NAMED_OPERATION} IN "
    f"{_set(RULES.consumer_operations)} AND {_NAMED} != {DESTINATION}, {_NAMED}, '')"
)
_ERROR = _set(ERROR_STATUSES)
# Any status the codec does not read as OK or ERROR is UNSET (codec.status_from_text).
_NOT_UNSET = _set(t for code in (StatusCode.OK, StatusCode.ERROR) for t in status_values(code))
_DECLARED = f"lower(trimBoth({_attr(RULES.outcome_key)}))"
_FLAGGED = f"lower(trimBoth({_attr(RULES.dead_letter_key)})) = 'true'"
_STATE = f"upper({_attr(RULES.celery_state_key)})"
_NACKED = " OR ".join(f"position(lower(StatusMessage), {_quote(w)}) > 0" for w in RULES.nack_words)
_SUFFIXES = [sep + mark for mark in RULES.dead_letter_marks for sep in ".-_"]
_DLQ = f"lower({DESTINATION})"

COLUMNS: tuple[tuple[str, str], ...] = (
    (OPERATION, f"lower({_first(RULES.operation_keys)})"),
    (
        ROLE,
        f"multiIf({OPERATION} IN {_set(RULES.producer_operations)}, 'producer', "
        f"{OPERATION} IN {_set(RULES.consumer_operations)}, 'consumer', "
        f"{OPERATION} = '' AND SpanKind IN {_kinds(SpanKind.PRODUCER)}, 'producer', "
        f"{OPERATION} = '' AND SpanKind IN {_kinds(SpanKind.CONSUMER)}, 'consumer', 'other')",
    ),
    (DESTINATION, f"if({_MESSAGING}, {_DESTINATION}, '')"),
    (CORRELATION, _first(RULES.correlation_keys)),
    (
        EVENT_ID,
        f"if({_MESSAGING}, multiIf({_MESSAGE_ID} != '', {_MESSAGE_ID}, {_CLOUD} != '', "
        f"{_CLOUD}, {_TASK} != '', {_TASK}, {_KAFKA}), '')",
    ),
    (
        CONSUMER,
        f"if({ROLE} = 'consumer', multiIf({_GROUP} != '', {_GROUP}, {_QUEUE_OR_NAME} != '', "
        f"concat(ServiceName, ':', {_QUEUE_OR_NAME}), ServiceName), '')",
    ),
    (
        ATTEMPT,
        f"if({ROLE} = 'consumer', coalesce({_counted_from(_attr(RULES.attempt_key), 1)}, "
        f"{_counted_from(_attr(RULES.celery_retries_key), 0)} + 1, "
        f"{_counted_from(_attr(RULES.pubsub_attempt_key), 1)}), NULL)",
    ),
    (
        OUTCOME,
        f"multiIf({_DECLARED} IN {_set(RULES.declared_outcomes)}, {_DECLARED}, "
        f"{_FLAGGED}, '{AttemptOutcome.DEAD_LETTER.value}', "
        f"{_STATE} = 'RETRY', '{AttemptOutcome.RETRY.value}', "
        f"{_STATE} = 'FAILURE', '{AttemptOutcome.ERROR.value}', "
        f"{ROLE} = 'consumer' AND NOT has(Events.Name, 'exception') AND "
        f"lower(trimBoth(StatusMessage)) IN {_set(sorted(RULES.unsettled_endings))}, "
        f"'{AttemptOutcome.UNKNOWN.value}', "
        f"StatusCode IN {_ERROR} OR has(Events.Name, 'exception'), "
        f"'{AttemptOutcome.ERROR.value}', {_NACKED}, '{AttemptOutcome.ERROR.value}', "
        f"{ROLE} = 'consumer' AND lower(StatusCode) NOT IN {_NOT_UNSET} AND {_STATE} = '' "
        f"AND ScopeName IN {_set(RULES.receive_only_scopes)}, "
        f"'{AttemptOutcome.UNKNOWN.value}', '{AttemptOutcome.OK.value}')",
    ),
    (
        DEAD_LETTER,
        f"({_FLAGGED} OR {OUTCOME} = '{AttemptOutcome.DEAD_LETTER.value}' OR "
        f"({DESTINATION} != '' AND ({_DLQ} IN {_set(RULES.dead_letter_marks)} OR "
        + " OR ".join(f"endsWith({_DLQ}, {_quote(s)})" for s in _SUFFIXES)
        + ")))",
    ),
    (
        IDENTITIES,
        f"if({_MESSAGING}, arrayDistinct(arrayFilter(i -> i != '', "
        f"[{_MESSAGE_ID}, {_CLOUD}, {_TASK}, {_KAFKA}])), CAST([], 'Array(String)'))",
    ),
    (CAUSATION, f"if({_MESSAGING}, {_attr(RULES.causation_key)}, '')"),
    (MARKER, f"ScopeName = {_quote(RULES.marker_scope)}"),
    (
        MARKER_FOR,
        f"if({MARKER}, if({_attr(RULES.marker_for_key)} != '', "
        f"{_attr(RULES.marker_for_key)}, SpanId), '')",
    ),
)
"""Each ``MessagingView`` field as (column name, SQL over one ``otel_traces`` row); an
expression may read the columns named before it."""

VIEW = ", ".join(f"{expression} AS {name}" for name, expression in COLUMNS)
"""The select list of every field, for ``SELECT ..., {VIEW} FROM otel_traces``."""


def inline(name: str) -> str:
    """The expression of the column ``name`` with the columns it reads written out: for
    a query that reads one field once (a look-up, a view's select) and needs no subquery.

    >>> "MsgRole" in inline(EVENT_ID)
    False
    """
    expressions = dict(COLUMNS)
    text = expressions[name]
    for earlier, expression in reversed(COLUMNS[: list(expressions).index(name)]):
        text = text.replace(earlier, f"({expression})")
    return text


FAILED_OUTCOMES = _set(o.value for o in AttemptOutcome if o.failed)
"""The outcomes of a failed attempt (``AttemptOutcome.failed``), as an SQL tuple."""
