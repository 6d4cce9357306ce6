"""The same workflow as each generation of instrumentation would have written it.

``speak(spans, generation)`` rewrites the spans tracebraid's SDK wrote into another
spelling of the same facts: the older OpenTelemetry messaging keys, Celery's retry
count instead of tracebraid's attempt, no consumer group (the vocabulary falls back
to the queue or the service), and every attribute as a string (the OpenTelemetry
Collector's ClickHouse exporter keeps them so). ``GENERATIONS`` lists the rewrites;
any subset composes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence

from tracebraid import semconv
from tracebraid.model import Attributes, AttributeValue, Span
from tracebraid.store.clickhouse.codec import TYPES_KEY, encode_attributes

__all__ = ["GENERATIONS", "as_text", "speak"]

GENERATIONS = ("older-keys", "celery-retries", "no-group", "strings")

_OLDER = {
    semconv.DESTINATION: "messaging.destination",
    semconv.MESSAGE_ID: "messaging.message_id",
    semconv.OPERATION_TYPE: "messaging.operation",
    semconv.CORRELATION_ID: "messaging.conversation_id",
    semconv.CONSUMER_GROUP: "messaging.kafka.consumer.group",
}


def as_text(attributes: Attributes) -> dict[str, str]:
    """Every value as the Collector renders it, with no record of its type."""
    encoded = encode_attributes(attributes)
    encoded.pop(TYPES_KEY, None)
    return encoded


def _rewrite(attributes: Attributes, generations: Collection[str]) -> Attributes:
    out: dict[str, AttributeValue] = dict(attributes)
    if "older-keys" in generations:
        out = {_OLDER.get(key, key): value for key, value in out.items()}
    if "celery-retries" in generations and semconv.ATTEMPT in out:
        attempt = out.pop(semconv.ATTEMPT)
        if isinstance(attempt, int) and not isinstance(attempt, bool):
            out["celery.retries"] = attempt - 1
    if "no-group" in generations:
        for key in semconv.ALIASES[semconv.CONSUMER_GROUP]:
            out.pop(key, None)
    if "strings" in generations:
        out = dict(as_text(out))
    return out


def speak(spans: Sequence[Span], generations: Collection[str]) -> list[Span]:
    """``spans`` as written by instrumentation of ``generations`` (see the module docstring)."""
    return [
        dataclasses.replace(
            span,
            attributes=_rewrite(span.attributes, generations),
            links=tuple(
                dataclasses.replace(k, attributes=_rewrite(k.attributes, generations))
                for k in span.links
            ),
        )
        for span in spans
    ]
