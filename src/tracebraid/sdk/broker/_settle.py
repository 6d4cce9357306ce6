"""What becomes of one delivery: acknowledged, delivered again after its back-off, or parked.

Every adapter decides alike (the ``Broker`` contract); each carries the decision out
with its own broker's means (RabbitMQ ``reject``, JetStream ``nak(delay)``, Redis
``XCLAIM``, a Kafka retry topic). ``settle`` runs the handler and decides;
``after_failure`` is the decision alone, for an adapter that runs the handler itself.

Example::

    >>> failed = Delivery("orders", "reserve-inventory", "evt_1", b"", {}, delivery_count=1)
    >>> after_failure(failed, TimeoutError("late"), RetryPolicy(3, (0.2,)))
    Redelivery(attempt=2, backoff=0.2)
    >>> after_failure(failed, TimeoutError("late"), RetryPolicy(1)).headers
    {'x-dead-letter-group': 'reserve-inventory', 'x-dead-letter-reason': 'TimeoutError: late'}
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from tracebraid.sdk.broker.base import (
    DEAD_LETTER_GROUP_HEADER,
    DEAD_LETTER_REASON_HEADER,
    Delivery,
    Handler,
    Headers,
    RetryPolicy,
    dead_letter_destination,
)

__all__ = [
    "ACKNOWLEDGE",
    "Acknowledge",
    "DeadLetter",
    "Redelivery",
    "Settlement",
    "after_failure",
    "settle",
]


@dataclass(frozen=True, slots=True)
class Acknowledge:
    """The handler returned: acknowledge the delivery."""


ACKNOWLEDGE = Acknowledge()


@dataclass(frozen=True, slots=True)
class Redelivery:
    """The handler raised, attempts are left: deliver again as ``attempt`` after ``backoff`` s."""

    attempt: int
    backoff: float


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """The last attempt failed: publish the message to ``destination`` with ``headers``.

    ``headers`` are the delivery's own plus the dead-letter group and reason.
    """

    destination: str
    headers: Headers


Settlement = Acknowledge | Redelivery | DeadLetter


def after_failure(
    delivery: Delivery, error: Exception, retry: RetryPolicy
) -> Redelivery | DeadLetter:
    """Where ``delivery`` goes after its handler raised ``error``, by ``retry``'s rules."""
    attempt = delivery.delivery_count
    if not retry.is_final(attempt):
        return Redelivery(attempt + 1, retry.delay_after(attempt))
    headers = {
        **delivery.headers,
        DEAD_LETTER_GROUP_HEADER: delivery.group,
        DEAD_LETTER_REASON_HEADER: f"{type(error).__name__}: {error}",
    }
    return DeadLetter(dead_letter_destination(delivery.destination), headers)


async def settle(
    handler: Handler, delivery: Delivery, retry: RetryPolicy, *, delay: float = 0.0
) -> Settlement:
    """Hold ``delivery`` back ``delay`` seconds, run ``handler`` on it, say what becomes of it."""
    if delay > 0:
        await asyncio.sleep(delay)
    try:
        await handler(delivery)
    except Exception as exc:  # the handler's failure is the broker's signal to retry
        return after_failure(delivery, exc, retry)
    return ACKNOWLEDGE
