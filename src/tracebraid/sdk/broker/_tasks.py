"""The tasks one adapter runs (members' loops, heartbeats, deliveries in process).

Each is started by name, a failure is logged with that name (nothing awaits these
tasks, so it would otherwise surface only as asyncio's "never retrieved"), and
``close`` cancels them all at once::

    tasks = Tasks(logging.getLogger(__name__))
    tasks.spawn(self._fetch(member), f"{destination}/{group}")
    ...
    await tasks.cancel()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

__all__ = ["Tasks"]


class Tasks:
    """Running tasks of one adapter; failures go to ``log`` as warnings."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._running: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run ``work`` as a task called ``name``, kept until it ends."""
        task = asyncio.create_task(work, name=name)
        self._running.add(task)
        task.add_done_callback(self._ended)
        return task

    async def cancel(self) -> None:
        """Cancel every running task and wait until all have ended."""
        tasks = list(self._running)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            # Handler failures are settled before this; this is the adapter's own (a lost
            # connection): a real broker hands the unacknowledged delivery out again.
            self._log.warning("%s failed: %s: %s", task.get_name(), type(error).__name__, error)
