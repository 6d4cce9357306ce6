"""Structured mode: the context travels in a JSON envelope in the body, not in headers.

For brokers (or paths through them: bridges, connectors, old proxies) that drop
headers. ``StructuredBroker`` wraps any ``Broker``; ``publish`` moves the context
headers into the seed's envelope (``tracebraid.sdk.envelope``) around the payload,
and each delivery gets them back as headers, so the traced ``EventBus`` above it
works unchanged. The body is one JSON object::

    {"eventId": "evt_…", "traceId": "…", "correlationId": "order_441",
     "parentSpanId": "…", "eventName": "payment.authorized", "traceparent": "00-…",
     "baggage": "correlation_id=order_441", "headers": {"x-tenant": "acme"},
     "data": {"order_id": "order_441"}}

``data`` holds a JSON payload as JSON; any other payload is ``dataBase64``. Other
headers ride in ``headers``. A body that is not an envelope (a producer that does
not use structured mode) is delivered as it came.

Example::

    async with StructuredBroker(RabbitMQBroker(url)) as broker:
        bus = EventBus(broker)
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import replace

from tracebraid.sdk.broker.base import Delivery, Headers
from tracebraid.sdk.broker.forwarding import ForwardingBroker
from tracebraid.sdk.carriers import ATTEMPT_HEADER
from tracebraid.sdk.envelope import ENVELOPE_FIELDS, extract_envelope, to_envelope
from tracebraid.sdk.propagation import extract, inject

__all__ = ["StructuredBroker", "close_envelope", "open_envelope"]

_CONTEXT_HEADERS = frozenset({*ENVELOPE_FIELDS.values(), ATTEMPT_HEADER})
_DATA, _DATA_BASE64, _HEADERS = "data", "dataBase64", "headers"


def close_envelope(payload: bytes, headers: Headers) -> bytes:
    """The envelope body for ``payload`` with the context (and other headers) of ``headers``."""
    envelope = to_envelope(extract(headers).context)
    others = {k: v for k, v in headers.items() if k.lower() not in _CONTEXT_HEADERS}
    if others:
        envelope[_HEADERS] = others
    try:
        envelope[_DATA] = json.loads(payload)
    except ValueError:
        envelope[_DATA_BASE64] = base64.b64encode(payload).decode("ascii")
    return json.dumps(envelope, separators=(",", ":")).encode()


def open_envelope(body: bytes, headers: Headers) -> tuple[bytes, dict[str, str]] | None:
    """The payload and headers inside an envelope body; ``None`` when ``body`` is not one.

    Headers the broker itself added (``headers``, e.g. dead-letter ones) are kept.
    """
    try:
        envelope = json.loads(body)
    except ValueError:
        return None
    if not isinstance(envelope, dict) or not (_DATA in envelope or _DATA_BASE64 in envelope):
        return None
    if _DATA in envelope:
        payload = json.dumps(envelope[_DATA], separators=(",", ":")).encode()
    else:
        encoded = envelope[_DATA_BASE64]
        try:
            payload = base64.b64decode(encoded if isinstance(encoded, str) else "", validate=True)
        except (binascii.Error, ValueError):
            return None
    restored: dict[str, str] = dict(headers)
    carried = envelope.get(_HEADERS)
    if isinstance(carried, Mapping):
        restored |= {str(k): str(v) for k, v in carried.items()}
    inject(extract_envelope(envelope).context, restored)
    return payload, restored


class StructuredBroker(ForwardingBroker):
    """Any ``Broker``, carrying context in a JSON envelope body instead of headers."""

    async def publish(
        self, destination: str, payload: bytes, headers: Headers, *, message_id: str
    ) -> None:
        """Publish the envelope, with no headers at all."""
        body = close_envelope(payload, headers)
        await self.inner.publish(destination, body, {}, message_id=message_id)

    def incoming(self, delivery: Delivery) -> Delivery:
        """The delivery with the envelope's payload and context headers restored."""
        opened = open_envelope(delivery.payload, delivery.headers)
        if opened is None:
            return delivery
        payload, headers = opened
        return replace(delivery, payload=payload, headers=headers)
