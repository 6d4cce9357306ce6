"""NATS JetStream over nats-py: a stream per destination, a durable pull consumer per group.

- Destination ``orders`` is subject ``orders``, stored by stream ``orders`` (names
  JetStream does not allow, such as ``tb.orders``, become ``tb_orders-<hash>``) with
  interest retention: a message stays until every group has acknowledged it.
- A consumer group is a durable pull consumer (``deliver_policy=new``: it sees what
  is published after it was created); each ``subscribe`` adds one member fetching
  from it, so members compete and groups fan out.
- The event ID travels as ``Nats-Msg-Id``, so JetStream drops a second publish of
  one event within its duplicate window; an ``x-event-id`` header equal to it is not
  sent a second time (nats-py encodes and parses headers in Python, on both sides),
  and delivery restores it from ``Nats-Msg-Id`` when the message lacks it.
- Attempts are JetStream's own ``num_delivered``. A failed delivery is ``nak``-ed
  with the back-off as its delay; a member that dies leaves its deliveries
  unacknowledged, and JetStream redelivers them after ``ack_wait`` seconds with the
  count incremented. Live members send ``in_progress`` every ``ack_wait / 3``
  seconds, so slow work is not redelivered under them.
- After the last attempt the message is published to ``<destination>.dlq`` with the
  dead-letter headers, then acknowledged; that stream keeps what it parks (limits
  retention) whether or not a group reads it. ``max_deliver`` is ``max_attempts``, so a
  message that crashes its consumer every time stops being delivered (JetStream
  sends its max-deliveries advisory) instead of looping.

Example::

    async with NatsJetStreamBroker("nats://127.0.0.1:4222") as broker:
        await broker.subscribe("orders", "reserve-inventory", reserve)
        await broker.publish("orders", b"{}", {}, message_id="evt_1")
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tracebraid.errors import ConfigurationError
from tracebraid.sdk.broker._adapter import (
    BrokerAdapter,
    check_subscription,
    closed_for_good,
    not_open,
)
from tracebraid.sdk.broker._address import redact, unavailable
from tracebraid.sdk.broker._extras import client_import
from tracebraid.sdk.broker._settle import Acknowledge, DeadLetter, Redelivery, settle
from tracebraid.sdk.broker._slots import take_slots
from tracebraid.sdk.broker._tasks import Tasks
from tracebraid.sdk.broker.base import (
    DEAD_LETTER_SUFFIX,
    DEFAULT_RETRY,
    Delivery,
    Handler,
    Headers,
    RetryPolicy,
    dead_letter_destination,
)
from tracebraid.sdk.carriers import EVENT_ID_HEADER

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext

__all__ = ["DEFAULT_NATS_URL", "NatsJetStreamBroker", "jetstream_name"]

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
MESSAGE_ID_HEADER = "Nats-Msg-Id"
_NATS_HEADER_PREFIX = "nats-"
_NOT_A_NAME = re.compile(r"[^A-Za-z0-9_-]")
_NOT_A_SUBJECT = re.compile(r"[\s*>]|^\.|\.$|\.\.")

_log = logging.getLogger(__name__)


def jetstream_name(name: str) -> str:
    """A stream or consumer name JetStream accepts, distinct for distinct ``name``s."""
    safe = _NOT_A_NAME.sub("_", name)
    if safe == name:
        return name
    return f"{safe}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


@dataclass(eq=False, slots=True)
class _Member:
    destination: str
    group: str
    handler: Handler
    retry: RetryPolicy
    delay: float
    slots: asyncio.Semaphore
    holding: dict[int, Msg] = field(default_factory=dict)  # by id(): Msg is unhashable


class NatsJetStreamBroker(BrokerAdapter):
    """A ``Broker`` over NATS JetStream; see the module docstring for the layout.

    ``ack_wait`` is how long (seconds) a delivery may go unacknowledged by a silent
    member before JetStream redelivers it. ``temporary=True`` deletes every stream this
    adapter created or used when it closes.
    """

    def __init__(
        self,
        url: str = DEFAULT_NATS_URL,
        *,
        ack_wait: float = 30.0,
        temporary: bool = False,
        connect_timeout: float = 5.0,
    ) -> None:
        if ack_wait <= 0:
            raise ConfigurationError(f"ack_wait must be above 0 s, got {ack_wait}")
        self.url = url
        self.ack_wait = ack_wait
        self.temporary = temporary
        self.connect_timeout = connect_timeout
        self._client: Client | None = None
        self._js: JetStreamContext | None = None
        self._streams: dict[str, str] = {}
        self._tasks = Tasks(_log)
        self._closed = False

    @property
    def system(self) -> str:
        """``nats``: the ``messaging.system`` value for spans over this broker."""
        return "nats"

    async def start(self) -> None:
        """Connect; the client reconnects by itself after a later disconnect."""
        if self._client is not None:
            return
        if self._closed:
            raise closed_for_good("NatsJetStreamBroker")
        with client_import("nats", "nats"):
            from nats.aio.client import Client

        failures: list[Exception] = []

        async def on_error(error: Exception) -> None:
            failures.append(error)
            if self._client is not None:
                _log.warning("NATS at %s: %s", redact(self.url), error)

        client = Client()
        try:
            # nats-py retries a refused first connection forever; bound it here.
            async with asyncio.timeout(self.connect_timeout):
                await client.connect(
                    self.url,
                    connect_timeout=max(1, round(self.connect_timeout)),
                    error_cb=on_error,
                )
        except Exception as exc:
            await client.close()
            cause = failures[-1] if failures else exc
            raise unavailable("NATS", self.url, cause) from exc
        self._client = client
        self._js = client.jetstream()

    async def close(self) -> None:
        """Stop every member (their deliveries come back after ``ack_wait``), then disconnect."""
        if self._closed:
            return
        self._closed = True
        client, js = self._client, self._js
        self._client = self._js = None
        await self._tasks.cancel()
        if client is None or js is None:
            return
        try:
            if self.temporary:
                for stream in self._streams.values():
                    try:
                        await js.delete_stream(stream)
                    except Exception as exc:  # already gone, or never created
                        _log.debug("could not delete stream %s: %s", stream, exc)
        finally:
            await client.close()

    async def publish(
        self, destination: str, payload: bytes, headers: Headers, *, message_id: str
    ) -> None:
        """Publish to subject ``destination`` and wait for JetStream's acknowledgement."""
        js = self._require_js()
        stream = await self._stream(js, destination)
        outgoing = {k: v for k, v in headers.items() if not _is_nats_header(k)}
        if outgoing.get(EVENT_ID_HEADER) == message_id:
            del outgoing[EVENT_ID_HEADER]  # Nats-Msg-Id carries it
        outgoing[MESSAGE_ID_HEADER] = message_id
        await js.publish(destination, bytes(payload), stream=stream, headers=outgoing)

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
        """Create the group's durable consumer if needed and start one member fetching from it."""
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        js = self._require_js()
        check_subscription(destination, group, concurrency, delay)
        stream = await self._stream(js, destination)
        await self._stream(js, dead_letter_destination(destination))  # ready to park
        durable = jetstream_name(group)
        config = ConsumerConfig(
            durable_name=durable,
            deliver_policy=DeliverPolicy.NEW,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            max_deliver=retry.max_attempts,
            filter_subject=destination,
            max_ack_pending=max(1000, concurrency),
        )
        subscription = await js.pull_subscribe(
            destination, durable=durable, stream=stream, config=config
        )
        member = _Member(destination, group, handler, retry, delay, asyncio.Semaphore(concurrency))
        name = f"{destination}/{group}-{uuid.uuid4().hex[:8]}"
        self._tasks.spawn(self._fetch(js, subscription, member), name)
        self._tasks.spawn(self._keep_in_progress(member), f"{name} heartbeat")

    # -- internals --

    def _require_js(self) -> JetStreamContext:
        if self._js is None:
            raise not_open("NatsJetStreamBroker(url)", closed=self._closed)
        return self._js

    async def _stream(self, js: JetStreamContext, destination: str) -> str:
        """The stream holding subject ``destination``, created on first use."""
        from nats.js.api import RetentionPolicy, StreamConfig
        from nats.js.errors import BadRequestError

        stream = self._streams.get(destination)
        if stream is not None:
            return stream
        if _NOT_A_SUBJECT.search(destination):
            raise ConfigurationError(
                f"{destination!r} is not a NATS subject: no spaces, '*', '>' or empty tokens"
            )
        stream = jetstream_name(destination)
        # Dead letters stay until removed, watched or not; other messages until every
        # group has them.
        parked = destination.endswith(DEAD_LETTER_SUFFIX)
        retention = RetentionPolicy.LIMITS if parked else RetentionPolicy.INTEREST
        config = StreamConfig(name=stream, subjects=[destination], retention=retention)
        try:
            await js.add_stream(config)
        except BadRequestError as exc:
            raise ConfigurationError(
                f"JetStream refused stream {stream!r} for subject {destination!r}: "
                f"{exc.description}; an existing stream may already hold that subject "
                "or use that name with other settings"
            ) from exc
        self._streams[destination] = stream
        return stream

    async def _fetch(
        self, js: JetStreamContext, subscription: JetStreamContext.PullSubscription, member: _Member
    ) -> None:
        from nats.errors import TimeoutError as FetchTimeout

        while not self._closed:
            free = await take_slots(member.slots)
            messages: list[Msg] = []
            try:
                messages = await subscription.fetch(free, timeout=1.0)
            except (FetchTimeout, TimeoutError):  # nothing to fetch within the second
                pass
            except Exception as exc:  # a reconnect in progress: keep the member alive
                _log.warning(
                    "fetching %s for %s failed: %s: %s",
                    member.destination,
                    member.group,
                    type(exc).__name__,
                    exc,
                )
                await asyncio.sleep(1.0)
            finally:
                for _ in range(free - len(messages)):
                    member.slots.release()
            for message in messages:
                member.holding[id(message)] = message
                self._tasks.spawn(self._process(js, member, message), member.group)

    async def _keep_in_progress(self, member: _Member) -> None:
        """Tell JetStream every held delivery is still being worked on, so it waits."""
        while not self._closed:
            await asyncio.sleep(self.ack_wait / 3)
            for message in list(member.holding.values()):
                try:
                    await message.in_progress()
                except Exception as exc:  # reconnecting; JetStream may redeliver meanwhile
                    _log.warning("in_progress for %s failed: %s", member.group, exc)

    async def _process(self, js: JetStreamContext, member: _Member, message: Msg) -> None:
        delivery = _delivery(member, message)
        try:
            match await settle(member.handler, delivery, member.retry, delay=member.delay):
                case Acknowledge():
                    await message.ack()
                case Redelivery(backoff=backoff):
                    await message.nak(delay=backoff)
                case DeadLetter() as parked:
                    await self._dead_letter(js, delivery, parked)
                    await message.ack()
        finally:
            member.holding.pop(id(message), None)
            member.slots.release()

    async def _dead_letter(
        self, js: JetStreamContext, delivery: Delivery, parked: DeadLetter
    ) -> None:
        stream = await self._stream(js, parked.destination)
        headers = {**parked.headers, MESSAGE_ID_HEADER: delivery.message_id}
        await js.publish(parked.destination, delivery.payload, stream=stream, headers=headers)


def _is_nats_header(name: str) -> bool:
    # The slice first: lower-casing the whole name costs more than the test.
    return name[:5].lower() == _NATS_HEADER_PREFIX


def _delivery(member: _Member, message: Msg) -> Delivery:
    raw = message.headers or {}
    headers = {k: v for k, v in raw.items() if not _is_nats_header(k)}
    message_id = raw.get(MESSAGE_ID_HEADER, "")
    if message_id and EVENT_ID_HEADER not in headers:
        headers[EVENT_ID_HEADER] = message_id
    return Delivery(
        destination=member.destination,
        group=member.group,
        message_id=message_id,
        payload=message.data,
        headers=headers,
        delivery_count=message.metadata.num_delivered or 1,
    )
