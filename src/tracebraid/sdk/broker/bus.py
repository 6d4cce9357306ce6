"""The traced layer over any ``Broker``: business events in, PRODUCER and CONSUMER spans out.

``EventBus`` is one service's view of a broker. ``publish`` opens a PRODUCER span,
assigns the event ID, takes correlation and causation from the current context and
writes them all into the message headers. A consumer registered with ``consumer``
gets a CONSUMER span per delivery, named after its business step, child of (and
linked to) the producer, with the broker's delivery count as its attempt; a failed
attempt is recorded as a retry with its back-off, the last one as dead-lettered.
Everything it publishes while processing carries the correlation ID and names the
event being processed as its causation, without the handler passing anything.

Example::

    bus = EventBus(broker, tracer_provider=inventory_provider)

    @bus.consumer("orders", group="reserve-inventory")
    async def reserve(received: Received) -> None:
        await bus.publish("inventory.reserved", received.payload, destination="inventory")

    await bus.start()  # subscribes the registered consumers; the broker is started already
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from opentelemetry.trace import TracerProvider

from tracebraid.errors import ConfigurationError
from tracebraid.model import Attributes
from tracebraid.sdk.broker.base import DEFAULT_RETRY, Broker, Delivery, RetryPolicy
from tracebraid.sdk.consume import consuming
from tracebraid.sdk.context import MessageContext, Outcome, Processing
from tracebraid.sdk.propagation import extract
from tracebraid.sdk.publish import publishing

__all__ = ["EventBus", "EventHandler", "Observer", "Processed", "Received"]


@dataclass(frozen=True, slots=True)
class Received:
    """What a consumer gets: the broker's delivery and the identities restored from it."""

    delivery: Delivery
    processing: Processing

    @property
    def payload(self) -> bytes:
        """The message body as published."""
        return self.delivery.payload

    @property
    def attempt(self) -> int:
        """1 for the first processing of this delivery, 2 for the first retry, ..."""
        return self.processing.attempt


@dataclass(frozen=True, slots=True)
class Processed:
    """One delivery's attempt, settled: reported to observers after its span has ended."""

    delivery: Delivery
    step: str
    outcome: Outcome
    error: Exception | None = None


EventHandler = Callable[[Received], Awaitable[None]]
"""A business consumer: returning acknowledges the delivery, raising asks for a retry."""
Observer = Callable[[Processed], None]
"""Told about every settled attempt (demos wait on it; metrics count it); must not raise."""


@dataclass(frozen=True, slots=True)
class _Registration:
    destination: str
    group: str
    step: str
    handler: EventHandler
    retry: RetryPolicy
    concurrency: int
    delay: float


class EventBus:
    """One service's traced view of a ``Broker``; any number share one broker.

    ``tracer_provider`` is the service's provider (None: tracebraid's configured one,
    else OpenTelemetry's global one). ``observers`` are told about each settled attempt.
    ``start_markers`` overrides ``tracebraid.sdk.configure``'s choice for this bus.
    """

    def __init__(
        self,
        broker: Broker,
        *,
        tracer_provider: TracerProvider | None = None,
        observers: Sequence[Observer] = (),
        start_markers: bool | None = None,
    ) -> None:
        self.broker = broker
        self._provider = tracer_provider
        self._start_markers = start_markers
        self._observers = tuple(observers)
        self._registrations: list[_Registration] = []
        self._started = False

    async def publish(
        self,
        event_name: str,
        payload: bytes,
        *,
        destination: str,
        event_id: str | None = None,
        correlation_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        attributes: Attributes | None = None,
    ) -> MessageContext:
        """Publish business event ``event_name`` to ``destination`` inside a PRODUCER span.

        Returns the identities it travelled with (event ID, correlation, causation, trace).
        """
        # ``with``, not ``async with``: entering and leaving never wait, and the async
        # forms would only add two coroutines per message.
        with publishing(
            event_name,
            destination=destination,
            system=self.broker.system,
            event_id=event_id,
            correlation_id=correlation_id,
            attributes=attributes,
            tracer_provider=self._provider,
        ) as publication:
            carrier = dict(headers) if headers else {}
            publication.inject(carrier)
            message = publication.message
            assert message.event_id is not None, "publishing always assigns an event ID"
            await self.broker.publish(destination, payload, carrier, message_id=message.event_id)
        return message

    def consumer(
        self,
        destination: str,
        *,
        group: str,
        step: str | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        concurrency: int = 1,
        delay: float = 0.0,
    ) -> Callable[[EventHandler], EventHandler]:
        """Register ``handler`` as consumer group ``group`` of ``destination``.

        ``step`` names its CONSUMER span (default: the group name). The consumer
        starts with the bus (``await bus.start()``).
        """

        def register(handler: EventHandler) -> EventHandler:
            if self._started:
                raise ConfigurationError(
                    f"the bus has started, so consumer {group!r} cannot be registered by "
                    "decorator any more; await bus.subscribe(...) instead"
                )
            self._registrations.append(
                _Registration(destination, group, step or group, handler, retry, concurrency, delay)
            )
            return handler

        return register

    async def subscribe(
        self,
        destination: str,
        handler: EventHandler,
        *,
        group: str,
        step: str | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        concurrency: int = 1,
        delay: float = 0.0,
    ) -> None:
        """Subscribe ``handler`` now (the awaitable twin of ``consumer``)."""
        registration = _Registration(
            destination, group, step or group, handler, retry, concurrency, delay
        )
        await self._subscribe(registration)

    async def start(self) -> None:
        """Subscribe every consumer registered by decorator (the broker must be started)."""
        if self._started:
            return
        self._started = True
        for registration in self._registrations:
            await self._subscribe(registration)

    async def _subscribe(self, registration: _Registration) -> None:
        await self.broker.subscribe(
            registration.destination,
            registration.group,
            # A partial, not a wrapping coroutine: one coroutine per delivery, not two.
            functools.partial(self._process, registration),
            retry=registration.retry,
            concurrency=registration.concurrency,
            delay=registration.delay,
        )

    async def _process(self, registration: _Registration, delivery: Delivery) -> None:
        attempt = delivery.delivery_count
        retry = registration.retry
        failure: Exception | None = None
        with consuming(  # not ``async with``: see ``publish``
            extract(delivery.headers),
            step=registration.step,
            consumer=delivery.group,
            destination=delivery.destination,
            system=self.broker.system,
            attempt=attempt,
            start_marker=self._start_markers,
            tracer_provider=self._provider,
        ) as consumption:
            try:
                await registration.handler(Received(delivery, consumption.processing))
            except Exception as exc:  # the broker redelivers or dead-letters; the span says which
                failure = exc
                if retry.is_final(attempt):
                    consumption.dead_letter(exc)
                else:
                    consumption.fail(exc, backoff_ms=retry.delay_after(attempt) * 1000.0)
        if self._observers:
            outcome = consumption.outcome or (Outcome.OK if failure is None else Outcome.ERROR)
            processed = Processed(delivery, registration.step, outcome, failure)
            for observe in self._observers:
                observe(processed)
        if failure is not None:
            raise failure
