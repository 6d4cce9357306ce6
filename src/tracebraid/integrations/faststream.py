"""FastStream: the seed's identities through any FastStream broker, as a middleware.

FastStream's own OpenTelemetry middleware (``faststream.opentelemetry``, per broker
``KafkaTelemetryMiddleware``, ``RabbitTelemetryMiddleware``, ``NatsTelemetryMiddleware``,
``RedisTelemetryMiddleware``) makes the spans but carries only W3C trace context and
baggage, with propagators of its own. ``TracebraidMiddleware``, placed before it, carries
the rest::

    tracebraid.instrument(provider)
    broker = RabbitBroker(url, middlewares=[
        TracebraidMiddleware,                               # first: it wraps the other
        RabbitTelemetryMiddleware(tracer_provider=provider),
    ])

- **publish**: the message gets tracebraid's headers (``x-event-id``, a new event ID
  unless it has one; ``x-correlation-id``, the workflow's; ``x-causation-id``, the event
  being processed; ``x-event-name`` when it names its event), and the producer spans
  FastStream's telemetry starts for it ("create" and "publish") get the same identities.
  FastStream's own ``correlation_id`` (one per message) is not the workflow's: the
  spans' ``messaging.message.conversation_id`` is the workflow's correlation ID.
- **consume**: the consumer span gets what the message carried (event ID, correlation,
  causation, event name, ``x-attempt`` or RabbitMQ's ``x-delivery-count`` + 1), the
  **business step** (``tracebraid.step``: the handler's name, ``_`` as ``-``), and a
  start marker when it runs past the span processor's threshold; the message is the one
  being processed, so what the handler publishes names it as its cause.

With the propagator off (``tracebraid.instrument(propagator=False)``) the middleware
carries nothing, and the lint reports the broken correlation (TB201).

Example::

    >>> from opentelemetry import propagate
    >>> saved = propagate.get_global_textmap()
    >>> carrying()
    False
    >>> from tracebraid.instrument import install_propagator
    >>> install_propagator()
    >>> carrying()
    True
    >>> propagate.set_global_textmap(saved)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

from tracebraid import semconv
from tracebraid.errors import MissingExtraError
from tracebraid.instrument import uses_tracebraid_propagator
from tracebraid.model import AttributeValue
from tracebraid.propagator import TracebraidPropagator
from tracebraid.sdk import carriers as h
from tracebraid.sdk.context import new_event_id
from tracebraid.sdk.stock import carried, expecting, received, sending

try:
    from faststream import BaseMiddleware
except ImportError as error:  # pragma: no cover - depends on the environment
    raise MissingExtraError("faststream", "faststream") from error

__all__ = ["TracebraidMiddleware", "carrying", "step_name"]

_PROPAGATOR = TracebraidPropagator()


def carrying() -> bool:
    """True when tracebraid's propagator is in OpenTelemetry's global propagator (what
    ``tracebraid.instrument()`` installs): only then does the middleware carry anything."""
    return uses_tracebraid_propagator(propagate.get_global_textmap())


def step_name(handler_name: str) -> str:
    """The business step a handler function stands for: ``authorize_payment`` is
    ``authorize-payment``."""
    return handler_name.strip("_").replace("_", "-")


def _handler_name(subscriber: object) -> str | None:
    """The name of the one handler a FastStream subscriber calls (``None`` for several)."""
    calls: Any = getattr(subscriber, "calls", None)  # a CallsCollection, not a list
    try:
        found = list(calls)
    except TypeError:
        return None
    if len(found) != 1:
        return None
    name = getattr(found[0], "name", None)
    return name if isinstance(name, str) and name else None


class TracebraidMiddleware(BaseMiddleware):
    """Carries tracebraid's identities through a FastStream broker; list it before the
    broker's ``TelemetryMiddleware`` (FastStream runs the first one outermost)."""

    async def consume_scope(self, call_next: Callable[[Any], Awaitable[Any]], msg: Any) -> Any:
        if not carrying():
            return await call_next(msg)
        headers = getattr(msg, "headers", None)
        ctx = _PROPAGATOR.extract(
            headers if isinstance(headers, Mapping) else {}, otel_context.get_current()
        )
        incoming = received(ctx)
        if incoming is None:
            return await call_next(msg)
        attributes: dict[str, AttributeValue] = {}
        name = _handler_name(self.context.get_local("handler_"))
        if name is not None:
            attributes[semconv.STEP] = step_name(name)
        # The span processor restores the message on the consumer span FastStream's
        # telemetry starts next, and leaves that span current: put the context back after.
        token = otel_context.attach(ctx)
        try:
            with expecting(incoming, attributes):
                return await call_next(msg)
        finally:
            otel_context.detach(token)

    async def publish_scope(self, call_next: Callable[[Any], Awaitable[Any]], cmd: Any) -> Any:
        if not carrying():
            return await call_next(cmd)
        headers = getattr(cmd, "headers", None)
        if not isinstance(headers, dict):
            return await call_next(cmd)
        message = carried(headers)
        if message.event_id is None:
            headers[h.EVENT_ID_HEADER] = new_event_id()
        # Inject as for a message sent from here (not from a producer span): the
        # correlation and cause come from what is being processed.
        _PROPAGATOR.inject(headers, trace.set_span_in_context(trace.INVALID_SPAN))
        if headers.get(h.CAUSATION_ID_HEADER) == headers.get(h.EVENT_ID_HEADER):
            # The message being processed, sent again (a retry): not its own cause.
            del headers[h.CAUSATION_ID_HEADER]
        with sending(carried(headers)):
            return await call_next(cmd)
