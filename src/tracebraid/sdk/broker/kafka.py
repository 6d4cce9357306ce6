"""Kafka over aiokafka: topics, consumer groups, and an attempt counter in a header.

Kafka keeps no delivery count and no redelivery: a consumer group only moves its
committed offset. So:

- ``publish`` sends to topic ``<destination>`` with the headers as Kafka record
  headers (``list[tuple[str, bytes]]``, UTF-8) plus ``x-message-id``;
- each ``subscribe`` is one member of consumer group ``group`` (Kafka shares a
  topic's partitions among members; groups fan out), committing offsets after
  each batch is processed (at least once);
- a failed record is re-sent to the group's own retry topic
  ``<destination>.retry.<group>`` with ``x-attempt`` incremented (the header
  counter *is* the attempt) and ``x-not-before`` (epoch ms) set to now plus the
  back-off; the group's members read that topic too and wait until then;
- after the last attempt it goes to ``<destination>.dlq`` with the dead-letter
  headers.

What a header counter cannot see: a member that crashes before committing has its
records read again by another member *with the same* ``x-attempt``, so a crash is
not counted as an attempt (RabbitMQ, Redis and JetStream count it). Topics are
created by the broker on first use (``auto.create.topics.enable``), and a new group
starts at the end of the topic (``auto_offset_reset="latest"``) once its partitions
are assigned.

The record mapping (``record_headers``, ``delivery_from_record``) is pure and is
what the tests exercise, with aiokafka's own record codec: no Kafka server runs
here, so the consume loop below is not tested against a broker.

Example::

    async with KafkaBroker("127.0.0.1:9092") as broker:
        await broker.subscribe("orders", "reserve-inventory", reserve)
        await broker.publish("orders", b"{}", {}, message_id="evt_1")
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tracebraid.sdk.broker._adapter import (
    BrokerAdapter,
    check_subscription,
    closed_for_good,
    not_open,
)
from tracebraid.sdk.broker._address import unavailable
from tracebraid.sdk.broker._extras import client_import
from tracebraid.sdk.broker._settle import (
    Acknowledge,
    DeadLetter,
    Redelivery,
    after_failure,
    settle,
)
from tracebraid.sdk.broker._tasks import Tasks
from tracebraid.sdk.broker.base import (
    DEFAULT_RETRY,
    Delivery,
    Handler,
    Headers,
    RetryPolicy,
)
from tracebraid.sdk.carriers import ATTEMPT_HEADER

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

__all__ = [
    "DEFAULT_KAFKA_URL",
    "MESSAGE_ID_HEADER",
    "NOT_BEFORE_HEADER",
    "KafkaBroker",
    "KafkaHeaders",
    "delivery_from_record",
    "next_record",
    "record_headers",
    "retry_topic",
]

DEFAULT_KAFKA_URL = "127.0.0.1:9092"
MESSAGE_ID_HEADER = "x-message-id"
NOT_BEFORE_HEADER = "x-not-before"
"""On a retry record: epoch milliseconds before which it must not be processed."""
_OWN_HEADERS = frozenset({MESSAGE_ID_HEADER, NOT_BEFORE_HEADER, ATTEMPT_HEADER})
_NOT_IN_A_TOPIC = re.compile(r"[^A-Za-z0-9._-]")

KafkaHeaders = list[tuple[str, bytes]]
"""Kafka record headers as aiokafka sends them."""

_log = logging.getLogger(__name__)


def retry_topic(destination: str, group: str) -> str:
    """The topic holding group ``group``'s retries of ``destination``'s records."""
    return f"{destination}.retry.{_NOT_IN_A_TOPIC.sub('_', group)}"


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
    record: ConsumerRecord[Any, Any], *, destination: str, group: str
) -> tuple[Delivery, int | None]:
    """The ``Delivery`` a record is, and its ``x-not-before`` (epoch ms) if it is a retry.

    Headers that are not UTF-8 are left out; the attempt is ``x-attempt`` (1 when
    absent or unreadable); the message ID is ``x-message-id``, else the record's
    ``topic/partition/offset``.
    """
    texts: dict[str, str] = {}
    for name, value in record.headers or ():
        if isinstance(value, bytes | bytearray):
            with contextlib.suppress(UnicodeDecodeError):
                texts[name] = bytes(value).decode("utf-8")
    attempt = _int_header(texts.get(ATTEMPT_HEADER)) or 1
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


@dataclass(frozen=True, slots=True)
class _Member:
    destination: str
    group: str
    handler: Handler
    retry: RetryPolicy
    delay: float


class KafkaBroker(BrokerAdapter):
    """A ``Broker`` over Kafka (aiokafka); see the module docstring for retries and limits."""

    def __init__(self, bootstrap_servers: str = DEFAULT_KAFKA_URL, *, connect_timeout: float = 5.0):
        self.bootstrap_servers = bootstrap_servers.removeprefix("kafka://").rstrip("/")
        self.connect_timeout = connect_timeout
        self._producer: AIOKafkaProducer | None = None
        self._consumers: list[AIOKafkaConsumer] = []
        self._tasks = Tasks(_log)
        self._closed = False

    @property
    def system(self) -> str:
        """``kafka``: the ``messaging.system`` value for spans over this broker."""
        return "kafka"

    async def start(self) -> None:
        """Start the producer (it fetches the cluster's metadata, so a dead address fails here)."""
        if self._producer is not None:
            return
        if self._closed:
            raise closed_for_good("KafkaBroker")
        with client_import("kafka", "aiokafka"):
            from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            request_timeout_ms=int(self.connect_timeout * 1000),
        )
        try:
            async with asyncio.timeout(self.connect_timeout):
                await producer.start()
        except Exception as exc:  # KafkaConnectionError, timeouts: "not reachable"
            with contextlib.suppress(Exception):
                await producer.stop()
            raise unavailable("Kafka", f"kafka://{self.bootstrap_servers}", exc) from exc
        self._producer = producer

    async def close(self) -> None:
        """Stop every member (offsets of finished batches are committed) and the producer."""
        if self._closed:
            return
        self._closed = True
        await self._tasks.cancel()
        for consumer in self._consumers:
            with contextlib.suppress(Exception):
                await consumer.stop()
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def publish(
        self, destination: str, payload: bytes, headers: Headers, *, message_id: str
    ) -> None:
        """Send one record to topic ``destination`` and wait for the broker's acknowledgement."""
        await self._send(destination, payload, record_headers(headers, message_id=message_id))

    async def subscribe(
        self,
        destination: str,
        group: str,
        handler: Handler,
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
        concurrency: int = 1,
        delay: float = 0.0,
    ) -> None:
        """Join consumer group ``group`` on ``destination`` and the group's retry topic."""
        from aiokafka import AIOKafkaConsumer

        self._require_producer()
        check_subscription(destination, group, concurrency, delay)
        consumer = AIOKafkaConsumer(
            destination,
            retry_topic(destination, group),
            bootstrap_servers=self.bootstrap_servers,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="latest",
        )
        await consumer.start()
        self._consumers.append(consumer)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.connect_timeout):
                while not consumer.assignment():
                    await asyncio.sleep(0.05)
        member = _Member(destination, group, handler, retry, delay)
        self._tasks.spawn(self._consume(consumer, member, concurrency), group)

    # -- internals --

    def _require_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise not_open("KafkaBroker(servers)", closed=self._closed)
        return self._producer

    async def _send(self, topic: str, payload: bytes, headers: KafkaHeaders) -> None:
        await self._require_producer().send_and_wait(topic, bytes(payload), headers=headers)

    async def _consume(self, consumer: AIOKafkaConsumer, member: _Member, batch: int) -> None:
        while not self._closed:
            try:
                fetched = await consumer.getmany(timeout_ms=1000, max_records=batch)
                records: Sequence[ConsumerRecord[Any, Any]] = [
                    r for partition in fetched.values() for r in partition
                ]
                await asyncio.gather(*(self._process(member, r) for r in records))
                if records:
                    await consumer.commit()
            except Exception as exc:  # a rebalance or reconnect: uncommitted records come back
                _log.warning(
                    "consuming %s for %s failed: %s", member.destination, member.group, exc
                )
                await asyncio.sleep(1.0)

    async def _process(self, member: _Member, record: ConsumerRecord[Any, Any]) -> None:
        delivery, not_before_ms = delivery_from_record(
            record, destination=member.destination, group=member.group
        )
        wait = member.delay
        if not_before_ms is not None:
            wait = max(wait, not_before_ms / 1000 - time.time())
        settlement = await settle(member.handler, delivery, member.retry, delay=wait)
        if not isinstance(settlement, Acknowledge):
            topic, headers = _record_after(delivery, settlement, now_ms=int(time.time() * 1000))
            await self._send(topic, delivery.payload, headers)


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
    return _record_after(delivery, after_failure(delivery, error, retry), now_ms=now_ms)


def _record_after(
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
