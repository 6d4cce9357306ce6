"""One Kafka partition's progress in one consumer group: what to commit, what was handed out.

Kafka keeps no delivery count: a group only has a committed offset, and everything
from it on is fetched again by whoever owns the partition next. To count a delivery
that a lost consumer had started (RabbitMQ, Redis and JetStream count it), the
adapter writes a *processing marker* before it hands records to a handler: the
partition's committed offset and, for each record from there on that was handed to a
handler, how many times. The next owner reads the last marker, keeps the entries at or
after the committed offset, and adds them to each record's attempt.

``PartitionProgress`` is that bookkeeping for the owner of one partition, and
``ProcessingMarker`` its encoding; both are pure (the adapter does the I/O).

Example::

    >>> progress = PartitionProgress(committed=5, earlier={5: 1, 3: 2})
    >>> progress.start(5), progress.start(6)   # earlier starts: offset 5 was started once
    (1, 0)
    >>> progress.marker().started
    ((5, 2), (6, 1))
    >>> progress.finish(6); progress.frontier   # 5 is still running: commit stays at 5
    5
    >>> progress.finish(5); progress.frontier, progress.marker().started
    (7, ())
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

__all__ = ["PartitionProgress", "ProcessingMarker", "decode_marker"]


class ProcessingMarker(msgspec.Struct, frozen=True):
    """What one owner of ``topic``/``partition`` had handed to handlers, from ``committed`` on.

    ``started`` pairs an offset with how many times a handler was given that record
    (this owner's start included), ascending by offset.
    """

    topic: str
    partition: int
    committed: int
    started: tuple[tuple[int, int], ...] = ()

    def encode(self) -> bytes:
        """The marker as a record value (JSON)."""
        return msgspec.json.encode(self)


def decode_marker(value: bytes | None) -> ProcessingMarker | None:
    """The marker in a record value, or None when it is not one (never raises).

    Example::

        >>> decode_marker(b'{"topic":"orders","partition":0,"committed":5,"started":[[5,1]]}')
        ProcessingMarker(topic='orders', partition=0, committed=5, started=((5, 1),))
        >>> decode_marker(b"not json") is None
        True
    """
    if not value:
        return None
    try:
        return msgspec.json.decode(value, type=ProcessingMarker)
    except msgspec.DecodeError:
        return None


class PartitionProgress:
    """The owner's view of one partition: records in flight, the offset to commit, start counts.

    ``committed`` is the group's committed offset when the owner took the partition;
    ``earlier`` the start counts the previous owner's last marker recorded (entries
    before ``committed`` are finished work and are dropped). Mutable: one consume loop
    owns it.
    """

    def __init__(self, committed: int, earlier: Mapping[int, int] | None = None) -> None:
        self._fetched_to = committed  # one past the highest offset handed out so far
        self._starts = {o: n for o, n in (earlier or {}).items() if o >= committed and n > 0}
        self._in_flight: set[int] = set()

    def start(self, offset: int) -> int:
        """Record that the record at ``offset`` goes to a handler; return its earlier starts."""
        earlier = self._starts.get(offset, 0)
        self._starts[offset] = earlier + 1
        self._in_flight.add(offset)
        self._fetched_to = max(self._fetched_to, offset + 1)
        return earlier

    def finish(self, offset: int) -> None:
        """The record at ``offset`` is settled (acknowledged, retried or dead-lettered)."""
        self._in_flight.discard(offset)
        frontier = self.frontier
        self._starts = {o: n for o, n in self._starts.items() if o >= frontier}

    @property
    def frontier(self) -> int:
        """The offset to commit: the lowest record still in flight, else one past the last."""
        return min(self._in_flight, default=self._fetched_to)

    @property
    def in_flight(self) -> frozenset[int]:
        """Offsets handed to a handler and not yet settled."""
        return frozenset(self._in_flight)

    def marker(self, topic: str = "", partition: int = 0) -> ProcessingMarker:
        """The marker to write before handing out more: start counts from the frontier on."""
        frontier = self.frontier
        started = tuple(sorted((o, n) for o, n in self._starts.items() if o >= frontier))
        return ProcessingMarker(topic, partition, frontier, started)
