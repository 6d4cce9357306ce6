"""A consumer process that takes one delivery and hangs on it until it is killed (SIGKILL).

Run by the crash tests: ``python killed_consumer.py BROKER URL DESTINATION GROUP``.
It prints ``ready`` once subscribed, then ``processing <attempt> <message id>`` when a
delivery reaches its handler, and never acknowledges it.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

from tracebraid.sdk.broker import (
    Broker,
    Delivery,
    KafkaBroker,
    NatsJetStreamBroker,
    RabbitMQBroker,
    RedisStreamsBroker,
)

# Short redelivery windows, as the test's own adapter uses.
BROKERS: dict[str, Callable[[str], Broker]] = {
    "rabbitmq": lambda url: RabbitMQBroker(url),
    "redis": lambda url: RedisStreamsBroker(url, claim_after=1.0),
    "nats": lambda url: NatsJetStreamBroker(url, ack_wait=2.0),
    "kafka": lambda url: KafkaBroker(url, session_timeout=2.0),
}


async def consume(name: str, url: str, destination: str, group: str) -> None:
    async with BROKERS[name](url) as broker:

        async def hang(delivery: Delivery) -> None:
            print("processing", delivery.delivery_count, delivery.message_id, flush=True)
            await asyncio.Event().wait()

        await broker.subscribe(destination, group, hang)
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(consume(*sys.argv[1:5]))
