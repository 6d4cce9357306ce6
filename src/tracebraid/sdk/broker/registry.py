"""Brokers by name: what ``tracebraid demo --broker NAME`` and scripts open.

Each real broker has a loopback default URL; the adapter is returned unstarted
(``async with`` it), so a missing extra or an unreachable server is reported when it
starts, with the address tried.

Example::

    async with open_broker("rabbitmq") as broker:   # amqp://guest:guest@127.0.0.1:5672/
        run = await run_order_flow(broker, exporter)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tracebraid.errors import ConfigurationError
from tracebraid.sdk.broker.base import Broker
from tracebraid.sdk.broker.kafka import DEFAULT_KAFKA_URL, KafkaBroker
from tracebraid.sdk.broker.memory import InMemoryBroker
from tracebraid.sdk.broker.nats_jetstream import DEFAULT_NATS_URL, NatsJetStreamBroker
from tracebraid.sdk.broker.rabbitmq import DEFAULT_RABBITMQ_URL, RabbitMQBroker
from tracebraid.sdk.broker.redis_streams import DEFAULT_REDIS_URL, RedisStreamsBroker

__all__ = ["BROKER_NAMES", "DEFAULT_URLS", "open_broker"]

DEFAULT_URLS: Mapping[str, str] = {
    "rabbitmq": DEFAULT_RABBITMQ_URL,
    "redis": DEFAULT_REDIS_URL,
    "nats": DEFAULT_NATS_URL,
    "kafka": DEFAULT_KAFKA_URL,
}
"""Where each real broker is looked for when no URL is given: loopback, default ports."""

_FACTORIES: Mapping[str, Callable[[str, bool], Broker]] = {
    "rabbitmq": lambda url, temporary: RabbitMQBroker(url, temporary=temporary),
    "redis": lambda url, temporary: RedisStreamsBroker(url, temporary=temporary),
    "nats": lambda url, temporary: NatsJetStreamBroker(url, temporary=temporary),
    "kafka": lambda url, temporary: KafkaBroker(url, temporary=temporary),
}

BROKER_NAMES = ("memory", *_FACTORIES)
"""Every name ``open_broker`` knows: ``memory`` and the real brokers."""


def open_broker(name: str, url: str | None = None, *, temporary: bool = False) -> Broker:
    """The broker called ``name`` at ``url`` (default: ``DEFAULT_URLS[name]``), not yet started.

    ``temporary=True`` makes the adapter delete the exchanges, queues, streams and topics it
    declared when it closes, so a demo or test run leaves the server as it found it.
    """
    key = name.strip().lower()
    if key == "memory":
        if url is not None:
            raise ConfigurationError(f"the in-memory broker takes no URL, got {url!r}")
        return InMemoryBroker()
    factory = _FACTORIES.get(key)
    if factory is None:
        raise ConfigurationError(
            f"unknown broker {name!r}; choose one of: {', '.join(BROKER_NAMES)}"
        )
    return factory(url or DEFAULT_URLS[key], temporary)
