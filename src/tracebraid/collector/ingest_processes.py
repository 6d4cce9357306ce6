"""Ingest processes: OTLP requests decoded and stored by worker processes beside the collector.

One interpreter runs one thread of Python at a time, and decoding a span from OTLP
costs about as much CPU as the store spends writing it, so a collector doing both in
one process ingests at most half of what its store can take (measured: about a
third). ``IngestProcesses`` runs both in worker processes: each opens the store
itself (``SharedWrites.reopener``), inflates, decodes and validates a request, writes
its valid spans in one transaction and answers with what it stored. The stores it
opens take turns writing (a lock on a file, ``store._turns``), so a write never waits
in SQLite's busy handler.
The collector process only reads bodies, hands them over and answers, and still
acknowledges a request only once its spans are committed.

Why the workers write rather than hand rows back to one writer: a request's rows are
bigger than its body, and moving them through a pipe and unpickling them cost the
collector process about as much as inserting them (profiled with py-spy: the
collector process then bounded the whole pipeline).

A worker that dies (killed, out of memory) costs the requests it held a 503 with
``Retry-After``, which exporters retry; the pool is rebuilt for the next request.
Workers exit on their own once the collector process is gone, even after a SIGKILL.

Example::

    >>> import asyncio, tempfile
    >>> from tracebraid.collector.otlp import encode_protobuf
    >>> from tracebraid.model import Span, SpanId, SpanKind, TraceId
    >>> from tracebraid.store import SqliteStore
    >>> store = SqliteStore(f"{tempfile.mkdtemp()}/spans.db")
    >>> span = Span(TraceId("4bf92f3577b34da6a3ce929d0e0e4736"), SpanId("00f067aa0ba902b7"),
    ...             None, "reserve-inventory", SpanKind.CONSUMER, 1, 2, "inventory")
    >>> async def ingest() -> int:
    ...     processes = IngestProcesses(1, store.reopener(), max_body_bytes=1 << 20)
    ...     try:
    ...         ingested = await processes.ingest(encode_protobuf([span]), "identity", "protobuf")
    ...     finally:
    ...         processes.close()
    ...     return ingested.result.inserted
    >>> asyncio.run(ingest())
    1
    >>> store.span_count()
    1
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing.util import Finalize

from tracebraid.collector.otlp_http import (
    Encoding,
    OtlpRefusal,
    decode_body_slices,
    inflate,
    store_refusal,
)
from tracebraid.collector.validate import Decoded, Rejection
from tracebraid.errors import ConfigurationError, InputError, StoreError
from tracebraid.model import Span
from tracebraid.store.base import SpanStore, StoreReopener, WriteResult

__all__ = ["IngestProcesses", "IngestStats", "Ingested", "default_processes", "ingest_request"]

_log = logging.getLogger(__name__)
_PARENT_CHECK_S = 1.0
_NOTHING = WriteResult(inserted=0, duplicates=0)

# The store a worker process writes to, opened once by its initializer.
_worker_store: SpanStore | None = None


@dataclass(frozen=True, slots=True)
class Ingested:
    """One request, decoded and committed: spans stored, spans refused and why.

    What crosses back from a worker is this small: counts and at most
    ``MAX_EXAMPLES`` rejections, never anything per span.
    """

    accepted: int
    rejections: list[Rejection] = field(default_factory=list)
    result: WriteResult = _NOTHING
    rejected_count: int = 0


@dataclass(frozen=True, slots=True)
class IngestStats:
    """Counters since start, as the write queue keeps them for in-process ingest."""

    spans_committed: int
    spans_inserted: int
    spans_duplicate: int
    transactions: int
    failed_requests: int
    restarts: int


def ingest_request(
    store: SpanStore, raw: bytes, coding: str, encoding: Encoding, max_body_bytes: int
) -> Ingested:
    """Inflate, decode, validate and store one request body (what a worker runs).

    Raises ``OtlpRefusal`` as the in-process path answers: 413 for a body that
    inflates past ``max_body_bytes``, 400 for one that is not OTLP or whose spans the
    store cannot hold, 503 when the store cannot be written now.
    """
    body = inflate(raw, coding, limit=max_body_bytes)
    del raw
    # A slice at a time, each stored before the next is decoded: what a worker holds is
    # the body and one slice's spans (otlp_slices). A failure after some slices were
    # stored answers as if none were: the client's retry stores the rest, and the
    # store's idempotence makes the stored ones duplicates, not copies.
    summary = Decoded()
    accepted = inserted = duplicates = 0
    for decoded in decode_body_slices(body, encoding):
        summary.extend(
            Decoded(
                rejections=decoded.rejections,
                rejected_count=decoded.rejected_count,
                omitted=decoded.omitted,
            )
        )
        if not decoded.spans:
            continue
        result = _write(store, decoded.spans)
        accepted += len(decoded.spans)
        inserted += result.inserted
        duplicates += result.duplicates
    if not accepted:
        return Ingested(0, summary.rejections, _NOTHING, summary.rejected_count)
    result = WriteResult(inserted=inserted, duplicates=duplicates)
    return Ingested(accepted, summary.rejections, result, summary.rejected_count)


def _write(store: SpanStore, spans: list[Span]) -> WriteResult:
    try:
        return store.write(spans)
    except (InputError, StoreError) as exc:
        raise store_refusal(exc) from None
    except Exception as exc:  # a store bug must cost a retry, not a 500
        _log.exception("writing %d spans to the store failed", len(spans))
        raise store_refusal(StoreError(f"the store could not be written: {exc!r}")) from None


def default_processes() -> int:
    """Ingest processes for this machine: one per CPU, at least one, at most eight."""
    return max(1, min(8, os.cpu_count() or 1))


class IngestProcesses:
    """``processes`` workers that decode and store requests; ``ingest`` awaits one.

    Workers are started with ``spawn`` (the collector process has threads, which
    ``fork`` would copy mid-flight); ``start`` starts them all before the first request
    pays for it. Not bounded by itself: the collector admits a limited number of
    requests at a time (``Limits.max_unqueued_requests``).
    """

    def __init__(self, processes: int, reopen: StoreReopener, *, max_body_bytes: int) -> None:
        if processes < 1:
            raise ConfigurationError(f"ingest needs at least 1 process, not {processes}")
        self.processes = processes
        self._reopen = reopen
        self._max_body_bytes = max_body_bytes
        self._context = multiprocessing.get_context("spawn")
        self._executor = self._new_executor()
        self.pids: frozenset[int] = frozenset()
        """The worker processes ``start`` saw (until a restart replaces them)."""
        self._lock = threading.Lock()
        self._committed = self._inserted = self._duplicates = 0
        self._transactions = self._failed = self._restarts = 0

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.processes,
            mp_context=self._context,
            initializer=_worker_started,
            initargs=(os.getpid(), self._reopen),
        )

    async def start(self, timeout_s: float = 60.0) -> None:
        """Start every worker and wait until each has opened the store."""
        loop = asyncio.get_running_loop()
        seen: set[int] = set()
        deadline = loop.time() + timeout_s
        # A worker that is up first may take several warm-up tasks while another still
        # starts: go round until every worker has answered once.
        while len(seen) < self.processes and loop.time() < deadline:
            pids = await asyncio.gather(
                *(loop.run_in_executor(self._executor, _warm) for _ in range(self.processes))
            )
            seen.update(pids)
        self.pids = frozenset(seen)

    async def ingest(self, raw: bytes, coding: str, encoding: Encoding) -> Ingested:
        """Decode and commit one request body; the ``OtlpRefusal`` it deserves otherwise."""
        executor = self._executor
        try:
            future = executor.submit(_ingest_in_worker, raw, coding, encoding, self._max_body_bytes)
            ingested: Ingested = await asyncio.wrap_future(future)
        except BrokenProcessPool:
            self._replace(executor)
            self._count_failure()
            raise OtlpRefusal(
                503, "an ingest process stopped while storing the request; retry", retry_after_s=1
            ) from None
        except OtlpRefusal as refusal:
            if refusal.status == 503:
                self._count_failure()
            raise
        if ingested.accepted:
            with self._lock:
                self._committed += ingested.accepted
                self._inserted += ingested.result.inserted
                self._duplicates += ingested.result.duplicates
                self._transactions += 1
        return ingested

    def _count_failure(self) -> None:
        with self._lock:
            self._failed += 1

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        # Several requests learn of one death at once: only the first replaces the pool.
        with self._lock:
            if self._executor is not broken:
                return
            self._restarts += 1
            self._executor = self._new_executor()
        _log.error("an ingest process died; started a new pool of %d", self.processes)
        broken.shutdown(wait=False, cancel_futures=True)

    def stats(self) -> IngestStats:
        """A snapshot of the counters."""
        with self._lock:
            return IngestStats(
                spans_committed=self._committed,
                spans_inserted=self._inserted,
                spans_duplicate=self._duplicates,
                transactions=self._transactions,
                failed_requests=self._failed,
                restarts=self._restarts,
            )

    def close(self) -> None:
        """Stop the workers once the requests they hold are stored."""
        self._executor.shutdown(wait=True, cancel_futures=True)


def _worker_started(parent_pid: int, reopen: StoreReopener) -> None:
    global _worker_store
    # Ctrl-C reaches the whole process group; the collector decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # As in the collector process: decoding makes millions of short-lived acyclic objects.
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    threading.Thread(target=_exit_with, args=(parent_pid,), daemon=True).start()
    _worker_store = store = reopen()
    Finalize(store, store.close, exitpriority=10)


def _ingest_in_worker(raw: bytes, coding: str, encoding: Encoding, limit: int) -> Ingested:
    assert _worker_store is not None, "the ingest process initializer opens the store"
    return ingest_request(_worker_store, raw, coding, encoding, limit)


def _exit_with(parent_pid: int) -> None:
    """Exit once the collector process is gone: a killed parent never shuts the pool down."""
    while os.getppid() == parent_pid:
        time.sleep(_PARENT_CHECK_S)
    os._exit(0)


def _warm() -> int:
    time.sleep(0.05)  # long enough that each warm-up task lands on its own worker
    return os.getpid()
