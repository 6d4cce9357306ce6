"""Write turns between processes: an advisory lock on a file beside the database.

Processes writing one SQLite file (the collector's ingest processes) take turns
through ``FileTurn`` rather than SQLite's busy handler, which polls with sleeps that
grow to 100 ms. ``flock`` wakes the next waiter as soon as the lock is released, and
the kernel releases it when its holder dies, so a writer killed mid-transaction never
leaves the others waiting. A ``FileTurn`` pickles as its path: each process opens its
own descriptor. Where there is no ``flock`` (Windows), ``SUPPORTED`` is False and
stores are not shared between processes at all: the collector ingests in-process.
"""

from __future__ import annotations

import os
import threading
from types import TracebackType

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["SUPPORTED", "FileTurn"]

SUPPORTED = fcntl is not None
"""Whether this platform has ``flock``, which ``FileTurn`` needs."""


class FileTurn:
    """An exclusive turn among processes (and threads) locking the same ``path``.

    Example::

        >>> import tempfile
        >>> turn = FileTurn(f"{tempfile.mkdtemp()}/spans.db-writer.lock")
        >>> with turn:
        ...     pass
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        # flock locks belong to the open file, shared by this process's threads.
        self._threads = threading.Lock()

    def __enter__(self) -> None:
        if fcntl is None:  # pragma: no cover - Windows
            raise RuntimeError("FileTurn needs fcntl.flock, which this platform lacks")
        self._threads.acquire()
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if self._fd is not None and fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def __getstate__(self) -> str:
        return self.path

    def __setstate__(self, path: str) -> None:
        self.__init__(path)  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"FileTurn({self.path!r})"
