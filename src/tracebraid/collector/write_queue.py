"""The bounded write queue: one writer thread merges requests into large store transactions.

Every accepted request waits on a ``Future`` that the writer resolves only after the
transaction holding its spans has committed, which is what lets the collector
acknowledge a batch only once it is durable. The queue is bounded by spans held (queued
plus being written), so memory stays flat however fast clients send: past the bound
``submit`` raises ``QueueFull`` and the collector answers 503 with ``Retry-After``.

Merging small requests into one transaction is what makes SQLite fast here: the cost
of a commit is paid once per merged batch rather than once per exporter request.

Decoding and writing take turns (``turn``): both hold the GIL for most of their work,
and Python's sqlite3 releases it around every row, so run side by side the writer
waits for the GIL after each row while a decoder holds it (a convoy) and neither
gains. Taking turns in whole batches is faster, and much faster under overload.

Example::

    >>> from tracebraid.store import SqliteStore
    >>> queue = WriteQueue(SqliteStore(":memory:"), max_spans=1000)
    >>> queue.submit([]).result(timeout=5)
    WriteResult(inserted=0, duplicates=0)
    >>> queue.close()
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from tracebraid.errors import InputError, StoreError, TracebraidError
from tracebraid.model import Span
from tracebraid.store.base import SpanStore, WriteResult

__all__ = ["QueueClosed", "QueueFull", "QueueStats", "WriteQueue"]

_log = logging.getLogger(__name__)


class QueueFull(TracebraidError):
    """The write queue holds as many spans as it may; retry after ``retry_after_s``."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class QueueClosed(QueueFull):
    """The collector is shutting down and takes no more spans."""


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Counters since start: what was committed, what is waiting, what failed."""

    spans_committed: int
    spans_inserted: int
    spans_duplicate: int
    transactions: int
    failed_requests: int
    depth_spans: int
    capacity_spans: int


@dataclass(slots=True)
class _Request:
    spans: Sequence[Span]
    future: Future[WriteResult]


class WriteQueue:
    """Spans waiting for the store, bounded by ``max_spans``, written by one thread.

    ``batch_spans`` is the size a merged transaction aims for: requests are taken
    whole, in arrival order, until it is reached (a single larger request is written
    alone). ``submit`` is thread-safe and never blocks.
    """

    def __init__(
        self, store: SpanStore, *, max_spans: int = 200_000, batch_spans: int = 8192
    ) -> None:
        if max_spans < 1 or batch_spans < 1:
            raise ValueError("max_spans and batch_spans must be positive")
        self._store = store
        self._max_spans = max_spans
        self._batch_spans = batch_spans
        self._pending: deque[_Request] = deque()
        self._held = 0  # spans queued or being written: what bounds memory
        self._cond = threading.Condition()
        self.turn = threading.Lock()
        """Held by the writer around each store write; decoders take it around a decode."""
        self._closing = False
        self._thread: threading.Thread | None = None
        self._rate = 10_000.0  # spans/s of recent transactions, for Retry-After
        self._committed = self._inserted = self._duplicates = 0
        self._transactions = self._failed = 0

    # -- producer side -------------------------------------------------------------

    def submit(self, spans: Sequence[Span]) -> Future[WriteResult]:
        """Queue ``spans`` for one store transaction; the future resolves once committed.

        Raises ``QueueFull`` when the queue cannot take them now. The future fails
        with ``InputError`` if the store refuses the spans and ``StoreError`` if the
        store cannot be written (the spans are then not stored: the client may retry).
        """
        future: Future[WriteResult] = Future()
        with self._cond:
            if self._closing:
                raise QueueClosed("the collector is shutting down", 1)
            # A request larger than the whole queue is still taken when the queue is
            # empty, or it could never be stored at all; the body limit bounds it.
            if self._held and self._held + len(spans) > self._max_spans:
                raise QueueFull(
                    f"the write queue holds {self._held} of {self._max_spans} spans",
                    self.retry_after_s(),
                )
            self._held += len(spans)
            self._pending.append(_Request(spans, future))
            self._ensure_started()
            self._cond.notify()
        return future

    def full(self) -> bool:
        """True when no more spans are taken now (checked before reading a request body)."""
        return self._closing or self._held >= self._max_spans

    def retry_after_s(self) -> int:
        """Seconds a refused client should wait: the time to write what is held now."""
        return max(1, min(30, math.ceil(self._held / max(self._rate, 1.0))))

    def stats(self) -> QueueStats:
        """A snapshot of the counters."""
        with self._cond:
            return QueueStats(
                spans_committed=self._committed,
                spans_inserted=self._inserted,
                spans_duplicate=self._duplicates,
                transactions=self._transactions,
                failed_requests=self._failed,
                depth_spans=self._held,
                capacity_spans=self._max_spans,
            )

    @property
    def alive(self) -> bool:
        """False once the queue is closed or its writer thread has died."""
        thread = self._thread
        return not self._closing and (thread is None or thread.is_alive())

    def close(self, timeout_s: float = 60.0) -> None:
        """Stop taking spans, write everything already queued, and stop the writer."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)

    # -- writer side ---------------------------------------------------------------

    def _ensure_started(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tracebraid-writer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending:
                    return
                taken = [self._pending.popleft()]
                count = len(taken[0].spans)
                while self._pending and count + len(self._pending[0].spans) <= self._batch_spans:
                    request = self._pending.popleft()
                    taken.append(request)
                    count += len(request.spans)
            self._write(taken, count)

    def _write(self, taken: list[_Request], count: int) -> None:
        spans = taken[0].spans if len(taken) == 1 else [s for r in taken for s in r.spans]
        started = time.perf_counter()
        try:
            with self.turn:
                result = self._store.write(spans)
        except InputError as exc:
            if len(taken) == 1:
                self._fail(taken, count, exc)
            else:
                # One request's spans spoil the merged batch: write each alone so
                # only the request that holds them fails.
                for request in taken:
                    self._write([request], len(request.spans))
            return
        except StoreError as exc:
            _log.error("writing %d spans to the store failed: %s", count, exc)
            self._fail(taken, count, exc)
            return
        except Exception as exc:  # a store bug must not kill the writer
            _log.exception("writing %d spans to the store failed", count)
            self._fail(taken, count, StoreError(f"the store could not be written: {exc!r}"))
            return
        elapsed = time.perf_counter() - started
        if count and elapsed > 0:
            self._rate = 0.8 * self._rate + 0.2 * (count / elapsed)
        with self._cond:
            self._committed += count
            self._inserted += result.inserted
            self._duplicates += result.duplicates
            self._transactions += 1
            # Released before the waiters hear of it: an acknowledged span is never "queued".
            self._held -= count
        for request in taken:
            if not request.future.done():  # a cancelled waiter's spans are stored all the same
                request.future.set_result(result)

    def _fail(self, taken: list[_Request], count: int, exc: BaseException) -> None:
        with self._cond:
            self._failed += len(taken)
            self._held -= count
        for request in taken:
            if not request.future.done():
                request.future.set_exception(exc)
