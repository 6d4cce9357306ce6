"""Kafka over aiokafka: topics, consumer groups, a retry topic, and attempts Kafka cannot count.

Kafka keeps no delivery count and no redelivery: a consumer group only moves its
committed offset. So:

- ``publish`` sends to topic ``<destination>`` with the headers as Kafka record
  headers (``list[tuple[str, bytes]]``, UTF-8) plus ``x-message-id``;
- each ``subscribe`` is one member of the Kafka consumer group
  ``<destination>.<group>`` (``consumer_group_id``: a tracebraid group consumes one
  destination, as a RabbitMQ queue does, so two destinations never share a Kafka
  group's rebalances). Kafka shares a topic's partitions among the members; groups
  fan out. ``subscribe`` returns once the member has joined and the group's place
  on every partition is committed, so the group gets every record published after it;
- up to ``concurrency`` records are processed at once; a partition's committed
  offset moves up to its lowest record still in process (at least once);
- a failed record is re-sent to the group's own retry topic
  ``<destination>.retry.<group>`` with ``x-attempt`` incremented and
  ``x-not-before`` (epoch ms) set to now plus the back-off; the group's members
  read that topic too and wait until then;
- after the last attempt it goes to ``<destination>.dlq`` with the dead-letter headers.

Attempts: ``x-attempt`` counts the retries the adapter sent. A consumer that is lost
(killed, or its partition moved in a rebalance) before its records are committed
leaves them to the next owner, which fetches the same offsets again; Kafka says
nothing about that. So before it hands records to a handler, a member writes a
*processing marker* (``_kafka_progress``) to ``<topic>.processing.<group>``, the
partition of the same number: the committed offset and how often each record from
there on was handed out. The next owner reads the last marker and adds those counts,
so a killed consumer's record comes back as attempt 2 (and one lost every time is
dead-lettered after ``max_attempts``, ``ConsumerLost`` as the reason). What this
counts is *hand-outs to a handler*, not handler runs: a member lost after writing
the marker but before calling the handler (or while a retry waits out its back-off)
still counts one. What it cannot count: records started by a consumer that is not
tracebraid's (it writes no markers). A member that cannot write its marker does not
process the records (it fetches them again), so nothing runs uncounted.

Joins: a group join takes about half the session timeout on tansu (and
``group.initial.rebalance.delay.ms``, 3 s by default, on Apache Kafka), and a lost
member holds its partitions until its session times out. ``session_timeout``
defaults to 6 s, Apache Kafka's smallest allowed (``group.min.session.timeout.ms``);
the tests run on tansu with 2 s. Fetches wait at most 50 ms for data: a broker that
holds a fetch for its whole wait when nothing arrives (tansu does) would otherwise add
that wait to a hop.

Topics: destinations, retry and dead-letter topics are created by the broker on first
use (``auto.create.topics.enable``); the processing topics are created by the adapter
with their source's partition count. The record mapping (``record_headers``,
``delivery_from_record``, ``next_record``: ``_kafka_records``, re-exported here) is
pure. Tested against tansu, a Kafka-protocol broker, not against Apache Kafka itself.

Example::

    async with KafkaBroker("127.0.0.1:9092") as broker:
        await broker.subscribe("orders", "reserve-inventory", reserve)
        await broker.publish("orders", b"{}", {}, message_id="evt_1")
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from tracebraid.errors import ConfigurationError
from tracebraid.sdk.broker._adapter import (
    BrokerAdapter,
    check_subscription,
    closed_for_good,
    not_open,
)
from tracebraid.sdk.broker._address import unavailable
from tracebraid.sdk.broker._extras import client_import
from tracebraid.sdk.broker._kafka_progress import ProcessingMarker, decode_marker
from tracebraid.sdk.broker._kafka_records import (
    MESSAGE_ID_HEADER,
    NOT_BEFORE_HEADER,
    KafkaHeaders,
    consumer_group_id,
    delivery_from_record,
    lost_too_often,
    next_record,
    processing_topic,
    record_headers,
    retry_topic,
)
from tracebraid.sdk.broker._tasks import Tasks
from tracebraid.sdk.broker.base import (
    DEFAULT_RETRY,
    Handler,
    Headers,
    RetryPolicy,
)

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
    from aiokafka.admin import AIOKafkaAdminClient

__all__ = [
    "DEFAULT_KAFKA_URL",
    "MESSAGE_ID_HEADER",
    "NOT_BEFORE_HEADER",
    "KafkaBroker",
    "KafkaHeaders",
    "consumer_group_id",
    "delivery_from_record",
    "lost_too_often",
    "next_record",
    "processing_topic",
    "record_headers",
    "retry_topic",
]

DEFAULT_KAFKA_URL = "127.0.0.1:9092"
_FETCH_WAIT_MS = 50
_TOPIC_EXISTS = 36  # Kafka's TOPIC_ALREADY_EXISTS error code

_log = logging.getLogger(__name__)


class KafkaBroker(BrokerAdapter):
    """A ``Broker`` over Kafka (aiokafka); see the module docstring for attempts and joins.

    ``temporary=True`` deletes, on close, every topic this adapter published to,
    subscribed to, or created (retry, processing-marker and dead-letter topics).
    """

    def __init__(
        self,
        bootstrap_servers: str = DEFAULT_KAFKA_URL,
        *,
        connect_timeout: float = 5.0,
        session_timeout: float = 6.0,
        temporary: bool = False,
    ):
        self.bootstrap_servers = bootstrap_servers.removeprefix("kafka://").rstrip("/")
        self.connect_timeout = connect_timeout
        if session_timeout <= 0:
            raise ConfigurationError(
                f"session_timeout must be above 0 s, got {session_timeout} "
                "(Apache Kafka accepts 6 s and more by default)"
            )
        self.session_timeout = session_timeout
        self.temporary = temporary
        self._producer: AIOKafkaProducer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._markers: AIOKafkaConsumer | None = None  # reads the last marker of a partition
        self._markers_lock = asyncio.Lock()
        self._consumers: list[AIOKafkaConsumer] = []
        self._topics: set[str] = set()
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
            from aiokafka.admin import AIOKafkaAdminClient

        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            request_timeout_ms=int(self.connect_timeout * 1000),
        )
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers,
            request_timeout_ms=int(self.connect_timeout * 1000),
        )
        try:
            async with asyncio.timeout(self.connect_timeout):
                await producer.start()
                await admin.start()
        except Exception as exc:  # KafkaConnectionError, timeouts: "not reachable"
            with contextlib.suppress(Exception):
                await producer.stop()
            with contextlib.suppress(Exception):
                await admin.close()
            raise unavailable("Kafka", f"kafka://{self.bootstrap_servers}", exc) from exc
        self._producer, self._admin = producer, admin

    async def close(self) -> None:
        """Stop every member (records in process are not committed) and the producer.

        A record whose handler was cancelled here comes back to the group's next
        member, counted as a further attempt.
        """
        if self._closed:
            return
        self._closed = True
        await self._tasks.cancel()
        for consumer in (*self._consumers, self._markers):
            if consumer is not None:
                with contextlib.suppress(Exception):
                    await consumer.stop()
        admin, self._admin = self._admin, None
        if admin is not None:
            if self.temporary and self._topics:
                with contextlib.suppress(Exception):
                    await admin.delete_topics(sorted(self._topics))
            with contextlib.suppress(Exception):
                await admin.close()
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
        """Join ``destination``'s consumer group for ``group`` (and its retry topic).

        Returns once the member has its partitions and the group's offsets are
        committed; a member that gets no partition (more members than partitions)
        waits idle for a rebalance.
        """
        from aiokafka import AIOKafkaConsumer

        from tracebraid.sdk.broker._kafka_member import GroupMember, Subscription

        self._require_producer()
        check_subscription(destination, group, concurrency, delay)
        session_ms = round(self.session_timeout * 1000)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            group_id=consumer_group_id(destination, group),
            enable_auto_commit=False,
            auto_offset_reset="latest",
            session_timeout_ms=session_ms,
            heartbeat_interval_ms=max(100, session_ms // 3),
            rebalance_timeout_ms=session_ms,
            fetch_max_wait_ms=_FETCH_WAIT_MS,
            request_timeout_ms=max(int(self.connect_timeout * 1000), session_ms + 5000),
        )
        subscription = Subscription(destination, group, handler, retry, concurrency, delay)
        member = GroupMember(self, consumer, subscription, drain=self.session_timeout / 2)
        topics = [destination, retry_topic(destination, group)]
        self._topics.update(topics)
        consumer.subscribe(topics, listener=member.listener)
        self._consumers.append(consumer)
        await consumer.start()
        try:
            async with asyncio.timeout(self.connect_timeout + 3 * self.session_timeout):
                await member.joined.wait()
        except TimeoutError:
            _log.warning("%s: no partitions assigned yet; consuming once it joins", group)
        else:
            await self._prepare(consumer, topics, group)
            await member.preload(consumer.assignment())
        self._tasks.spawn(member.run(), f"{destination}/{group}")

    # -- what the group members use --

    async def send(self, topic: str, payload: bytes, headers: KafkaHeaders) -> None:
        """Send one record (a retry or a dead letter) and wait for the acknowledgement."""
        await self._send(topic, payload, headers)

    async def write_marker(self, group: str, marker: ProcessingMarker) -> None:
        """Write ``marker`` as the last record of its partition in the processing topic."""
        await (await self.queue_marker(group, marker))

    async def queue_marker(self, group: str, marker: ProcessingMarker) -> asyncio.Future[Any]:
        """Queue ``marker`` for writing; the future is done once the broker has it.

        Markers queued one after another land in that order (the producer sends a
        partition's batches in order), so the last one is the newest.
        """
        topic = processing_topic(marker.topic, group)
        producer = self._require_producer()
        written: asyncio.Future[Any] = await producer.send(
            topic, marker.encode(), partition=marker.partition
        )
        return written

    async def last_markers(
        self, group: str, partitions: Collection[tuple[str, int]]
    ) -> dict[tuple[str, int], ProcessingMarker]:
        """The last processing marker group ``group`` wrote for each ``(topic, partition)``.

        Partitions without one are left out. One read for all of them: the marker
        partitions' ends, then the record before each end.
        """
        from aiokafka import AIOKafkaConsumer, TopicPartition

        wanted = {TopicPartition(processing_topic(t, group), p): (t, p) for t, p in partitions}
        if not wanted:
            return {}
        last: dict[TopicPartition, ConsumerRecord[Any, Any]] = {}
        async with self._markers_lock:
            if self._markers is None:
                self._markers = AIOKafkaConsumer(
                    bootstrap_servers=self.bootstrap_servers,
                    enable_auto_commit=False,
                    fetch_max_wait_ms=_FETCH_WAIT_MS,
                )
                await self._markers.start()
            reader = self._markers
            reader.assign(list(wanted))
            ends = await reader.end_offsets(list(wanted))
            waiting = {tp for tp, end in ends.items() if end > 0}
            for tp in waiting:
                reader.seek(tp, ends[tp] - 1)
            async with asyncio.timeout(self.connect_timeout):
                while waiting:
                    fetched = await reader.getmany(*waiting, timeout_ms=200)
                    for tp, records in fetched.items():
                        if records:
                            last[tp] = records[-1]
                            waiting.discard(tp)
        found: dict[tuple[str, int], ProcessingMarker] = {}
        for tp, record in last.items():
            marker = decode_marker(record.value)
            if marker is not None and (marker.topic, marker.partition) == wanted[tp]:
                found[wanted[tp]] = marker
        return found

    # -- internals --

    def _require_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise not_open("KafkaBroker(servers)", closed=self._closed)
        return self._producer

    async def _send(self, topic: str, payload: bytes, headers: KafkaHeaders) -> None:
        self._topics.add(topic)
        await self._require_producer().send_and_wait(topic, bytes(payload), headers=headers)

    async def _prepare(self, consumer: AIOKafkaConsumer, topics: list[str], group: str) -> None:
        """Create the processing topics; commit the group's place where it has none yet.

        A partition without a committed offset starts at its end (``latest``) once its
        owner first fetches; committing that end now means records published after
        ``subscribe`` returns are the group's, whichever member owns the partition later.
        """
        partitions = {t: len(consumer.partitions_for_topic(t) or ()) for t in topics}
        await self._create_topics({processing_topic(t, group): n for t, n in partitions.items()})
        assigned = sorted(consumer.assignment())
        committed = await asyncio.gather(*(consumer.committed(tp) for tp in assigned))
        missing = [tp for tp, offset in zip(assigned, committed, strict=True) if offset is None]
        if missing:
            ends = await asyncio.gather(*(consumer.position(tp) for tp in missing))
            await consumer.commit(dict(zip(missing, ends, strict=True)))

    async def _create_topics(self, partitions: dict[str, int]) -> None:
        from aiokafka.admin import NewTopic

        wanted = [NewTopic(topic, n, 1) for topic, n in partitions.items() if n > 0]
        self._topics.update(partitions)
        if not wanted or self._admin is None:
            return
        response = await self._admin.create_topics(wanted)
        for topic, code, *_ in getattr(response, "topic_errors", ()):
            if code not in (0, _TOPIC_EXISTS):
                _log.warning("creating Kafka topic %s failed: error code %s", topic, code)
