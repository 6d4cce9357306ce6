"""An OpenTelemetry ``TextMapPropagator`` for tracebraid's identities, so stock
instrumentation carries them.

With ``OTEL_PROPAGATORS=tracecontext,baggage,tracebraid`` (or ``tracebraid.instrument()``),
every instrumentation that injects and extracts context (aio-pika, pika, aiokafka,
confluent-kafka, kafka-python, Celery, kombu, httpx...) also carries the correlation ID,
the causation ID and the event identity, in the headers tracebraid's SDK writes
(``x-correlation-id``, ``x-event-id``, ``x-causation-id``, ``x-event-name``; ``x-attempt``
is read). Trace context and baggage stay the W3C propagators' job.

**Inject** (a publish): the correlation ID and the event being processed come from the
context (``tracebraid.sdk.stock.ambient``); on a PRODUCER span the event ID is the
message's own (``x-event-id``, a CloudEvent's ``ce-id``), else the span's
``messaging.message.id``, else a fresh one, recorded on the span too. What the message
already carries is never overwritten. A binary-mode CloudEvent also gets the
Correlation extension (``ce-correlationid``, ``ce-causationid``) in its own header style.

**Extract** (a consume): tracebraid's headers, a binary-mode CloudEvent's (``ce-``/``ce_``)
and RabbitMQ's ``x-delivery-count`` (attempt = count + 1) are read into a ``Received``
kept in the returned context (``tracebraid.sdk.stock.received``); the correlation ID also
goes into baggage. Nothing raises: a malformed header gives what could be read, and
``received(ctx).extracted.no_parent`` says why there is no parent.

Example::

    >>> from opentelemetry.context import Context
    >>> from tracebraid.sdk.stock import received
    >>> propagator = TracebraidPropagator()
    >>> ctx = propagator.extract({"x-event-id": "evt_1", "x-correlation-id": "order_441"})
    >>> received(ctx).extracted.context.correlation_id
    'order_441'
    >>> headers: dict[str, str] = {}
    >>> propagator.inject(headers, ctx)   # a call made while processing evt_1
    >>> headers
    {'x-correlation-id': 'order_441', 'x-causation-id': 'evt_1'}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import (
    CarrierT,
    DefaultGetter,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)

from tracebraid import semconv
from tracebraid.sdk import carriers as h
from tracebraid.sdk.cloudevents import (
    CAUSATION_EXTENSION,
    CORRELATION_EXTENSION,
    binary_attributes,
    cloudevent_identity,
    headers_from_attributes,
)
from tracebraid.sdk.context import BAGGAGE_CORRELATION_KEY
from tracebraid.sdk.propagation import extract as extract_headers
from tracebraid.sdk.stock import (
    NOTHING_CARRIED,
    Received,
    ambient,
    carried,
    is_readable,
    remember_extracted,
    span_attributes,
    stamp_producer,
    with_received,
)

__all__ = ["DELIVERY_COUNT_HEADER", "TracebraidPropagator"]

DELIVERY_COUNT_HEADER = "x-delivery-count"
"""RabbitMQ's count of earlier deliveries (quorum queues): attempt = count + 1."""

# What extract reads, lowercased: tracebraid's headers, the W3C ones (so ``no_parent``
# can say why a parent is missing), and the broker's delivery count.
_READ = frozenset(
    (
        h.TRACEPARENT_HEADER,
        h.TRACESTATE_HEADER,
        h.BAGGAGE_HEADER,
        h.CORRELATION_ID_HEADER,
        h.EVENT_ID_HEADER,
        h.CAUSATION_ID_HEADER,
        h.EVENT_NAME_HEADER,
        h.ATTEMPT_HEADER,
        DELIVERY_COUNT_HEADER,
    )
)
_CLOUDEVENT_PREFIXES = ("ce-", "ce_", "cloudevents_", "cloudevents:")
_FIELDS = frozenset(
    (h.CORRELATION_ID_HEADER, h.EVENT_ID_HEADER, h.CAUSATION_ID_HEADER, h.EVENT_NAME_HEADER)
)


def _first(values: object) -> object:
    if isinstance(values, list | tuple):
        return values[0] if values else None
    return values


def _read(carrier: CarrierT, getter: Getter[CarrierT]) -> tuple[dict[str, object], list[str]]:
    """(tracebraid and W3C headers by lowercase name, CloudEvent headers), via ``getter``."""
    found: dict[str, object] = {}
    cloud: list[str] = []
    if type(carrier) is dict and type(getter) is DefaultGetter:
        # The common carrier (HTTP, AMQP and NATS headers): one pass, values as stored.
        for name, value in carrier.items():  # type: ignore[attr-defined]
            if name in _READ:
                found.setdefault(name, value)
            elif type(name) is str:
                lowered = name.lower()
                if lowered in _READ:
                    found.setdefault(lowered, value)
                elif lowered.startswith(_CLOUDEVENT_PREFIXES):
                    cloud.append(name)
        for name, value in found.items():
            if type(value) is int:  # AMQP header tables carry numbers as numbers
                found[name] = str(value)
        return found, cloud
    try:
        names: Iterable[object] = getter.keys(carrier)
    except Exception:  # a getter without keys(): ask for each header by name
        names = ()
    for name in names:
        if not isinstance(name, str):
            continue
        lowered = name.lower()
        if lowered in _READ:
            if lowered not in found:
                found[lowered] = _get(carrier, getter, name)
        elif lowered.startswith(_CLOUDEVENT_PREFIXES):
            cloud.append(name)
    if not found and not cloud:
        for name in _READ:
            value = _get(carrier, getter, name)
            if value is not None:
                found[name] = value
    return found, cloud


def _get(carrier: CarrierT, getter: Getter[CarrierT], name: str) -> object:
    try:
        if isinstance(getter, DefaultGetter) and (
            type(carrier) is dict or isinstance(carrier, Mapping)
        ):
            # DefaultGetter turns a bytes value (AMQP headers) into a list of ints.
            value = _first(carrier.get(name))  # type: ignore[attr-defined]
        else:
            value = _first(getter.get(carrier, name))
    except Exception:  # e.g. a getter decoding bytes that are not UTF-8
        return b"\xff"  # unreadable: extract reports it as not UTF-8 and ignores it
    # AMQP header tables carry numbers as numbers (an x-attempt of 2).
    return str(value) if type(value) is int else value


def _text(value: object) -> str | None:
    """A span attribute as a header value: tracebraid stamps its identities as text."""
    return value if type(value) is str and value else None


def _attempt_from_delivery_count(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value + 1)
    if isinstance(value, str) and value.strip().isdigit():
        return str(int(value) + 1)
    return None


class TracebraidPropagator(TextMapPropagator):
    """Carries correlation, causation and event identity through any instrumentation.

    Registered as the ``tracebraid`` entry point of ``opentelemetry_propagator``.
    """

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        """The context with the message's identities (``stock.received(ctx)``)."""
        ctx = context if context is not None else Context()
        try:
            headers, cloud_names = _read(carrier, getter)
            cloud_event = None
            if cloud_names:
                cloud = binary_attributes([(n, _get(carrier, getter, n)) for n in cloud_names])
                cloud_event = cloudevent_identity(cloud)
                headers = {**headers_from_attributes(cloud), **headers}
            count = headers.pop(DELIVERY_COUNT_HEADER, None)
            if h.ATTEMPT_HEADER not in headers and count is not None:
                attempt = _attempt_from_delivery_count(count)
                if attempt is not None:
                    headers[h.ATTEMPT_HEADER] = attempt
            incoming = Received(extract_headers(headers), cloud_event)
        except Exception:  # a consume loop must never see an extraction error
            return ctx
        ctx = with_received(ctx, incoming)
        remember_extracted(incoming)
        message = incoming.extracted.context
        if (
            message.correlation_id is not None
            and otel_baggage.get_baggage(BAGGAGE_CORRELATION_KEY, ctx) is None
        ):
            ctx = otel_baggage.set_baggage(BAGGAGE_CORRELATION_KEY, message.correlation_id, ctx)
        span_context = incoming.extracted.span_context
        if span_context is not None and trace.get_current_span(ctx) is trace.INVALID_SPAN:
            # Only a CloudEvent's Distributed Tracing extension, or no W3C propagator
            # configured: the message's creation context is still its parent.
            ctx = trace.set_span_in_context(trace.NonRecordingSpan(span_context), ctx)
        return ctx

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        """Write the identities of the message being sent in ``context`` into ``carrier``."""
        try:
            self._inject(carrier, context, setter)
        except Exception:  # publishing must never fail because of tracing
            return

    def _inject(self, carrier: CarrierT, context: Context | None, setter: Setter[CarrierT]) -> None:
        ctx = context if context is not None else otel_context.get_current()
        message = carried(carrier)
        span = trace.get_current_span(ctx)
        event_id: str | None = None
        event_name = message.event_name
        if is_readable(span) and span.kind is trace.SpanKind.PRODUCER:  # type: ignore[attr-defined]
            attributes = span_attributes(span)
            event_id = _text(attributes.get(semconv.MESSAGE_ID))
            if event_id is None or message is not NOTHING_CARRIED:
                # Not stamped by the processor yet, or the message has identities of its own.
                event_id = stamp_producer(span, ctx, message)
                attributes = span_attributes(span)
            correlation = _text(attributes.get(semconv.CORRELATION_ID))
            cause = _text(attributes.get(semconv.CAUSATION_ID))
            event_name = event_name or _text(attributes.get(semconv.EVENT_NAME))
        else:
            correlation, cause = ambient(ctx)
        if cause == event_id:  # republishing the message being processed (a retry)
            cause = None
        cause = message.causation_id or cause
        has = message.headers
        write: list[tuple[str, str]] = [
            (name, value)
            for name, value in (
                (h.CORRELATION_ID_HEADER, correlation),
                (h.EVENT_ID_HEADER, event_id),
                (h.CAUSATION_ID_HEADER, cause),
                (h.EVENT_NAME_HEADER, event_name),
            )
            if value and name not in has
        ]
        prefix = message.cloud_event_prefix
        if prefix is not None:
            # A CloudEvent: its Correlation extension, in the event's own header style.
            for name, value in ((CORRELATION_EXTENSION, correlation), (CAUSATION_EXTENSION, cause)):
                if value and name not in message.cloud_attributes:
                    write.append((prefix + name, value))
        for key, value in write:
            setter.set(carrier, key, value)

    @property
    def fields(self) -> set[str]:
        """The headers ``inject`` writes (a CloudEvent's extension headers besides)."""
        return set(_FIELDS)
