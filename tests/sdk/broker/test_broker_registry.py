"""Brokers by name, as ``tracebraid demo --broker NAME`` opens them."""

from __future__ import annotations

import sys

import pytest

from tracebraid.errors import ConfigurationError, MissingExtraError
from tracebraid.sdk.broker import (
    BROKER_NAMES,
    DEFAULT_URLS,
    Broker,
    InMemoryBroker,
    KafkaBroker,
    NatsJetStreamBroker,
    RabbitMQBroker,
    RedisStreamsBroker,
    open_broker,
)


@pytest.mark.parametrize(
    ("name", "kind", "url"),
    [
        ("rabbitmq", RabbitMQBroker, "amqp://guest:guest@127.0.0.1:5672/"),
        ("redis", RedisStreamsBroker, "redis://127.0.0.1:6379/0"),
        ("nats", NatsJetStreamBroker, "nats://127.0.0.1:4222"),
        ("kafka", KafkaBroker, "127.0.0.1:9092"),
    ],
)
def test_each_real_broker_defaults_to_loopback(name: str, kind: type[Broker], url: str) -> None:
    broker = open_broker(name)
    assert isinstance(broker, kind) and isinstance(broker, Broker)
    assert DEFAULT_URLS[name] == url
    assert broker.system == ("redis" if name == "redis" else name)


def test_a_url_and_temporary_reach_the_adapter() -> None:
    broker = open_broker("RabbitMQ", "amqp://u:p@10.0.0.5/", temporary=True)
    assert isinstance(broker, RabbitMQBroker)
    assert (broker.url, broker.temporary) == ("amqp://u:p@10.0.0.5/", True)
    kafka = open_broker("kafka", "kafka://10.0.0.5:9092", temporary=True)
    assert isinstance(kafka, KafkaBroker)
    assert (kafka.bootstrap_servers, kafka.temporary) == ("10.0.0.5:9092", True)


def test_memory_is_a_broker_name_too_and_takes_no_url() -> None:
    assert isinstance(open_broker("memory"), InMemoryBroker)
    with pytest.raises(ConfigurationError, match="takes no URL"):
        open_broker("memory", "memory://x")


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match="rabbitmq, redis, nats, kafka") as caught:
        open_broker("sqs")
    assert "'sqs'" in str(caught.value)
    assert set(BROKER_NAMES) == {"memory", "rabbitmq", "redis", "nats", "kafka"}


@pytest.mark.parametrize(
    ("name", "client"),
    [
        ("rabbitmq", "aio_pika"),
        ("redis", "redis.asyncio"),
        ("nats", "nats.aio.client"),
        ("kafka", "aiokafka"),
    ],
)
async def test_a_missing_client_names_the_extra(
    name: str, client: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, client, None)
    with pytest.raises(MissingExtraError, match=rf"tracebraid\[{name}\]"):
        await open_broker(name).start()


def test_naming_a_broker_imports_no_client() -> None:
    clients = ("aio_pika", "redis", "nats", "aiokafka")
    before = {name for name in clients if name in sys.modules}
    for name in BROKER_NAMES:
        open_broker(name)
    assert {name for name in clients if name in sys.modules} == before
