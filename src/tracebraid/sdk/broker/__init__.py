"""Broker adapters: the ``Broker`` interface, the in-process broker, and the traced layer.

The real brokers' adapters (RabbitMQ, Redis Streams, NATS JetStream, Kafka) import
their client on ``start()``; a missing extra raises ``MissingExtraError``.
"""

from tracebraid.sdk.broker.base import (
    DEAD_LETTER_GROUP_HEADER,
    DEAD_LETTER_REASON_HEADER,
    DEFAULT_RETRY,
    Broker,
    Delivery,
    Handler,
    Headers,
    RetryPolicy,
    dead_letter_destination,
)
from tracebraid.sdk.broker.bus import EventBus, EventHandler, Observer, Processed, Received
from tracebraid.sdk.broker.forwarding import ForwardingBroker
from tracebraid.sdk.broker.kafka import KafkaBroker
from tracebraid.sdk.broker.memory import InMemoryBroker
from tracebraid.sdk.broker.nats_jetstream import NatsJetStreamBroker
from tracebraid.sdk.broker.rabbitmq import RabbitMQBroker
from tracebraid.sdk.broker.redis_streams import RedisStreamsBroker
from tracebraid.sdk.broker.registry import BROKER_NAMES, DEFAULT_URLS, open_broker
from tracebraid.sdk.broker.structured import StructuredBroker

__all__ = [
    "BROKER_NAMES",
    "DEAD_LETTER_GROUP_HEADER",
    "DEAD_LETTER_REASON_HEADER",
    "DEFAULT_RETRY",
    "DEFAULT_URLS",
    "Broker",
    "Delivery",
    "EventBus",
    "EventHandler",
    "ForwardingBroker",
    "Handler",
    "Headers",
    "InMemoryBroker",
    "KafkaBroker",
    "NatsJetStreamBroker",
    "Observer",
    "Processed",
    "RabbitMQBroker",
    "Received",
    "RedisStreamsBroker",
    "RetryPolicy",
    "StructuredBroker",
    "dead_letter_destination",
    "open_broker",
]
