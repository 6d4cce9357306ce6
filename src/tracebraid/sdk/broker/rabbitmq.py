"""RabbitMQ over aio-pika: a fanout exchange per destination, a quorum queue per consumer group.

Layout, for destination ``orders`` and group ``reserve-inventory``:

- exchange ``orders`` (fanout, durable): every group bound to it gets a copy;
- queue ``orders:reserve-inventory`` (durable, ``x-queue-type=quorum``): the
  group's members compete for its messages, ``prefetch = concurrency`` each;
- exchange ``orders.dlq``: the queue's dead-letter exchange, with a parking queue
  ``orders.dlq`` bound to it that keeps every dead letter until someone removes it.

Attempts are RabbitMQ's own count: a quorum queue stamps ``x-delivery-count`` (the
returns so far) on each redelivery, so attempt = ``x-delivery-count + 1``; a crash
counts too, because the broker returns the unacknowledged message itself. On a
classic queue (``quorum=False``) only the ``redelivered`` flag exists, so attempts
read 1 or 2.

Retry back-off is sleep-then-reject: the failed delivery stays unacknowledged for
the back-off, then ``reject(requeue=True)`` returns it and the queue counts the
return (RabbitMQ 4.3 counts ``basic.reject`` as a failed delivery and no longer
``basic.nack``). A per-group retry queue with per-message TTL dead-lettering back would free
the consumer's prefetch slot during the wait, but its copy is a new message
to the quorum queue, so the broker's count would restart and attempts would have to
live in a header again. The cost of the choice: a back-off holds one of the
member's ``concurrency`` slots, and back-offs must stay below RabbitMQ's
``consumer_timeout`` (30 minutes by default).

After the last attempt the adapter publishes the message to ``<destination>.dlq``
with its headers plus ``x-dead-letter-group``/``x-dead-letter-reason`` (confirmed by
the broker), then acknowledges it. The queue's ``x-delivery-limit`` is the retry
policy's ``max_attempts``: a message that crashes its consumer every time never
reaches that code, so RabbitMQ dead-letters it to the same exchange itself, and the
adapter fills the dead-letter headers in from ``x-death`` when it is consumed.

The AMQP ``message_id`` carries the event ID, ``correlation_id`` the correlation ID
and ``type`` the event name, so RabbitMQ tooling and stock OpenTelemetry
instrumentation see all three; the ``x-event-id``, ``x-correlation-id`` and
``x-event-name`` headers are then not sent a second time in the header table (each
table entry costs encoding on publish and decoding on delivery, in Python, on both
sides). Delivery restores them from the properties when the table lacks them, so a
consumer reads the same headers either way, and a message from a producer that set
only the properties gets them too. A header the properties cannot carry as it is
(another value than the message ID, longer than AMQP's 255-byte short string) stays
in the table.

Example::

    async with RabbitMQBroker("amqp://guest:guest@127.0.0.1:5672/") as broker:
        await broker.subscribe("orders", "reserve-inventory", reserve)
        await broker.publish("orders", b"{}", {}, message_id="evt_1")
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from tracebraid.errors import ConfigurationError
from tracebraid.sdk.broker._adapter import (
    BrokerAdapter,
    check_subscription,
    closed_for_good,
    not_open,
)
from tracebraid.sdk.broker._address import unavailable
from tracebraid.sdk.broker._extras import client_import
from tracebraid.sdk.broker._settle import Acknowledge, DeadLetter, Redelivery, Settlement, settle
from tracebraid.sdk.broker.base import (
    DEAD_LETTER_GROUP_HEADER,
    DEAD_LETTER_REASON_HEADER,
    DEAD_LETTER_SUFFIX,
    DEFAULT_RETRY,
    Delivery,
    Handler,
    Headers,
    RetryPolicy,
    dead_letter_destination,
)
from tracebraid.sdk.carriers import CORRELATION_ID_HEADER, EVENT_ID_HEADER, EVENT_NAME_HEADER

if TYPE_CHECKING:
    from aio_pika.abc import (
        AbstractChannel,
        AbstractExchange,
        AbstractIncomingMessage,
        AbstractQueue,
        AbstractRobustConnection,
        FieldValue,
    )

__all__ = ["DEFAULT_RABBITMQ_URL", "RabbitMQBroker", "queue_name"]

DEFAULT_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"
_DELIVERY_COUNT = "x-delivery-count"
_SHORT_STRING = 255  # bytes an AMQP short string (message_id, correlation_id, type) holds


def queue_name(destination: str, group: str) -> str:
    """The queue consumer group ``group`` of ``destination`` reads: ``orders:reserve-inventory``."""
    return f"{destination}:{group}"


class RabbitMQBroker(BrokerAdapter):
    """A ``Broker`` over RabbitMQ (aio-pika); see the module docstring for the layout.

    ``temporary=True`` deletes every exchange and queue this adapter declared when
    it closes (tests, demos). ``quorum=False`` declares classic queues.
    """

    def __init__(
        self,
        url: str = DEFAULT_RABBITMQ_URL,
        *,
        quorum: bool = True,
        temporary: bool = False,
        connect_timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.quorum = quorum
        self.temporary = temporary
        self.connect_timeout = connect_timeout
        self._connection: AbstractRobustConnection | None = None
        self._publisher: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._queues: set[str] = set()
        self._channels: list[AbstractChannel] = []
        self._closed = False

    @property
    def system(self) -> str:
        """``rabbitmq``: the ``messaging.system`` value for spans over this broker."""
        return "rabbitmq"

    async def start(self) -> None:
        """Connect (a robust connection: it reconnects and restores consumers)."""
        if self._connection is not None:
            return
        if self._closed:
            raise closed_for_good("RabbitMQBroker")
        with client_import("rabbitmq", "aio_pika"):
            import aio_pika
        try:
            connection = await aio_pika.connect_robust(self.url, timeout=self.connect_timeout)
        except Exception as exc:  # refused, timed out, DNS, login: all mean "not reachable"
            raise unavailable("RabbitMQ", self.url, exc) from exc
        self._connection = connection
        self._publisher = await connection.channel(publisher_confirms=True)

    async def close(self) -> None:
        """Close every consumer channel (unacknowledged deliveries go back), then disconnect."""
        if self._closed:
            return
        self._closed = True
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            for channel in self._channels:
                with contextlib.suppress(Exception):
                    await channel.close()
            if self.temporary:
                await self._delete_declared(connection)
        finally:
            await connection.close()

    async def publish(
        self, destination: str, payload: bytes, headers: Headers, *, message_id: str
    ) -> None:
        """Publish to exchange ``destination`` (declared on first use); waits for the confirm."""
        import aio_pika

        exchange = await self._exchange(destination)
        table: dict[str, FieldValue] = dict(headers)
        correlation = _as_property(table, CORRELATION_ID_HEADER)
        if correlation is None:  # another spelling (kept in the table), if it fits
            spelled = _lookup(headers, CORRELATION_ID_HEADER)
            correlation = spelled if spelled and _fits(spelled) else None
        if table.get(EVENT_ID_HEADER) == message_id:
            del table[EVENT_ID_HEADER]
        message = aio_pika.Message(
            bytes(payload),
            headers=table,
            message_id=message_id,
            correlation_id=correlation,
            type=_as_property(table, EVENT_NAME_HEADER),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await exchange.publish(message, routing_key="")

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
        """Declare and bind the group's queue, then consume it on a channel of its own."""
        check_subscription(destination, group, concurrency, delay)
        connection = self._require_connection()
        channel = await connection.channel(publisher_confirms=True)
        self._channels.append(channel)
        await channel.set_qos(prefetch_count=concurrency)
        exchange = await self._exchange(destination)
        parking = await self._exchange(dead_letter_destination(destination))
        queue_type = {"x-queue-type": "quorum" if self.quorum else "classic"}
        # The parking queue keeps dead letters whether or not a group reads them.
        await self._queue(channel, parking.name, parking, queue_type)
        arguments: dict[str, str | int] = {**queue_type, "x-dead-letter-exchange": parking.name}
        if self.quorum:
            arguments["x-delivery-limit"] = retry.max_attempts
        queue = await self._queue(channel, queue_name(destination, group), exchange, arguments)

        async def on_message(message: AbstractIncomingMessage) -> None:
            delivery = self._delivery(destination, group, message)
            settlement = await settle(handler, delivery, retry, delay=delay)
            await self._carry_out(settlement, message, delivery)

        await queue.consume(on_message)

    # -- internals --

    def _require_connection(self) -> AbstractRobustConnection:
        if self._connection is None:
            raise not_open("RabbitMQBroker(url)", closed=self._closed)
        return self._connection

    def _channel(self) -> AbstractChannel:
        self._require_connection()
        assert self._publisher is not None
        return self._publisher

    async def _queue(
        self,
        channel: AbstractChannel,
        name: str,
        exchange: AbstractExchange,
        arguments: Mapping[str, str | int],
    ) -> AbstractQueue:
        import aiormq

        try:
            queue = await channel.declare_queue(name, durable=True, arguments=dict(arguments))
        except aiormq.exceptions.ChannelPreconditionFailed as exc:
            raise ConfigurationError(
                f"queue {name!r} exists with other arguments than {dict(arguments)} ({exc}); "
                "every member of a group must use the same retry policy; delete the queue "
                "to change it"
            ) from exc
        self._queues.add(name)
        await queue.bind(exchange)
        return queue

    async def _exchange(self, name: str) -> AbstractExchange:
        """The fanout exchange ``name``, declared once on the confirming publisher channel."""
        import aio_pika

        exchange = self._exchanges.get(name)
        if exchange is None:
            exchange = await self._channel().declare_exchange(
                name, aio_pika.ExchangeType.FANOUT, durable=True
            )
            self._exchanges[name] = exchange
        return exchange

    def _delivery(self, destination: str, group: str, message: AbstractIncomingMessage) -> Delivery:
        raw = message.headers
        headers = _text_headers(raw)
        count = raw.get(_DELIVERY_COUNT)
        if isinstance(count, int) and not isinstance(count, bool):
            attempt = count + 1
        else:
            attempt = 2 if message.redelivered else 1
        # The identities publish carried as properties instead of table entries.
        if message.message_id and EVENT_ID_HEADER not in headers:
            headers[EVENT_ID_HEADER] = message.message_id
        if message.correlation_id and CORRELATION_ID_HEADER not in headers:
            headers[CORRELATION_ID_HEADER] = message.correlation_id
        if message.type and EVENT_NAME_HEADER not in headers:
            headers[EVENT_NAME_HEADER] = message.type
        if destination.endswith(DEAD_LETTER_SUFFIX) and DEAD_LETTER_GROUP_HEADER not in headers:
            headers |= _from_x_death(destination.removesuffix(DEAD_LETTER_SUFFIX), message)
        return Delivery(
            destination=destination,
            group=group,
            message_id=message.message_id or headers.get(EVENT_ID_HEADER, ""),
            payload=message.body,
            headers=headers,
            delivery_count=attempt,
        )

    async def _carry_out(
        self, settlement: Settlement, message: AbstractIncomingMessage, delivery: Delivery
    ) -> None:
        match settlement:
            case Acknowledge():
                await message.ack()
            case Redelivery(backoff=backoff):
                await asyncio.sleep(backoff)
                # reject, not nack: from RabbitMQ 4.3 only basic.reject counts as a failed
                # delivery in x-delivery-count (basic.nack means "not processed"); before 4.3
                # both count.
                await message.reject(requeue=True)
            case DeadLetter(destination, headers):
                # The count belongs to the group's queue; the parked copy starts afresh.
                parked = {k: v for k, v in headers.items() if k != _DELIVERY_COUNT}
                await self.publish(
                    destination, delivery.payload, parked, message_id=delivery.message_id
                )
                await message.ack()

    async def _delete_declared(self, connection: AbstractRobustConnection) -> None:
        channel = await connection.channel()
        try:
            for name in self._queues:
                with contextlib.suppress(Exception):
                    await channel.queue_delete(name)
            for name in self._exchanges:
                with contextlib.suppress(Exception):
                    await channel.exchange_delete(name)
        finally:
            with contextlib.suppress(Exception):
                await channel.close()


def _as_property(table: dict[str, FieldValue], name: str) -> str | None:
    """Take header ``name`` out of ``table`` for an AMQP short-string property: its value,
    or None (left in the table) when absent, empty, or over the 255 bytes a property holds.
    """
    value = table.get(name)
    if not isinstance(value, str) or not value or not _fits(value):
        return None
    del table[name]
    return value


def _fits(value: str) -> bool:
    """True when ``value`` fits an AMQP short string (255 bytes of UTF-8)."""
    # Four bytes at most per character: only a long value needs encoding to know.
    return len(value) <= _SHORT_STRING // 4 or len(value.encode()) <= _SHORT_STRING


def _lookup(headers: Headers, name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


def _text_headers(raw: Mapping[str, object]) -> dict[str, str]:
    """AMQP table values as text; nested tables and arrays (``x-death``) are left out."""
    headers: dict[str, str] = {}
    for name, value in raw.items():
        if isinstance(value, str):
            headers[name] = value
        elif isinstance(value, bytes):
            with contextlib.suppress(UnicodeDecodeError):
                headers[name] = value.decode("utf-8")
        elif isinstance(value, int | float | bool):
            headers[name] = str(value)
    return headers


def _from_x_death(origin: str, message: AbstractIncomingMessage) -> dict[str, str]:
    """Dead-letter headers for a message RabbitMQ dead-lettered itself (``x-delivery-limit``)."""
    deaths = message.headers.get("x-death")
    if not isinstance(deaths, list) or not deaths or not isinstance(deaths[0], Mapping):
        return {}
    death: Mapping[str, object] = deaths[0]
    queue, reason = death.get("queue"), death.get("reason")
    queue = queue.decode() if isinstance(queue, bytes) else queue
    reason = reason.decode() if isinstance(reason, bytes) else reason
    prefix = queue_name(origin, "")
    if not isinstance(queue, str) or not queue.startswith(prefix):
        return {}
    return {
        DEAD_LETTER_GROUP_HEADER: queue.removeprefix(prefix),
        DEAD_LETTER_REASON_HEADER: f"RabbitMQ dead-lettered it: {reason}",
    }
