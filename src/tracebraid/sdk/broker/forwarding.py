"""A ``Broker`` in front of another: everything passes through unless a subclass changes it.

The base of wrappers that change one side of the traffic and leave the rest alone:
structured mode (``StructuredBroker``), a relay that drops headers, a client that
hides delivery counts. Override ``publish`` to change what leaves, ``incoming`` to
change what each handler is given.

Example::

    class UncountedClient(ForwardingBroker):
        def incoming(self, delivery: Delivery) -> Delivery:
            return replace(delivery, delivery_count=1)

    async with UncountedClient(RabbitMQBroker(url)) as broker:
        await broker.subscribe("orders", "reserve-inventory", reserve)
"""

from __future__ import annotations

from tracebraid.sdk.broker._adapter import BrokerAdapter
from tracebraid.sdk.broker.base import (
    DEFAULT_RETRY,
    Broker,
    Delivery,
    Handler,
    Headers,
    RetryPolicy,
)

__all__ = ["ForwardingBroker"]


class ForwardingBroker(BrokerAdapter):
    """Any ``Broker`` (``inner``), passed through; starting and closing this one does it."""

    def __init__(self, inner: Broker) -> None:
        self.inner = inner

    @property
    def system(self) -> str:
        """The wrapped broker's ``messaging.system``."""
        return self.inner.system

    async def start(self) -> None:
        """Start the wrapped broker."""
        await self.inner.start()

    async def close(self) -> None:
        """Close the wrapped broker."""
        await self.inner.close()

    async def publish(
        self, destination: str, payload: bytes, headers: Headers, *, message_id: str
    ) -> None:
        """Publish through the wrapped broker unchanged."""
        await self.inner.publish(destination, payload, headers, message_id=message_id)

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
        """Subscribe through the wrapped broker; ``handler`` gets each ``incoming`` delivery."""

        async def forward(delivery: Delivery) -> None:
            await handler(self.incoming(delivery))

        await self.inner.subscribe(
            destination, group, forward, retry=retry, concurrency=concurrency, delay=delay
        )

    def incoming(self, delivery: Delivery) -> Delivery:
        """The delivery as the handler is given it; unchanged here."""
        return delivery
