"""Decoder processes: OTLP requests turned into store rows beside the collector's writer.

One interpreter runs one thread of Python at a time, and decoding a span from OTLP
costs about as much CPU as the store spends writing it, so a collector that does both
in one process ingests at most half of what its store can take. A ``DecoderPool``
moves everything but the write into worker processes: there a request body is
inflated, decoded, validated and encoded into the store's own rows
(``PreparedWrites.row_encoder``); the collector process only reads bodies, inserts
ready rows and answers. A worker's result is a ``PreparedRequest``; a request the
worker refuses comes back as the same ``OtlpRefusal`` the in-process path raises.

A worker that dies (killed, out of memory) costs the requests it held a 503 with
``Retry-After``, which exporters retry; the pool is rebuilt for the next request.
Workers exit on their own when the collector process is gone, even after a SIGKILL.

Example::

    >>> import asyncio
    >>> from tracebraid.collector.otlp import encode_protobuf
    >>> from tracebraid.model import Span, SpanId, SpanKind, TraceId
    >>> from tracebraid.store import SqliteStore
    >>> store = SqliteStore(":memory:")
    >>> span = Span(TraceId("4bf92f3577b34da6a3ce929d0e0e4736"), SpanId("00f067aa0ba902b7"),
    ...             None, "reserve-inventory", SpanKind.CONSUMER, 1, 2, "inventory")
    >>> async def ingest() -> int:
    ...     pool = DecoderPool(1, store.row_encoder(), max_body_bytes=1 << 20)
    ...     try:
    ...         prepared = await pool.prepare(encode_protobuf([span]), "identity", "protobuf")
    ...     finally:
    ...         pool.close()
    ...     return store.write_prepared([prepared.batch]).inserted
    >>> asyncio.run(ingest())
    1
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence, Sized
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from tracebraid.collector.otlp_http import Encoding, OtlpRefusal, decode_body, inflate
from tracebraid.collector.validate import Rejection
from tracebraid.errors import ConfigurationError, InputError
from tracebraid.model import Span

__all__ = ["DecoderPool", "PreparedRequest", "default_decoders", "prepare_request"]

RowEncoder = Callable[[Sequence[Span]], Sized]
_PARENT_CHECK_S = 1.0


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """One request, decoded and validated: its valid spans as store rows, its refusals."""

    batch: Sized | None
    """The valid spans, encoded by the store's ``row_encoder``; None when there are none."""
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def span_count(self) -> int:
        """How many valid spans ``batch`` holds."""
        return 0 if self.batch is None else len(self.batch)

    @property
    def rejected_count(self) -> int:
        """How many spans were refused in total."""
        return sum(r.count for r in self.rejections)


def prepare_request(
    raw: bytes, coding: str, encoding: Encoding, max_body_bytes: int, encode: RowEncoder
) -> PreparedRequest:
    """Inflate, decode, validate and encode one request body (what a worker runs).

    Raises ``OtlpRefusal`` as the in-process path does: 413 for a body that inflates
    past ``max_body_bytes``, 400 for one that is not OTLP or whose spans the store
    cannot hold.
    """
    decoded = decode_body(inflate(raw, coding, limit=max_body_bytes), encoding)
    if not decoded.spans:
        return PreparedRequest(None, decoded.rejections)
    try:
        batch = encode(decoded.spans)
    except InputError as exc:
        raise OtlpRefusal(400, f"the store refused the spans: {exc}") from None
    return PreparedRequest(batch, decoded.rejections)


def default_decoders() -> int:
    """Decoder processes for this machine: one per CPU, at least one, at most eight."""
    return max(1, min(8, os.cpu_count() or 1))


class DecoderPool:
    """``workers`` processes that prepare requests; ``prepare`` awaits one request's result.

    Processes are started with ``spawn`` (the collector process has threads, which
    ``fork`` would copy mid-flight); ``start`` starts them all before the first request
    pays for it. Not bounded by itself: the collector admits a limited number of
    requests at a time (``Limits.max_unqueued_requests``).
    """

    def __init__(self, workers: int, encode: RowEncoder, *, max_body_bytes: int) -> None:
        if workers < 1:
            raise ConfigurationError(f"a decoder pool needs at least 1 worker, not {workers}")
        self.workers = workers
        self._encode = encode
        self._max_body_bytes = max_body_bytes
        self._executor = self._new_executor()
        self.restarts = 0
        self.pids: frozenset[int] = frozenset()
        """The worker processes ``start`` saw (after a restart, until the next ``start``)."""

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_started,
            initargs=(os.getpid(),),
        )

    async def start(self) -> None:
        """Start every worker process and wait until each has imported the decoders."""
        loop = asyncio.get_running_loop()
        pids = await asyncio.gather(
            *(loop.run_in_executor(self._executor, _warm) for _ in range(self.workers))
        )
        self.pids = frozenset(pids)

    async def prepare(self, raw: bytes, coding: str, encoding: Encoding) -> PreparedRequest:
        """The prepared request, or the ``OtlpRefusal`` its body deserves."""
        executor = self._executor
        try:
            future = executor.submit(
                prepare_request, raw, coding, encoding, self._max_body_bytes, self._encode
            )
            return await asyncio.wrap_future(future)
        except BrokenProcessPool:
            self._replace(executor)
            raise OtlpRefusal(
                503, "a decoder process stopped while decoding the request; retry", retry_after_s=1
            ) from None

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        # Several requests learn of one death at once: only the first replaces the pool.
        if self._executor is broken:
            self.restarts += 1
            self._executor = self._new_executor()
            broken.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the workers once the requests they hold are prepared."""
        self._executor.shutdown(wait=True, cancel_futures=True)


def _worker_started(parent_pid: int) -> None:
    # Ctrl-C reaches the whole process group; the collector decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # As in the collector process: decoding makes millions of short-lived acyclic objects.
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    threading.Thread(target=_exit_with, args=(parent_pid,), daemon=True).start()


def _exit_with(parent_pid: int) -> None:
    """Exit once the collector process is gone: a killed parent never shuts the pool down."""
    while os.getppid() == parent_pid:
        time.sleep(_PARENT_CHECK_S)
    os._exit(0)


def _warm() -> int:
    time.sleep(0.05)  # long enough that each warm-up task lands on its own worker
    return os.getpid()
