"""Redis Streams over redis-py's asyncio client: a stream per destination, consumer groups.

- ``publish`` is ``XADD <destination>``: the payload under ``tb:payload``, the message
  ID under ``tb:message-id`` and the headers as one JSON object under ``tb:headers``
  (``_redis_entries`` says why one field; entries with a field per header are read too).
- A consumer group is a Redis consumer group (``XGROUP CREATE … $ MKSTREAM``: it
  sees what is published after it was created); each ``subscribe`` adds one
  consumer to it, reading with ``XREADGROUP`` and acknowledging with ``XACK``.
- Attempts are the pending-entries list's delivery counter: 1 for a new entry; a
  failed entry stays pending and, after its back-off, the consumer takes it again
  with ``XCLAIM``, which increments the counter (read back with ``XPENDING``).
- A consumer that died leaves its entries pending. Every member runs ``XAUTOCLAIM``
  for entries idle longer than ``claim_after`` seconds (which also increments the
  counter), so a killed consumer's delivery comes back as attempt 2. Live members
  keep their own entries fresh with ``XCLAIM … JUSTID`` (no count) every
  ``claim_after / 3`` seconds, so slow work is not taken from them.
- After the last attempt the entry is ``XADD``-ed to ``<destination>.dlq`` with the
  dead-letter headers and acknowledged, in one ``MULTI``.

An entry written by another producer (no ``tb:payload``) is delivered with all its
fields as headers and as a JSON object payload. Streams grow until trimmed: pass
``maxlen`` to trim approximately on every ``XADD`` (a group that lags further behind
than that loses entries).

Example::

    async with RedisStreamsBroker("redis://127.0.0.1:6379/0") as broker:
        await broker.subscribe("orders", "reserve-inventory", reserve)
        await broker.publish("orders", b"{}", {}, message_id="evt_1")
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tracebraid.errors import ConfigurationError
from tracebraid.sdk.broker._adapter import (
    BrokerAdapter,
    check_subscription,
    closed_for_good,
    not_open,
)
from tracebraid.sdk.broker._address import unavailable
from tracebraid.sdk.broker._extras import client_import
from tracebraid.sdk.broker._redis_entries import entry_delivery, entry_fields
from tracebraid.sdk.broker._settle import Acknowledge, DeadLetter, Redelivery, settle
from tracebraid.sdk.broker._slots import take_slots
from tracebraid.sdk.broker._tasks import Tasks
from tracebraid.sdk.broker.base import (
    DEFAULT_RETRY,
    Delivery,
    Handler,
    Headers,
    RetryPolicy,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["DEFAULT_REDIS_URL", "RedisStreamsBroker"]

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

_Fields = Mapping[bytes, bytes]
_log = logging.getLogger(__name__)


@dataclass(eq=False, slots=True)
class _Member:
    """One consumer of a group: its name, its handler and the entries it holds."""

    stream: str
    group: str
    name: str
    handler: Handler
    retry: RetryPolicy
    delay: float
    slots: asyncio.Semaphore
    holding: set[bytes] = field(default_factory=set)


class RedisStreamsBroker(BrokerAdapter):
    """A ``Broker`` over Redis Streams; see the module docstring for the commands used.

    ``claim_after`` is how long (seconds) an entry may sit unacknowledged with a
    silent consumer before another member takes it over. ``temporary=True`` deletes
    every stream this adapter touched when it closes. ``max_connections`` bounds the
    connection pool (each member's blocking read holds one while it waits).
    """

    def __init__(
        self,
        url: str = DEFAULT_REDIS_URL,
        *,
        claim_after: float = 30.0,
        maxlen: int | None = None,
        temporary: bool = False,
        connect_timeout: float = 5.0,
        max_connections: int = 64,
    ) -> None:
        if claim_after <= 0:
            raise ConfigurationError(f"claim_after must be above 0 s, got {claim_after}")
        self.url = url
        self.claim_after = claim_after
        self.maxlen = maxlen
        self.temporary = temporary
        self.connect_timeout = connect_timeout
        self.max_connections = max_connections
        self._client: Redis | None = None
        self._members: list[_Member] = []
        self._tasks = Tasks(_log)
        self._streams: set[str] = set()
        self._closed = False

    @property
    def system(self) -> str:
        """``redis``: the ``messaging.system`` value for spans over this broker."""
        return "redis"

    async def start(self) -> None:
        """Connect and check the server answers (``PING``)."""
        if self._client is not None:
            return
        if self._closed:
            raise closed_for_good("RedisStreamsBroker")
        with client_import("redis", "redis"):
            from redis.asyncio import BlockingConnectionPool, Redis

        # Blocking: a burst of publishes and acknowledgements waits for a connection
        # instead of failing with "Too many connections".
        pool = BlockingConnectionPool.from_url(
            self.url,
            max_connections=self.max_connections,
            timeout=None,
            socket_connect_timeout=self.connect_timeout,
        )
        client = Redis.from_pool(pool)
        try:
            await client.ping()
        except Exception as exc:  # refused, timed out, auth: all mean "not reachable"
            await client.aclose()
            raise unavailable("Redis", self.url, exc) from exc
        self._client = client

    async def close(self) -> None:
        """Stop every member; entries still pending stay with the group for another member."""
        if self._closed:
            return
        self._closed = True
        client, self._client = self._client, None
        if client is None:
            return
        await self._tasks.cancel()
        try:
            if self.temporary and self._streams:
                await client.delete(*self._streams)
            else:
                await self._forget_idle_members(client)
        finally:
            await client.aclose()

    async def publish(
        self, destination: str, payload: bytes, headers: Headers, *, message_id: str
    ) -> None:
        """``XADD`` one entry to stream ``destination``."""
        client = self._require_client()
        self._streams.add(destination)
        await client.xadd(
            destination,
            entry_fields(payload, headers, message_id),
            maxlen=self.maxlen,
            approximate=True,
        )

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
        """Create the group if needed and start one consumer of it."""
        from redis.exceptions import ResponseError

        client = self._require_client()
        check_subscription(destination, group, concurrency, delay)
        self._streams.add(destination)
        try:
            await client.xgroup_create(destination, group, id="$", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        member = _Member(
            stream=destination,
            group=group,
            name=f"{group}-{uuid.uuid4().hex[:8]}",
            handler=handler,
            retry=retry,
            delay=delay,
            slots=asyncio.Semaphore(concurrency),
        )
        self._members.append(member)
        self._tasks.spawn(self._read(client, member), f"{destination}/{member.name}")
        self._tasks.spawn(
            self._keep_fresh(client, member), f"{destination}/{member.name} heartbeat"
        )

    # -- the member's loops --

    async def _read(self, client: Redis, member: _Member) -> None:
        # Short blocks: a read that swallowed its cancellation (see below) ends this soon.
        block_ms = max(1, int(min(self.claim_after / 2, 0.25) * 1000))
        claim_every = self.claim_after / 2
        next_claim, cursor = 0.0, "0-0"
        # Not `while True`: redis-py can swallow a cancellation that races a blocking
        # read's own timeout (the read then returns None), so the loop also ends on close.
        while not self._closed:
            free = await take_slots(member.slots)
            used = 0
            try:
                if time.monotonic() >= next_claim:
                    next_claim = time.monotonic() + claim_every
                    cursor, claimed = await self._autoclaim(client, member, cursor, free)
                    for entry_id, fields in claimed:
                        count = await self._delivery_count(client, member, entry_id)
                        self._launch(client, member, entry_id, fields, count)
                        used += 1
                if used < free:
                    response: Any = await client.xreadgroup(
                        member.group,
                        member.name,
                        {member.stream: ">"},
                        count=free - used,
                        block=block_ms,
                    )
                    for _, entries in response or ():
                        for entry_id, fields in entries:
                            self._launch(client, member, entry_id, fields, 1)
                            used += 1
            except Exception as exc:  # a reconnect in progress: keep the member alive
                _log.warning("reading %s for %s failed: %s", member.stream, member.group, exc)
                await asyncio.sleep(1.0)
            finally:
                for _ in range(free - used):
                    member.slots.release()

    async def _autoclaim(
        self, client: Redis, member: _Member, cursor: str, count: int
    ) -> tuple[str, list[tuple[bytes, _Fields]]]:
        """Entries other (silent) members held longer than ``claim_after``, now ours."""
        reply: list[Any] = await client.xautoclaim(
            member.stream,
            member.group,
            member.name,
            int(self.claim_after * 1000),
            start_id=cursor,
            count=count,
        )
        following = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        claimed = [(entry_id, fields) for entry_id, fields in reply[1] if fields is not None]
        trimmed = [entry_id for entry_id, fields in reply[1] if fields is None]
        trimmed += list(reply[2]) if len(reply) > 2 else []
        if trimmed:  # trimmed away while pending: nothing left to deliver
            await client.xack(member.stream, member.group, *trimmed)
        return following, claimed

    async def _delivery_count(self, client: Redis, member: _Member, entry_id: bytes) -> int:
        pending = await client.xpending_range(
            member.stream, member.group, min=entry_id, max=entry_id, count=1
        )
        return int(pending[0]["times_delivered"]) if pending else 1

    async def _keep_fresh(self, client: Redis, member: _Member) -> None:
        """Reset the idle time of every entry this member holds, so no one claims it."""
        while not self._closed:
            await asyncio.sleep(self.claim_after / 3)
            if not member.holding:
                continue
            try:
                await client.xclaim(
                    member.stream, member.group, member.name, 0, list(member.holding), justid=True
                )
            except Exception as exc:  # reconnecting; another member may claim meanwhile
                _log.warning("keeping %s's entries failed: %s", member.name, exc)

    def _launch(
        self, client: Redis, member: _Member, entry_id: bytes, fields: _Fields, count: int
    ) -> None:
        """Process one entry in its own task; it owns one of the slots taken for it."""
        member.holding.add(entry_id)
        delivery = entry_delivery(member.stream, member.group, entry_id, fields, count)
        self._tasks.spawn(self._process(client, member, entry_id, delivery), member.name)

    async def _process(
        self, client: Redis, member: _Member, entry_id: bytes, delivery: Delivery
    ) -> None:
        """Run the handler; a retry keeps the slot through its back-off, as RabbitMQ's does."""
        retry_after: float | None = None
        try:
            match await settle(member.handler, delivery, member.retry, delay=member.delay):
                case Acknowledge():
                    await client.xack(member.stream, member.group, entry_id)
                    member.holding.discard(entry_id)
                case Redelivery(backoff=backoff):
                    retry_after = backoff
                case DeadLetter() as parked:
                    await self._dead_letter(client, member, entry_id, delivery, parked)
        finally:
            if retry_after is None:
                member.slots.release()
        if retry_after is not None:
            await self._redeliver(client, member, entry_id, retry_after)

    async def _redeliver(
        self, client: Redis, member: _Member, entry_id: bytes, after: float
    ) -> None:
        """After the back-off, take the entry again: ``XCLAIM`` counts the redelivery."""
        try:
            await asyncio.sleep(after)
            claimed: Any = await client.xclaim(
                member.stream, member.group, member.name, 0, [entry_id]
            )
            live = [(i, f) for i, f in claimed if f is not None]
            if live:
                count = await self._delivery_count(client, member, entry_id)
        except BaseException:
            member.slots.release()
            raise
        if not live:  # acknowledged or trimmed meanwhile
            member.holding.discard(entry_id)
            member.slots.release()
            return
        await self._process(
            client,
            member,
            entry_id,
            entry_delivery(member.stream, member.group, entry_id, live[0][1], count),
        )

    async def _dead_letter(
        self,
        client: Redis,
        member: _Member,
        entry_id: bytes,
        delivery: Delivery,
        parked: DeadLetter,
    ) -> None:
        self._streams.add(parked.destination)
        async with client.pipeline(transaction=True) as moving:
            moving.xadd(
                parked.destination,
                entry_fields(delivery.payload, parked.headers, delivery.message_id),
                maxlen=self.maxlen,
                approximate=True,
            )
            moving.xack(member.stream, member.group, entry_id)
            await moving.execute()
        member.holding.discard(entry_id)

    # -- housekeeping --

    def _require_client(self) -> Redis:
        if self._client is None:
            raise not_open("RedisStreamsBroker(url)", closed=self._closed)
        return self._client

    async def _forget_idle_members(self, client: Redis) -> None:
        """Remove this adapter's consumers that hold nothing (``DELCONSUMER`` drops pending)."""
        for member in self._members:
            with contextlib.suppress(Exception):
                summary = await client.xpending(member.stream, member.group)
                holding = {
                    _text(c["name"]): int(c["pending"]) for c in summary.get("consumers") or ()
                }
                if holding.get(member.name, 0) == 0:
                    await client.xgroup_delconsumer(member.stream, member.group, member.name)


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
