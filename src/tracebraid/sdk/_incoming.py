"""What a consume is handed: an ``Extracted`` (from a carrier or an envelope) or a bare
``MessageContext``, and the parent span context each gives the consumer span.

Example::

    >>> from tracebraid.sdk.propagation import extract
    >>> message, parent, no_parent = resolve(extract({"x-event-id": "evt_1"}))
    >>> message.event_id, parent, no_parent.reason
    ('evt_1', None, 'the message carries no traceparent')
    >>> common(["order_441", "order_441"]), common(["order_441", "order_442"])
    ('order_441', None)
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import trace

from tracebraid.sdk.context import MessageContext
from tracebraid.sdk.propagation import Extracted, NoParent, remote_span_context

__all__ = ["Incoming", "common", "resolve"]

Incoming = Extracted | MessageContext


def resolve(
    incoming: Incoming,
) -> tuple[MessageContext, trace.SpanContext | None, NoParent | None]:
    """(the message, its creation span context or None, why there is none)."""
    if isinstance(incoming, Extracted):
        return incoming.context, incoming.span_context, incoming.no_parent
    parent = remote_span_context(incoming)
    if parent is None:
        return incoming, None, NoParent("the message carries no trace context")
    return incoming, parent, None


def common(values: Sequence[str | None]) -> str | None:
    """The value every item of a batch shares, else None."""
    first = values[0] if values else None
    return first if all(v == first for v in values) else None
