"""What every adapter does alike around its broker: ``async with``, refusals, subscribe's checks.

``BrokerAdapter`` gives an adapter ``async with`` (``start`` on entry, ``close`` on
exit); the functions build the errors every adapter raises with the same words::

    class RedisStreamsBroker(BrokerAdapter):
        async def start(self) -> None:
            if self._closed:
                raise closed_for_good("RedisStreamsBroker")
            ...

        async def subscribe(self, destination, group, handler, *, concurrency=1, delay=0.0):
            check_subscription(destination, group, concurrency, delay)
            ...
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self

from tracebraid.errors import BrokerUnavailableError, ConfigurationError

__all__ = ["BrokerAdapter", "check_subscription", "closed_for_good", "not_open"]


class BrokerAdapter(ABC):
    """``async with adapter:`` starts it and closes it however the block ends."""

    @abstractmethod
    async def start(self) -> None:
        """Connect; calling it twice is harmless."""

    @abstractmethod
    async def close(self) -> None:
        """Stop every consumer and disconnect."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def closed_for_good(adapter: str) -> BrokerUnavailableError:
    """The error for starting an adapter after it was closed: it does not reopen."""
    return BrokerUnavailableError(f"this {adapter} was closed; create a new one")


def not_open(opened_as: str, *, closed: bool) -> BrokerUnavailableError:
    """The error for using an adapter that is not started (or closed); says how to start it.

    ``opened_as`` is how the adapter is written in ``async with``: ``RabbitMQBroker(url)``.
    """
    adapter = opened_as.partition("(")[0]
    state = "closed" if closed else "not started"
    return BrokerUnavailableError(
        f"{adapter} is {state}; use `async with {opened_as} as broker:` "
        "or await broker.start() first"
    )


def check_subscription(destination: str, group: str, concurrency: int, delay: float) -> None:
    """Refuse what no broker can subscribe: no destination or group, no slot, a negative delay."""
    if not destination or not group:
        raise ConfigurationError(
            f"subscribe needs a destination and a group, got {destination!r}, {group!r}"
        )
    if concurrency < 1 or delay < 0:
        raise ConfigurationError(
            f"subscribe needs concurrency >= 1 and delay >= 0, got {concurrency}, {delay}"
        )
