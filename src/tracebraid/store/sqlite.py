"""The embedded span store: one SQLite file, zero set-up, readers alongside the writer.

Durability: WAL with ``synchronous=NORMAL``. A commit appends the transaction to the
WAL file with ``write()`` before ``write`` returns, so a process that dies (SIGKILL,
the collector's crash test) loses nothing it acknowledged; only a machine crash or
power loss can roll back the last transactions before a checkpoint. ``FULL`` adds
an fsync per batch to cover that too (``synchronous="FULL"``, or ``?synchronous=FULL``
in the store URL): cheap on this project's machines (``bench/store_sqlite.py``
prints both), but on a disk with slow fsync it caps writes at fsyncs/s x batch size.

Concurrency: writes are serialised by a lock on one writer connection (and by
SQLite's own lock across processes); reads take a connection from a small pool, so
threads read in parallel with each other and with the writer, and other processes
can read the same file while this one writes.

Example::

    >>> store = SqliteStore(":memory:")
    >>> store.write([]).inserted
    0
    >>> store.span_count()
    0
    >>> store.close()
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import sqlite3
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Literal, TypeAlias

from tracebraid.errors import ConfigurationError, InputError, StoreError
from tracebraid.model import CorrelationId, EventId, Span, SpanId, TraceId
from tracebraid.store import _rows
from tracebraid.store import _turns as turns
from tracebraid.store._checkpoint import Checkpointer
from tracebraid.store._insert import insert_batch
from tracebraid.store._lookups import (
    SUMMARY_SELECT,
    json_keys,
    trace_ids_statement,
    trace_summaries,
    traces_found,
)
from tracebraid.store._schema import ensure_schema
from tracebraid.store._turns import FileTurn
from tracebraid.store.base import StoreReopener, TraceSummary, WriteResult

__all__ = ["SqlParams", "SqliteStore"]

SqlParams: TypeAlias = Sequence[Any] | Mapping[str, Any]
"""Values for a statement's ``?`` (a sequence) or ``:name`` (a mapping) placeholders."""

_SELECT = f"SELECT {', '.join(_rows.SPAN_SELECT_COLUMNS)} FROM spans"
_SELECT_S = f"SELECT {', '.join('s.' + c for c in _rows.SPAN_SELECT_COLUMNS)} FROM spans s"
_ID_PAGE = 1000
_RESOURCE_CACHE_LIMIT = 10_000
_SQLITE_NOTADB = 26
# The writer checkpoints only if the checkpoint thread falls this far behind (40 MiB).
_BACKSTOP_CHECKPOINT_PAGES = 10_000


class SqliteStore:
    """A ``SpanStore`` in one SQLite file (or ``":memory:"``).

    ``busy_timeout_s`` is how long a write waits for another process's write lock
    before raising ``StoreError``. ``write_turn``, when given, is held around every
    write transaction: a lock shared by processes writing the same file (the
    collector's ingest processes), so they queue on it instead of on SQLite's
    busy handler, which polls with sleeps of up to 100 ms.

    Example::

        >>> from tracebraid.model import Span, SpanId, SpanKind, TraceId
        >>> store = SqliteStore(":memory:")
        >>> span = Span(TraceId("4bf92f3577b34da6a3ce929d0e0e4736"),
        ...     SpanId("00f067aa0ba902b7"), None, "POST /orders", SpanKind.SERVER,
        ...     1, 2, "checkout-api")
        >>> store.write([span, span])
        WriteResult(inserted=1, duplicates=1)
        >>> [s.name for s in store.spans_of_trace(span.trace_id)]
        ['POST /orders']
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        busy_timeout_s: float = 30.0,
        write_turn: AbstractContextManager[object] | None = None,
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ConfigurationError(f"synchronous must be 'NORMAL' or 'FULL', not {synchronous!r}")
        self._memory = str(path) == ":memory:"
        self._where = ":memory:" if self._memory else str(Path(path).resolve())
        self._timeout = busy_timeout_s
        self._synchronous = synchronous
        self._closed = False
        self._write_lock = threading.Lock()
        self._write_turn = write_turn if write_turn is not None else contextlib.nullcontext()
        self._pool: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        # Orders close() against readers returning to the pool.
        self._closing_lock = threading.Lock()
        self._resource_keys: dict[bytes, int] = {}  # encoded resource -> key, committed
        self._resources: _rows.Resources = {}  # key -> decoded resource, for reads
        if not self._memory:
            try:
                Path(self._where).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the directory for {self._where}: {exc}") from exc
        self._checkpointer: Checkpointer | None = None
        self._writer = self._connect(writer=True)
        try:
            ensure_schema(self._writer, self._where)
            if not self._memory:
                self._enable_wal()
                self._checkpointer = Checkpointer(self._checkpoint_connection)
        except StoreError:
            self._writer.close()
            raise

    # -- connections ---------------------------------------------------------------

    def _connect(self, *, writer: bool) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self._where,
                timeout=self._timeout,
                isolation_level=None,  # autocommit; transactions are explicit
                check_same_thread=False,  # guarded by the write lock or the pool
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store {self._where}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute("PRAGMA temp_store = MEMORY")
            if writer:
                conn.execute("PRAGMA cache_size = -65536")  # 64 MiB: index pages stay hot
            elif not self._memory:
                conn.execute("PRAGMA query_only = ON")
        except sqlite3.Error as exc:
            conn.close()
            if getattr(exc, "sqlite_errorcode", None) == _SQLITE_NOTADB:
                raise StoreError(
                    f"{self._where} is not a tracebraid store ({exc}); "
                    "point --store at a new file or an existing tracebraid store"
                ) from exc
            raise StoreError(f"cannot open the store {self._where}: {exc}") from exc
        return conn

    def _checkpoint_connection(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._where, timeout=self._timeout, isolation_level=None)
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        return conn

    def _enable_wal(self) -> None:
        try:
            mode = self._writer.execute("PRAGMA journal_mode").fetchone()[0]
            if mode != "wal":
                mode = self._writer.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            self._writer.execute(f"PRAGMA wal_autocheckpoint = {_BACKSTOP_CHECKPOINT_PAGES}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot switch {self._where} to WAL mode: {exc}") from exc
        if mode != "wal":
            raise StoreError(
                f"{self._where} cannot use WAL mode (journal_mode is {mode!r}); "
                "put the store on a local file system"
            )

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise StoreError(f"the store {self._where} is closed")
        if self._memory:
            # Every connection to ":memory:" is a separate database: share the writer's,
            # read-only while the read runs, as the pool's connections always are.
            with self._write_lock:
                if self._closed:  # closed while this read waited for the lock
                    raise StoreError(f"the store {self._where} is closed")
                self._writer.execute("PRAGMA query_only = ON")
                try:
                    yield self._writer
                finally:
                    self._writer.execute("PRAGMA query_only = OFF")
            return
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            conn = self._connect(writer=False)
        try:
            yield conn
        finally:
            # A connection in use is never closed under its reader (that crashes the
            # sqlite3 module): ``close`` closes idle ones, and a reader that finishes
            # after ``close`` closes its own.
            with self._closing_lock:
                closed = self.closed
                if not closed:
                    self._pool.put(conn)
            if closed:
                conn.close()

    def query(self, sql: str, params: SqlParams = ()) -> list[tuple[Any, ...]]:
        """Run one read-only SQL statement over the store's tables; its rows.

        The hook for questions pushed down into SQLite (``SqliteAggregates``, trace
        search), over the schema ``tracebraid.store._schema`` describes. ``params``
        binds ``?`` (a sequence) or ``:name`` (a mapping) placeholders. The statement
        runs on a read-only connection, so a write raises ``StoreError`` like any
        statement SQLite rejects.

        Example::

            >>> store = SqliteStore(":memory:")
            >>> store.query("SELECT count(*) FROM traces WHERE start_ns >= ?", (0,))
            [(0,)]
            >>> store.close()
        """
        with self._reading() as conn:
            try:
                return conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the store {self._where}: {exc}") from exc

    def _spans(self, sql: str, params: SqlParams = ()) -> list[Span]:
        rows = self.query(sql, params)
        resources = self._resources
        needed = {row[11] for row in rows}
        missing = needed - resources.keys()
        if missing:
            loaded = self._fetch_resources(missing)
            if len(resources) + len(loaded) > _RESOURCE_CACHE_LIMIT:
                resources = {key: resources[key] for key in needed - missing}
            # Copy on write: a thread reading the old cache keeps a consistent one.
            resources = {**resources, **loaded}
            self._resources = resources
        return [_rows.span_from_row(row, resources) for row in rows]

    def _fetch_resources(self, keys: Collection[int]) -> _rows.Resources:
        found = self.query(
            f"SELECT id, body FROM resources WHERE id IN ({', '.join('?' * len(keys))})",
            tuple(keys),
        )
        if len(found) < len(keys):
            raise StoreError(
                f"the store {self._where} is damaged: spans refer to resources it does not "
                "hold; copy what it still answers into a new store"
            )
        return {key: _rows.decode_attributes(body) for key, body in found}

    # -- writing -------------------------------------------------------------------

    def write(self, spans: Sequence[Span]) -> WriteResult:
        """Store ``spans`` in one transaction, committed before returning.

        A span already stored (same trace and span ID) is skipped and counted as a
        duplicate. A span that cannot be stored raises ``InputError`` and the whole
        batch is left out, so a caller never has to guess which part was kept.
        """
        if not spans:
            return WriteResult(inserted=0, duplicates=0)
        batch = _rows.encode_batch(spans, self._resource_keys)
        with self._write_turn, self._write_lock:
            if self._closed:
                raise StoreError(f"the store {self._where} is closed")
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    inserted = insert_batch(conn, batch)
                    conn.execute("COMMIT")
                    if self._checkpointer is not None:
                        self._checkpointer.nudge()
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except (UnicodeEncodeError, OverflowError) as exc:
                raise InputError(
                    f"cannot store this batch: {_rows.unstorable_value(batch.spans)}; "
                    "nothing of the batch was stored"
                ) from exc
            except sqlite3.Error as exc:
                raise StoreError(
                    f"cannot write to the store {self._where}: {exc}; nothing of the batch "
                    "was stored, so the same batch can be retried"
                ) from exc
            # Only now are this batch's resources known to be stored.
            if len(self._resource_keys) > _RESOURCE_CACHE_LIMIT:
                self._resource_keys = {}
            self._resource_keys.update(batch.resource_keys)
        return WriteResult(inserted=inserted, duplicates=len(spans) - inserted)

    def reopener(self) -> StoreReopener | None:
        """Opens this file again, in another process, with the same settings (``SharedWrites``).

        The stores it opens take turns writing through a lock on the file
        ``<database>-writer.lock``. None for a store in memory, which no other
        process can see, and where the platform has no ``flock``.

        >>> SqliteStore(":memory:").reopener() is None
        True
        """
        if self._memory or not turns.SUPPORTED:
            return None
        return functools.partial(
            SqliteStore,
            self._where,
            synchronous=self._synchronous,
            busy_timeout_s=self._timeout,
            write_turn=FileTurn(f"{self._where}-writer.lock"),
        )

    # -- reading -------------------------------------------------------------------

    def spans_of_trace(self, trace_id: TraceId) -> list[Span]:
        """Every span of one trace, in start order."""
        return self._spans(f"{_SELECT} WHERE trace_id = ? ORDER BY start_ns, span_id", (trace_id,))

    def spans_of_traces(self, trace_ids: Collection[TraceId]) -> list[Span]:
        """Every span of the given traces, in start order: one statement for any count."""
        if not trace_ids:
            return []
        return self._spans(
            f"{_SELECT} WHERE trace_id IN (SELECT value FROM json_each(?)) "
            "ORDER BY start_ns, trace_id, span_id",
            (json_keys(trace_ids),),
        )

    def spans_of_correlation(self, correlation_id: CorrelationId) -> list[Span]:
        """Every span carrying this correlation ID, in start order."""
        return self._spans(
            f"{_SELECT} WHERE trace_id IN "
            "(SELECT trace_id FROM trace_correlations WHERE correlation_id = ?1) "
            "AND correlation_id = ?1 ORDER BY start_ns, trace_id, span_id",
            (correlation_id,),
        )

    def spans_by_event(self, event_id: EventId) -> list[Span]:
        """Every span whose event ID (``messaging.message.id``) or causation ID is ``event_id``."""
        return self.spans_by_events((event_id,))

    def spans_by_events(self, event_ids: Collection[EventId]) -> list[Span]:
        """Every span whose event ID (any of its strong message identities) or causation
        ID is one of ``event_ids``, in start order: one statement for any count."""
        if not event_ids:
            return []
        return self._spans(
            f"{_SELECT} WHERE event_id IN (SELECT value FROM json_each(?1)) "
            "OR causation_id IN (SELECT value FROM json_each(?1)) "
            "OR (trace_id, span_id) IN (SELECT trace_id, span_id FROM message_identities "
            "WHERE value IN (SELECT value FROM json_each(?1))) "
            "ORDER BY start_ns, trace_id, span_id",
            (json_keys(event_ids),),
        )

    def spans_linking_to(self, trace_id: TraceId, span_id: SpanId) -> list[Span]:
        """Every span holding a link to (``trace_id``, ``span_id``), in start order."""
        spans = self._spans(
            f"{_SELECT_S} JOIN links l ON s.trace_id = l.trace_id AND s.span_id = l.span_id "
            "WHERE l.linked_trace_id = ? AND l.linked_span_id = ? "
            "ORDER BY s.start_ns, s.trace_id, s.span_id",
            (trace_id, span_id),
        )
        # A replay of a span with different links adds index rows the stored span lacks.
        return [
            s
            for s in spans
            if any(k.trace_id == trace_id and k.span_id == span_id for k in s.links)
        ]

    def trace_ids_with(
        self,
        *,
        correlation_ids: Collection[CorrelationId] = (),
        event_ids: Collection[EventId] = (),
        link_targets: Collection[tuple[TraceId, SpanId]] = (),
    ) -> set[TraceId]:
        """The traces holding a span that carries one of ``correlation_ids``, whose event
        or causation ID is one of ``event_ids``, or that links to one of ``link_targets``:
        one statement for any number of keys, each an index search."""
        sql, params = trace_ids_statement(
            correlation_ids=correlation_ids, event_ids=event_ids, link_targets=link_targets
        )
        return traces_found(self.query(sql, params)) if sql else set()

    def recent_traces(self, limit: int = 50, before_ns: int | None = None) -> list[TraceSummary]:
        """The most recently started traces, newest first, started before ``before_ns``.

        To page, pass the last summary's ``start_ns`` as the next ``before_ns``.
        """
        if before_ns is None:
            before_ns = 2**63 - 1
        rows = self.query(
            f"{SUMMARY_SELECT} WHERE t.start_ns < ? ORDER BY t.start_ns DESC LIMIT ?",
            (before_ns, max(0, limit)),
        )
        return trace_summaries(self.query, rows)

    def iter_trace_ids(self) -> Iterator[TraceId]:
        """Every stored trace ID in ID order, fetched a page at a time.

        No read transaction stays open between pages, so a long pass never holds
        back the writer's checkpoints.
        """
        after = ""
        while True:
            page = self.query(
                "SELECT trace_id FROM traces WHERE trace_id > ? ORDER BY trace_id LIMIT ?",
                (after, _ID_PAGE),
            )
            for (trace_id,) in page:
                yield TraceId(trace_id)
            if len(page) < _ID_PAGE:
                return
            after = page[-1][0]

    def span_count(self) -> int:
        """How many spans are stored."""
        return int(self.query("SELECT value FROM counters WHERE name = 'spans'")[0][0])

    def close(self) -> None:
        """Close every connection; later calls raise ``StoreError``. Closing twice is a no-op."""
        if self._checkpointer is not None:
            self._checkpointer.stop()
        with self._write_lock:
            with self._closing_lock:
                if self._closed:
                    return
                self._closed = True
            idle: list[sqlite3.Connection] = [self._writer]
            while True:
                try:
                    idle.append(self._pool.get_nowait())
                except queue.Empty:
                    break
            for conn in idle:
                conn.close()

    @property
    def closed(self) -> bool:
        """True once ``close`` was called."""
        return self._closed

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqliteStore({self._where!r})"
