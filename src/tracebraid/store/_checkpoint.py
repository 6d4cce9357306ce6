"""WAL checkpoints on a thread of their own, off the write path.

In WAL mode a commit appends pages to the WAL; a checkpoint copies them back into
the database file and syncs it. SQLite normally checkpoints inside the commit that
crosses ``wal_autocheckpoint``, so every few batches one ``write`` (and the client
waiting for its acknowledgement) pays for it. Here a thread runs passive checkpoints,
which never block the writer or readers, at most every ``interval_s`` while writes
arrive; the writer keeps a high ``wal_autocheckpoint`` as a backstop in case this
thread falls behind.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

__all__ = ["Checkpointer"]

_log = logging.getLogger(__name__)


class Checkpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` after writes, at most every ``interval_s``."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], interval_s: float = 0.2):
        self._connect = connect
        self._interval = interval_s
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def nudge(self) -> None:
        """Note that a write committed; starts the thread on first use."""
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._stopping.is_set():
                    self._thread = threading.Thread(
                        target=self._run, name="tracebraid-sqlite-checkpoint", daemon=True
                    )
                    self._thread.start()
        self._wake.set()

    def stop(self) -> None:
        """Run a last checkpoint and end the thread."""
        with self._lock:
            self._stopping.set()
            self._wake.set()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        try:
            conn = self._connect()
        except sqlite3.Error as exc:
            _log.warning("cannot open a connection for WAL checkpoints: %s", exc)
            return
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                self._checkpoint(conn)
                if self._stopping.is_set() or self._stopping.wait(self._interval):
                    self._checkpoint(conn)
                    return
        finally:
            conn.close()

    @staticmethod
    def _checkpoint(conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            # Not fatal: the writer's own autocheckpoint still bounds the WAL.
            _log.warning("WAL checkpoint failed: %s", exc)
