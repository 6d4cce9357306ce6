"""Broker adapters: the ``Broker`` interface, the in-process broker, and the traced layer."""

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
from tracebraid.sdk.broker.memory import InMemoryBroker

__all__ = [
    "DEAD_LETTER_GROUP_HEADER",
    "DEAD_LETTER_REASON_HEADER",
    "DEFAULT_RETRY",
    "Broker",
    "Delivery",
    "EventBus",
    "EventHandler",
    "Handler",
    "Headers",
    "InMemoryBroker",
    "Observer",
    "Processed",
    "Received",
    "RetryPolicy",
    "dead_letter_destination",
]
