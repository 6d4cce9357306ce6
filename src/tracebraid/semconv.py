"""Attribute names: OpenTelemetry messaging conventions first, then ``tracebraid.*``.

Instrumentations in the wild mix convention generations, so each identity has one
canonical key (what tracebraid writes) and the older or framework keys it also
reads (``ALIASES``). ``first_of`` is the one place that resolves them.

Example::

    >>> first_of({"messaging.destination": "orders"}, DESTINATION)
    'orders'
"""

from __future__ import annotations

from collections.abc import Mapping

from tracebraid.model import AttributeValue

__all__ = [
    "ALIASES",
    "ATTEMPT",
    "CAUSATION_ID",
    "CONSUMER_GROUP",
    "CORRELATION_ID",
    "DEAD_LETTER",
    "DESTINATION",
    "EVENT_NAME",
    "MESSAGE_ID",
    "MESSAGING_SYSTEM",
    "OPERATION_TYPE",
    "OUTCOME",
    "SAMPLING_KEEP",
    "SAMPLING_PARTIAL",
    "SAMPLING_RATIO",
    "START_MARKER_EVENT",
    "START_MARKER_SCOPE",
    "STEP",
    "first_of",
]

# -- OpenTelemetry messaging semantic conventions (current generation) --
MESSAGING_SYSTEM = "messaging.system"
DESTINATION = "messaging.destination.name"
OPERATION_TYPE = "messaging.operation.type"  # create | send | receive | process | settle
MESSAGE_ID = "messaging.message.id"  # tracebraid's event ID
CORRELATION_ID = "messaging.message.conversation_id"
CONSUMER_GROUP = "messaging.consumer.group.name"  # tracebraid's consumer name
BATCH_COUNT = "messaging.batch.message_count"

# -- tracebraid's own, where no convention exists --
CAUSATION_ID = "tracebraid.causation_id"
EVENT_NAME = "tracebraid.event_name"
ATTEMPT = "tracebraid.attempt"
OUTCOME = "tracebraid.outcome"  # ok | error | retry | dead_letter
STEP = "tracebraid.step"  # the business step name of a consumer or step span
DEAD_LETTER = "tracebraid.dead_letter"  # True on the span that moved a message to a DLQ
BACKOFF_MS = "tracebraid.backoff_ms"  # the delay before the next attempt, when known
# Workflow sampling (``tracebraid.WorkflowSampler``, docs/sampling.md): the ratio a kept
# workflow was sampled at (absent at 100 %), and True on a span recorded in a workflow
# that was otherwise sampled out (a retry or failure kept by ``keep_retries``).
SAMPLING_RATIO = "tracebraid.sampling.ratio"
SAMPLING_PARTIAL = "tracebraid.sampling.partial"
# Set by the SDK on a failed attempt it re-records after the fact: asks the sampler to
# keep it ("failure"); a sampler that does not know the key ignores it.
SAMPLING_KEEP = "tracebraid.sampling.keep"

# A start marker is a tiny span exported when processing *begins*: OpenTelemetry
# exports a span only when it ends, and work that never ends must still be visible.
START_MARKER_SCOPE = "tracebraid.start_marker"
START_MARKER_EVENT = "tracebraid.started"
MARKER_FOR_SPAN = "tracebraid.marker.span_id"  # the span ID the marker announces

# Each tuple: the canonical key first, then the older keys, no key twice.
ALIASES: Mapping[str, tuple[str, ...]] = {
    DESTINATION: (
        DESTINATION,
        "messaging.destination",
        "messaging.rabbitmq.destination.routing_key",
    ),
    OPERATION_TYPE: (OPERATION_TYPE, "messaging.operation"),
    MESSAGE_ID: (MESSAGE_ID, "messaging.message_id"),
    CORRELATION_ID: (CORRELATION_ID, "messaging.conversation_id"),
    CONSUMER_GROUP: (
        CONSUMER_GROUP,
        "messaging.kafka.consumer.group",
        "messaging.kafka.consumer_group",
    ),
    # celery.retries counts retries (0-based), so the analysis reads it separately.
    ATTEMPT: (ATTEMPT,),
}


def first_of(attributes: Mapping[str, AttributeValue], canonical: str) -> AttributeValue | None:
    """The value of ``canonical`` in ``attributes``, falling back to its older aliases."""
    for key in ALIASES.get(canonical, (canonical,)):
        value = attributes.get(key)
        if value is not None and value != "":
            return value
    return None
