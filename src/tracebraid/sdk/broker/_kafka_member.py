"""One member of a Kafka consumer group: fetch, mark, process side by side, commit.

The loop takes the free processing slots, fetches that many records, writes each
partition's processing marker (``_kafka_progress``) and only then hands the records
to the handler; each settled record moves its partition's committed offset up to the
lowest record still in process. When a rebalance takes partitions away, the member
waits (up to ``drain`` seconds) for their records in process and commits them, so
records that finish in time are not delivered again. ``KafkaBroker.subscribe`` builds
one per subscription::

    member = GroupMember(broker, consumer, Subscription(...), drain=3.0)
    consumer.subscribe(topics, listener=member.listener)
    await consumer.start(); await member.joined.wait()
    tasks.spawn(member.run(), name)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiokafka import ConsumerRebalanceListener, TopicPartition

from tracebraid.sdk.broker._kafka_progress import PartitionProgress, ProcessingMarker
from tracebraid.sdk.broker._kafka_records import (
    delivery_from_record,
    lost_too_often,
    record_after,
)
from tracebraid.sdk.broker._settle import Acknowledge, Settlement, settle
from tracebraid.sdk.broker._slots import take_slots
from tracebraid.sdk.broker.base import Handler, RetryPolicy

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer, ConsumerRecord

    from tracebraid.sdk.broker.kafka import KafkaBroker

__all__ = ["GroupMember", "Subscription"]

_log = logging.getLogger("tracebraid.sdk.broker.kafka")


@dataclass(frozen=True, slots=True)
class Subscription:
    """What one ``subscribe`` asked for."""

    destination: str
    group: str
    handler: Handler
    retry: RetryPolicy
    concurrency: int
    delay: float


class GroupMember:
    """The consume loop of one subscription, and its partitions' progress."""

    def __init__(
        self,
        broker: KafkaBroker,
        consumer: AIOKafkaConsumer,
        subscription: Subscription,
        *,
        drain: float,
    ) -> None:
        self.broker = broker
        self.consumer = consumer
        self.subscription = subscription
        self.drain = drain
        self.joined = asyncio.Event()
        self.listener = _Rebalance(self)
        self._slots = asyncio.Semaphore(subscription.concurrency)
        self._progress: dict[TopicPartition, PartitionProgress] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._running: defaultdict[TopicPartition, set[asyncio.Task[None]]] = defaultdict(set)
        self._commit_lock = asyncio.Lock()
        self._commit_in_flight: asyncio.Future[None] | None = None

    async def run(self) -> None:
        """Fetch, mark and process until cancelled; cancelling stops the records in process."""
        try:
            await self._fetch_and_start()
        finally:
            running = [task for tasks in self._running.values() for task in tasks]
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            # A commit under way finishes before the consumer stops (else aiokafka's
            # own commit task outlives it and fails on the closed connection).
            pending = self._commit_in_flight
            if pending is not None:
                if not pending.done():
                    await asyncio.wait([pending], timeout=self.drain)
                if pending.done() and not pending.cancelled():
                    pending.exception()  # retrieved: a commit failing now changes nothing

    async def _fetch_and_start(self) -> None:
        while True:
            taken = await take_slots(self._slots)
            started: list[tuple[ConsumerRecord[Any, Any], int]] = []
            marked: asyncio.Future[Any] | None = None
            try:
                fetched = await self.consumer.getmany(timeout_ms=1000, max_records=taken)
                records = [r for batch in fetched.values() for r in batch]
                if records:
                    started, marked = await self._start(records)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a rebalance or reconnect: uncommitted records come back
                _log.warning("consuming %s failed: %s: %s", self._name, type(exc).__name__, exc)
                await asyncio.sleep(0.5)
            finally:
                for _ in range(taken - len(started)):
                    self._slots.release()
            for record, earlier in started:
                assert marked is not None
                tp = TopicPartition(record.topic, record.partition)
                work = self._process(record, earlier, marked)
                task = asyncio.create_task(work, name=self._name)
                self._running[tp].add(task)
                task.add_done_callback(self._running[tp].discard)

    # -- marking and processing --

    async def _start(
        self, records: list[ConsumerRecord[Any, Any]]
    ) -> tuple[list[tuple[ConsumerRecord[Any, Any], int]], asyncio.Future[Any]]:
        """Record each start and queue the partitions' markers.

        Returns each record with its earlier start count, and a future done once every
        marker is written (the records wait for it before their handler runs; the loop
        does not, so it fetches on while the broker takes the markers).
        """
        by_partition: defaultdict[TopicPartition, list[ConsumerRecord[Any, Any]]] = defaultdict(
            list
        )
        for record in records:
            by_partition[TopicPartition(record.topic, record.partition)].append(record)
        try:
            new = [tp for tp in by_partition if tp not in self._progress]
            taken_over = await asyncio.gather(
                *(self._take_over(tp, by_partition[tp][0].offset) for tp in new)
            )
            self._progress.update(zip(new, taken_over, strict=True))
            started = [
                (r, self._progress[tp].start(r.offset))
                for tp, rs in by_partition.items()
                for r in rs
            ]
            written = [
                await self.broker.queue_marker(
                    self.subscription.group, self._progress[tp].marker(tp.topic, tp.partition)
                )
                for tp in by_partition
            ]
        except Exception:
            self._fetch_again(by_partition)
            raise
        marked = asyncio.gather(*written)
        marked.add_done_callback(lambda done: self._unmarked(done, by_partition))
        return started, marked

    def _unmarked(
        self,
        done: asyncio.Future[Any],
        by_partition: dict[TopicPartition, list[ConsumerRecord[Any, Any]]],
    ) -> None:
        if not done.cancelled() and (error := done.exception()) is not None:
            _log.warning("%s: writing processing markers failed: %s", self._name, error)
            self._fetch_again(by_partition)

    def _fetch_again(
        self, by_partition: dict[TopicPartition, list[ConsumerRecord[Any, Any]]]
    ) -> None:
        """Unmarked records are not processed: forget their partitions, fetch them again."""
        for tp, rs in by_partition.items():
            self._progress.pop(tp, None)
            with contextlib.suppress(Exception):
                self.consumer.seek(tp, rs[0].offset)

    async def preload(self, partitions: Iterable[TopicPartition]) -> None:
        """Take over ``partitions`` before their first record arrives (those with a commit)."""
        todo = [tp for tp in partitions if tp not in self._progress]
        committed = await asyncio.gather(*(self.consumer.committed(tp) for tp in todo))
        pairs = zip(todo, committed, strict=True)
        known = {tp: offset for tp, offset in pairs if offset is not None}
        markers = await self.broker.last_markers(self.subscription.group, list(known))
        for tp, offset in known.items():
            if tp not in self._progress:
                self._progress[tp] = self._progress_from(tp, offset, markers.get(tp))

    async def _take_over(self, tp: TopicPartition, first_offset: int) -> PartitionProgress:
        """This partition's progress as the group left it: committed offset, last marker."""
        committed, markers = await asyncio.gather(
            self.consumer.committed(tp),
            self.broker.last_markers(self.subscription.group, [tp]),
        )
        start = first_offset if committed is None else committed
        return self._progress_from(tp, start, markers.get(tp))

    def _progress_from(
        self, tp: TopicPartition, committed: int, marker: ProcessingMarker | None
    ) -> PartitionProgress:
        self._committed[tp] = committed
        return PartitionProgress(committed, dict(marker.started) if marker else None)

    async def _process(
        self, record: ConsumerRecord[Any, Any], earlier: int, marked: asyncio.Future[Any]
    ) -> None:
        tp = TopicPartition(record.topic, record.partition)
        sub = self.subscription
        try:
            try:
                await asyncio.shield(marked)
            except Exception:  # not marked: fetched again (``_unmarked``), not processed here
                return
            delivery, not_before_ms = delivery_from_record(
                record, destination=sub.destination, group=sub.group, earlier_starts=earlier
            )
            settlement: Settlement | None = lost_too_often(delivery, sub.retry, earlier)
            if settlement is None:
                wait = sub.delay
                if not_before_ms is not None:
                    wait = max(wait, not_before_ms / 1000 - time.time())
                settlement = await settle(sub.handler, delivery, sub.retry, delay=wait)
            if not isinstance(settlement, Acknowledge):
                # Rounded up: the retry must not be due before the back-off has passed.
                now_ms = math.ceil(time.time() * 1000)
                topic, headers = record_after(delivery, settlement, now_ms=now_ms)
                await self.broker.send(topic, delivery.payload, headers)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the retry or dead letter was not sent: leave it uncommitted
            _log.warning("%s: settling %s failed: %s", self._name, record.offset, exc)
            return
        finally:
            self._slots.release()
        progress = self._progress.get(tp)
        if progress is not None:
            progress.finish(record.offset)
            await self._commit(tp)

    async def _commit(self, tp: TopicPartition) -> None:
        """Commit ``tp``'s frontier if it moved (one commit at a time per member)."""
        async with self._commit_lock:
            progress = self._progress.get(tp)
            if progress is None or progress.frontier == self._committed.get(tp):
                return
            frontier = progress.frontier
            committing = asyncio.ensure_future(self.consumer.commit({tp: frontier}))
            self._commit_in_flight = committing
            try:
                await asyncio.shield(committing)
            except Exception as exc:  # partition moved on: its next owner processes again
                _log.info("%s: commit of %s failed: %s", self._name, tp, exc)
                return
            self._committed[tp] = frontier

    # -- rebalances --

    async def revoked(self, partitions: set[TopicPartition]) -> None:
        """Let records in process on ``partitions`` finish (up to ``drain`` s), commit, forget."""
        running = [task for tp in partitions for task in self._running.get(tp, ())]
        if running:
            await asyncio.wait(running, timeout=self.drain)
        for tp in partitions:
            await self._commit(tp)
            self._progress.pop(tp, None)
            self._committed.pop(tp, None)

    @property
    def _name(self) -> str:
        return f"{self.subscription.destination}/{self.subscription.group}"


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """aiokafka's rebalance callbacks, passed to the member."""

    def __init__(self, member: GroupMember) -> None:
        self._member = member

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._member.revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        try:
            await self._member.preload(assigned)
        except Exception as exc:  # then each partition is taken over at its first record
            _log.info("preloading %s failed: %s: %s", assigned, type(exc).__name__, exc)
        self._member.joined.set()
