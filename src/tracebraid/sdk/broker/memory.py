"""The in-process asyncio broker: the ``Broker`` contract without a server, for demos and tests.

Topics fan out to consumer groups (each group gets every message published
after it subscribed; members of a group compete for them), delivery is at
least once, a failed delivery comes back after its back-off with its delivery
count incremented, and after the last failed attempt it moves to
``<destination>.dlq``. ``join`` waits until the system is idle: nothing queued,
held back or being processed.

Example::

    >>> import asyncio
    >>> async def main() -> list[int]:
    ...     counts: list[int] = []
    ...     async with InMemoryBroker() as broker:
    ...         async def flaky(delivery: Delivery) -> None:
    ...             counts.append(delivery.delivery_count)
    ...             if delivery.delivery_count < 3:
    ...                 raise TimeoutError("warehouse API timed out")
    ...         await broker.subscribe("inventory", "send-warehouse-webhook", flaky)
    ...         await broker.publish("inventory", b"{}", {}, message_id="evt_1")
    ...         await broker.join()
    ...     return counts
    >>> asyncio.run(main())
    [1, 2, 3]
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from tracebraid.errors import ConfigurationError
from tracebraid.sdk.broker._adapter import (
    BrokerAdapter,
    check_subscription,
    closed_for_good,
    not_open,
)
from tracebraid.sdk.broker._settle import DeadLetter, Redelivery, settle
from tracebraid.sdk.broker._tasks import Tasks
from tracebraid.sdk.broker.base import (
    DEFAULT_RETRY,
    Delivery,
    Handler,
    Headers,
    RetryPolicy,
)

__all__ = ["InMemoryBroker"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Message:
    message_id: str
    payload: bytes
    headers: Headers
    delivery_count: int = 1


@dataclass(slots=True)
class _Group:
    destination: str
    name: str
    delay: float
    queue: asyncio.Queue[_Message] = field(default_factory=asyncio.Queue)
    # Messages queued, held back (delay or back-off) or being processed: 0 means idle.
    outstanding: int = 0


class InMemoryBroker(BrokerAdapter):
    """An asyncio broker living in this process; implements ``tracebraid.sdk.broker.Broker``."""

    def __init__(self) -> None:
        self._topics: dict[str, dict[str, _Group]] = {}
        self._tasks = Tasks(_log)
        self._timers: set[asyncio.TimerHandle] = set()
        self._changed = asyncio.Event()
        self._dead_letters: list[Delivery] = []
        self._started = False
        self._closed = False

    @property
    def system(self) -> str:
        """``memory``: the ``messaging.system`` value for spans over this broker."""
        return "memory"

    @property
    def dead_letters(self) -> tuple[Delivery, ...]:
        """Every message dead-lettered so far, as the failing group's last delivery."""
        return tuple(self._dead_letters)

    async def start(self) -> None:
        """Open the broker; calling it twice is harmless."""
        if self._closed:
            raise closed_for_good("InMemoryBroker")
        self._started = True

    async def close(self) -> None:
        """Cancel every consumer, in-flight handler and held-back delivery."""
        self._closed = True
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        await self._tasks.cancel()

    async def publish(
        self, destination: str, payload: bytes, headers: Headers, *, message_id: str
    ) -> None:
        """Give every group subscribed to ``destination`` its own copy of the message."""
        self._check_open()
        message = _Message(message_id, bytes(payload), MappingProxyType(dict(headers)))
        for group in self._topics.get(destination, {}).values():
            group.outstanding += 1
            self._schedule(group, message, group.delay)

    async def subscribe(
        self,
        destination: str,
        group: str,
        handler: Handler,
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
        concurrency: int = 1,
        delay: float = 0.0,
    ) -> None:
        """Add one member to consumer group ``group`` of ``destination``.

        Members of one group share its queue and its ``delay`` (the first member
        sets it). ``concurrency`` deliveries may be in process at once.
        """
        self._check_open()
        check_subscription(destination, group, concurrency, delay)
        groups = self._topics.setdefault(destination, {})
        state = groups.get(group)
        if state is None:
            state = groups[group] = _Group(destination, group, delay)
        elif state.delay != delay:
            raise ConfigurationError(
                f"group {group!r} of {destination!r} already holds deliveries back "
                f"{state.delay} s; every member of a group must use the same delay"
            )
        self._tasks.spawn(
            self._consume(state, handler, retry, concurrency), f"{destination}/{group}"
        )

    async def join(self, *, exclude_groups: Collection[str] = ()) -> None:
        """Wait until every group (but ``exclude_groups``) has nothing queued, held or in process.

        Exclude a group whose handler is meant to stay busy (a stuck consumer).
        """
        while any(
            group.outstanding
            for groups in self._topics.values()
            for group in groups.values()
            if group.name not in exclude_groups
        ):
            self._changed.clear()
            await self._changed.wait()

    # -- internals --

    def _check_open(self) -> None:
        if not self._started or self._closed:
            raise not_open("InMemoryBroker()", closed=self._closed)

    def _schedule(self, group: _Group, message: _Message, after: float) -> None:
        if after <= 0:
            group.queue.put_nowait(message)
            return

        def arrive() -> None:
            self._timers.discard(timer)
            group.queue.put_nowait(message)

        timer = asyncio.get_running_loop().call_later(after, arrive)
        self._timers.add(timer)

    def _finished(self, group: _Group) -> None:
        group.outstanding -= 1
        self._changed.set()

    async def _consume(
        self, group: _Group, handler: Handler, retry: RetryPolicy, concurrency: int
    ) -> None:
        slots = asyncio.Semaphore(concurrency)
        while True:
            await slots.acquire()
            message = await group.queue.get()
            name = f"{group.destination}/{group.name} {message.message_id}"
            task = self._tasks.spawn(self._process(group, message, handler, retry), name)
            task.add_done_callback(lambda _: slots.release())

    async def _process(
        self, group: _Group, message: _Message, handler: Handler, retry: RetryPolicy
    ) -> None:
        delivery = Delivery(
            destination=group.destination,
            group=group.name,
            message_id=message.message_id,
            payload=message.payload,
            headers=message.headers,
            delivery_count=message.delivery_count,
        )
        match await settle(handler, delivery, retry):
            case Redelivery(attempt, backoff):
                redelivery = replace(message, delivery_count=attempt)
                self._schedule(group, redelivery, backoff + group.delay)
                return
            case DeadLetter(destination, headers):
                self._dead_letters.append(delivery)
                await self.publish(
                    destination, delivery.payload, headers, message_id=delivery.message_id
                )
        self._finished(group)
