"""The broker adapter interface: what every broker (in-memory, RabbitMQ, Redis, NATS, Kafka) offers.

An adapter is a small class over the broker's own client with one job: move a
message, its headers and the broker's delivery count in and out. It knows
nothing about spans; the traced layer (``EventBus`` in ``tracebraid.sdk.broker.bus``)
sits on top of any adapter and turns headers into context and deliveries into spans.

The contract every adapter keeps:

- ``publish`` hands one message to a destination (a topic, an exchange, a
  stream, a subject). Every consumer group subscribed to the destination gets
  its own copy (fan-out); consumers that share a group compete for copies.
- ``subscribe`` calls ``handler`` with a ``Delivery`` for each copy. A handler
  that returns acknowledges the delivery. A handler that raises asks for a
  redelivery after ``retry.delay_after(attempt)`` seconds, with the delivery
  count incremented, until ``retry.max_attempts`` attempts have failed; the
  message then moves to ``dead_letter_destination(destination)`` with its
  headers intact (so its context continues) plus ``DEAD_LETTER_GROUP_HEADER`` and
  ``DEAD_LETTER_REASON_HEADER``.
- Delivery is at least once: a handler may see a message again after a crash.
- ``delivery_count`` is the broker's own count where it keeps one (RabbitMQ
  ``x-delivery-count``, the Redis pending-entries counter, JetStream
  ``num_delivered``); where it keeps none the adapter counts in a header.
- ``delay`` holds each delivery back for a while before the handler sees it,
  so demos and tests can make one consumer lag behind its siblings.

Header values are ``str``: every broker above carries text headers, and the
adapters that carry bytes (Kafka, Redis) encode and decode UTF-8 at their edge.

Example::

    async with InMemoryBroker() as broker:
        async def reserve(delivery: Delivery) -> None:
            print(delivery.message_id, delivery.delivery_count)

        await broker.subscribe("orders", "reserve-inventory", reserve)
        await broker.publish("orders", b"{}", {}, message_id="evt_1")
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

from tracebraid.errors import ConfigurationError

__all__ = [
    "DEAD_LETTER_GROUP_HEADER",
    "DEAD_LETTER_REASON_HEADER",
    "DEAD_LETTER_SUFFIX",
    "DEFAULT_RETRY",
    "Broker",
    "Delivery",
    "Handler",
    "Headers",
    "RetryPolicy",
    "dead_letter_destination",
]

Headers = Mapping[str, str]
"""Message headers as text; adapters for byte-header brokers encode at their edge."""

DEAD_LETTER_SUFFIX = ".dlq"
DEAD_LETTER_GROUP_HEADER = "x-dead-letter-group"
"""Set on a dead-lettered message: the consumer group whose attempts ran out."""
DEAD_LETTER_REASON_HEADER = "x-dead-letter-reason"
"""Set on a dead-lettered message: the last attempt's error, as ``Type: message``."""


def dead_letter_destination(destination: str) -> str:
    """Where messages go after their last failed attempt: ``orders`` -> ``orders.dlq``."""
    return destination + DEAD_LETTER_SUFFIX


@dataclass(frozen=True, slots=True)
class Delivery:
    """One copy of one message, handed to one consumer group, as the broker delivered it.

    ``delivery_count`` is 1 the first time this group sees the message, 2 on the
    first redelivery, and so on: it is the attempt number as the broker counts it.
    """

    destination: str
    group: str
    message_id: str
    payload: bytes
    headers: Headers
    delivery_count: int = 1

    @property
    def redelivered(self) -> bool:
        """True when the broker delivered this message to this group before."""
        return self.delivery_count > 1


Handler = Callable[[Delivery], Awaitable[None]]
"""Processes one delivery; returning acknowledges it, raising asks for a redelivery."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often a failed delivery is retried, and how long to wait before each retry.

    ``backoff[i]`` is the wait in seconds after attempt ``i + 1`` failed; the last
    value repeats for later attempts. After ``max_attempts`` failed attempts the
    message is dead-lettered.

    Example::

        >>> policy = RetryPolicy(max_attempts=3, backoff=(0.2, 0.4))
        >>> policy.delay_after(1), policy.delay_after(2), policy.is_final(3)
        (0.2, 0.4, True)
    """

    max_attempts: int = 3
    backoff: tuple[float, ...] = (0.0,)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError(
                f"RetryPolicy.max_attempts must be at least 1, got {self.max_attempts}; "
                "use 1 for no retries"
            )
        if not self.backoff or any(delay < 0 for delay in self.backoff):
            raise ConfigurationError(
                f"RetryPolicy.backoff must be a non-empty tuple of seconds >= 0, "
                f"got {self.backoff!r}"
            )

    @classmethod
    def exponential(
        cls, initial: float, *, factor: float = 2.0, max_attempts: int = 3
    ) -> RetryPolicy:
        """Back-off ``initial``, ``initial * factor``, ... for each retry of ``max_attempts``."""
        steps = max(1, max_attempts - 1)
        return cls(max_attempts, tuple(initial * factor**i for i in range(steps)))

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based) before the next one."""
        return self.backoff[min(max(attempt, 1), len(self.backoff)) - 1]

    def is_final(self, attempt: int) -> bool:
        """True when a failure of attempt ``attempt`` dead-letters the message."""
        return attempt >= self.max_attempts

    def scaled(self, factor: float) -> RetryPolicy:
        """The same policy with every back-off multiplied by ``factor`` (fast tests, demos)."""
        return RetryPolicy(self.max_attempts, tuple(delay * factor for delay in self.backoff))


DEFAULT_RETRY = RetryPolicy()
"""Three attempts, retried at once: what a consumer gets unless it asks otherwise."""


@runtime_checkable
class Broker(Protocol):
    """A message broker as tracebraid needs it: publish, subscribe, redeliver, dead-letter.

    Adapters are async context managers: ``async with`` starts (connects) and
    closes them. ``system`` is the ``messaging.system`` attribute value
    (``rabbitmq``, ``redis``, ``nats``, ``kafka``; ``memory`` for the in-process one).
    """

    @property
    def system(self) -> str:
        """The ``messaging.system`` value for spans over this broker."""
        ...

    async def start(self) -> None:
        """Connect; calling it twice is harmless."""
        ...

    async def close(self) -> None:
        """Stop every consumer and disconnect; unacknowledged deliveries stay with the broker."""
        ...

    async def publish(
        self, destination: str, payload: bytes, headers: Headers, *, message_id: str
    ) -> None:
        """Hand one message to ``destination``; returns once the broker has accepted it."""
        ...

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
        """Consume ``destination`` as one member of consumer group ``group``.

        ``concurrency`` bounds the deliveries this member processes at once;
        ``delay`` holds each delivery back that many seconds before ``handler``
        sees it. The group receives messages published after its first member
        subscribed.
        """
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
