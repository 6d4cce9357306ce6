"""Labels that read like the business, from what stock instrumentations record.

Stock instrumentations name things by transport, not by business: aio-pika records
a destination as ``exchange,routing_key`` (``"orders,"``, ``"webhooks,,"``), and
most never set an event name. Every view (the tree, the web UI's ``labels.js``,
which follows the same rules) labels them here:

- a destination ``exchange,routing_key`` reads ``exchange → routing key``; empty
  parts are dropped (``"orders,"`` is ``orders``), an empty exchange is the
  broker's default one;
- an event without a name is called by where it went and who took it:
  ``message to orders → reserve-inventory``.

Example::

    >>> destination_label("webhooks,order.shipped")
    'webhooks → order.shipped'
    >>> destination_label("webhooks,,")
    'webhooks'
    >>> event_label(None, "orders,", ["reserve-inventory"])
    'message to orders → reserve-inventory'
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["destination_label", "event_label", "step_label"]


def destination_label(destination: str | None) -> str | None:
    """A destination as people say it; ``None`` stays ``None``."""
    if destination is None or "," not in destination:
        return destination
    exchange, _, rest = destination.partition(",")
    routing_key = next((part for part in rest.split(",") if part.strip()), "")
    exchange = exchange.strip()
    if not routing_key:
        return exchange or "(default exchange)"
    return f"{exchange or '(default exchange)'} → {routing_key.strip()}"


def step_label(step: str, destination: str | None) -> str:
    """A step named after its destination, that destination read as one.

    The destination may be the exchange alone (the vocabulary reads aio-pika's
    ``exchange,routing_key`` as its exchange) while the span name keeps both:

    >>> step_label("orders,order.placed receive", "orders,order.placed")
    'orders → order.placed receive'
    >>> step_label("orders,order.placed receive", "orders")
    'orders → order.placed receive'
    """
    if not destination:
        return step
    if "," in destination and destination in step:
        return step.replace(destination, destination_label(destination) or destination)
    first, _, rest = step.partition(" ")
    if first.startswith(destination + ","):
        named = destination_label(first) or first
        return f"{named} {rest}" if rest else named
    return step


def event_label(event_name: str | None, destination: str | None, steps: Sequence[str] = ()) -> str:
    """The event's name, else ``message to <destination> → <the steps that took it>``."""
    if event_name:
        return event_name
    where = destination_label(destination)
    taken = ", ".join(dict.fromkeys(step_label(step, destination) for step in steps if step))
    label = f"message to {where}" if where else "message"
    return f"{label} → {taken}" if taken else label
