"""Concurrency slots shared by the adapters that fetch in batches (Redis, NATS)."""

from __future__ import annotations

import asyncio

__all__ = ["take_slots"]


async def take_slots(slots: asyncio.Semaphore) -> int:
    """Wait for one free slot, then take every other free one: how many were taken.

    The caller fetches that many messages and releases the slots it did not use.
    """
    await slots.acquire()
    taken = 1
    while not slots.locked():
        await slots.acquire()
        taken += 1
    return taken
