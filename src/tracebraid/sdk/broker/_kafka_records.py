"""Kafka records as tracebraid reads and writes them: headers, names, attempts, what comes next.

Pure: no client, no I/O. ``KafkaBroker`` (``tracebraid.sdk.broker.kafka``, which
re-exports these) and its group members use them; the tests run them through
aiokafka's own record codec.

Example::

    >>> record_headers({"traceparent": "00-ab"}, message_id="evt_1", attempt=2)
    [('traceparent', b'00-ab'), ('x-message-id', b'evt_1'), ('x-attempt', b'2')]
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, Any

from tracebraid.sdk.broker._settle import DeadLetter, Redelivery, after_failure
from tracebraid.sdk.broker.base import (
    DEAD_LETTER_GROUP_HEADER,
    DEAD_LETTER_REASON_HEADER,
    Delivery,
    Headers,
    RetryPolicy,
    dead_letter_destination,
)
from tracebraid.sdk.carriers import ATTEMPT_HEADER

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord

__all__ = [
    "MESSAGE_ID_HEADER",
    "NOT_BEFORE_HEADER",
    "KafkaHeaders",
    "consumer_group_id",
    "delivery_from_record",
    "lost_too_often",
    "next_record",
    "processing_topic",
    "record_after",
    "record_headers",
    "retry_topic",
]

MESSAGE_ID_HEADER = "x-message-id"
NOT_BEFORE_HEADER = "x-not-before"
"""On a retry record: epoch milliseconds before which it must not be processed."""
_OWN_HEADERS = frozenset({MESSAGE_ID_HEADER, NOT_BEFORE_HEADER, ATTEMPT_HEADER})
_NOT_IN_A_TOPIC = re.compile(r"[^A-Za-z0-9._-]")

KafkaHeaders = list[tuple[str, bytes]]
"""Kafka record headers as aiokafka sends them."""


def _safe(name: str) -> str:
    return _NOT_IN_A_TOPIC.sub("_", name)


def retry_topic(destination: str, group: str) -> str:
    """The topic holding group ``group``'s retries of ``destination``'s records."""
    return f"{destination}.retry.{_safe(group)}"


def processing_topic(topic: str, group: str) -> str:
    """The topic of group ``group``'s processing markers for ``topic`` (same partitions).

    Example::

        >>> processing_topic("orders", "reserve-inventory")
        'orders.processing.reserve-inventory'
    """
    return f"{topic}.processing.{_safe(group)}"


def consumer_group_id(destination: str, group: str) -> str:
    """The Kafka consumer group of tracebraid group ``group`` on ``destination``.

    Example::

        >>> consumer_group_id("orders", "reserve-inventory")
        'orders.reserve-inventory'
    """
    return f"{destination}.{group}"


def record_headers(
    headers: Headers,
    *,
    message_id: str,
    attempt: int | None = None,
    not_before_ms: int | None = None,
) -> KafkaHeaders:
    """Kafka record headers for ``headers`` (UTF-8), the message ID, and a retry's counter.

    Example::

        >>> record_headers({"traceparent": "00-ab"}, message_id="evt_1", attempt=2)
        [('traceparent', b'00-ab'), ('x-message-id', b'evt_1'), ('x-attempt', b'2')]
    """
    pairs = [(k, v.encode("utf-8")) for k, v in headers.items() if k.lower() not in _OWN_HEADERS]
    pairs.append((MESSAGE_ID_HEADER, message_id.encode("utf-8")))
    if attempt is not None and attempt > 1:
        pairs.append((ATTEMPT_HEADER, str(attempt).encode()))
    if not_before_ms is not None:
        pairs.append((NOT_BEFORE_HEADER, str(not_before_ms).encode()))
    return pairs


def _int_header(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def delivery_from_record(
    record: ConsumerRecord[Any, Any], *, destination: str, group: str, earlier_starts: int = 0
) -> tuple[Delivery, int | None]:
    """The ``Delivery`` a record is, and its ``x-not-before`` (epoch ms) if it is a retry.

    Headers that are not UTF-8 are left out; the attempt is ``x-attempt`` (1 when
    absent or unreadable) plus ``earlier_starts``, the times this group handed this
    very record to a handler before (from the processing marker); the message ID is
    ``x-message-id``, else the record's ``topic/partition/offset``.
    """
    texts: dict[str, str] = {}
    for name, value in record.headers or ():
        if isinstance(value, bytes | bytearray):
            with contextlib.suppress(UnicodeDecodeError):
                texts[name] = bytes(value).decode("utf-8")
    attempt = (_int_header(texts.get(ATTEMPT_HEADER)) or 1) + max(earlier_starts, 0)
    not_before = _int_header(texts.get(NOT_BEFORE_HEADER))
    message_id = (
        texts.get(MESSAGE_ID_HEADER) or f"{record.topic}/{record.partition}/{record.offset}"
    )
    payload = record.value if isinstance(record.value, bytes) else b""
    delivery = Delivery(
        destination=destination,
        group=group,
        message_id=message_id,
        payload=payload,
        headers={k: v for k, v in texts.items() if k not in _OWN_HEADERS},
        delivery_count=attempt,
    )
    return delivery, not_before


def lost_too_often(
    delivery: Delivery, retry: RetryPolicy, earlier_starts: int
) -> DeadLetter | None:
    """A dead letter for a record whose attempts all ended with its consumer lost, else None.

    Such a record (one that kills its consumer, say) would otherwise come back forever:
    once its attempt is past ``retry.max_attempts`` it is parked without running the
    handler again, as RabbitMQ's delivery limit and JetStream's ``max_deliver`` do.

    Example::

        >>> lost = Delivery("orders", "reserve-inventory", "evt_1", b"", {}, delivery_count=4)
        >>> lost_too_often(lost, RetryPolicy(3), earlier_starts=3).headers["x-dead-letter-reason"]
        'ConsumerLost: handed to a consumer 3 times before, none settled it'
    """
    if delivery.delivery_count <= retry.max_attempts:
        return None
    headers = {
        **delivery.headers,
        DEAD_LETTER_GROUP_HEADER: delivery.group,
        DEAD_LETTER_REASON_HEADER: (
            f"ConsumerLost: handed to a consumer {earlier_starts} times before, none settled it"
        ),
    }
    return DeadLetter(dead_letter_destination(delivery.destination), headers)


def next_record(
    delivery: Delivery, error: Exception, *, retry: RetryPolicy, now_ms: int
) -> tuple[str, KafkaHeaders]:
    """Where a failed delivery goes next, and with which headers: a retry or the DLQ.

    A retry goes to the group's retry topic with ``x-attempt`` one higher and
    ``x-not-before`` ``now_ms`` plus the back-off; the last attempt goes to
    ``<destination>.dlq`` with the dead-letter headers.

    Example::

        >>> failed = Delivery("orders", "reserve-inventory", "evt_1", b"", {}, 1)
        >>> next_record(failed, TimeoutError(), retry=RetryPolicy(3, (0.2,)), now_ms=1000)
        ('orders.retry.reserve-inventory', [('x-message-id', b'evt_1'), ('x-attempt', b'2'), \
('x-not-before', b'1200')])
    """
    return record_after(delivery, after_failure(delivery, error, retry), now_ms=now_ms)


def record_after(
    delivery: Delivery, step: Redelivery | DeadLetter, *, now_ms: int
) -> tuple[str, KafkaHeaders]:
    """``next_record`` once the failure is settled: the retry topic or the DLQ, and headers."""
    if isinstance(step, DeadLetter):
        return step.destination, record_headers(step.headers, message_id=delivery.message_id)
    due_ms = now_ms + round(step.backoff * 1000)
    headers = record_headers(
        delivery.headers, message_id=delivery.message_id, attempt=step.attempt, not_before_ms=due_ms
    )
    return retry_topic(delivery.destination, delivery.group), headers
