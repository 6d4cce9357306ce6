"""tracebraid.SpanProcessor and tracebraid.instrument(): any instrumentation's producer and
consumer spans get the identities, and long-running consumer spans a start marker."""

from __future__ import annotations

import contextvars
import gc
import time
import weakref
from collections.abc import Iterator

import pytest
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import tracebraid
from tracebraid import semconv
from tracebraid.errors import ConfigurationError
from tracebraid.instrument import uses_tracebraid_propagator
from tracebraid.propagator import TracebraidPropagator
from tracebraid.sdk.propagation import extract

PROPAGATOR = TracebraidPropagator()


class KafkaGetter(Getter[list[tuple[str, bytes]]]):
    def get(self, carrier: list[tuple[str, bytes]], key: str) -> list[str] | None:
        return next(([v.decode()] for k, v in carrier if k == key), None)

    def keys(self, carrier: list[tuple[str, bytes]]) -> list[str]:
        return [k for k, _ in carrier]


class Service:
    """A provider with the processor (markers after 30 ms) and an in-memory exporter."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.processor = tracebraid.SpanProcessor(self.provider, start_marker_after_ms=30)
        self.provider.add_span_processor(self.processor)
        self.tracer = self.provider.get_tracer("stock.instrumentation")

    def spans(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()


@pytest.fixture
def service() -> Iterator[Service]:
    made = Service()
    yield made
    made.provider.shutdown()


def test_a_consumer_span_still_running_after_the_threshold_gets_a_start_marker(
    service: Service,
) -> None:
    ctx = PROPAGATOR.extract({"x-event-id": "evt_1", "x-correlation-id": "order_441"})

    def consume(seconds: float) -> trace.Span:
        with service.tracer.start_as_current_span(
            "orders receive", ctx, kind=SpanKind.CONSUMER
        ) as span:
            time.sleep(seconds)
        return span

    slow = contextvars.copy_context().run(consume, 0.25)
    quick = contextvars.copy_context().run(consume, 0)
    time.sleep(0.1)  # past the quick one's threshold: it ended first, so no marker
    markers = [
        s for s in service.spans() if s.instrumentation_scope.name == semconv.START_MARKER_SCOPE
    ]
    [marker] = markers
    announced = slow.get_span_context()
    assert marker.attributes[semconv.MARKER_FOR_SPAN] == format(announced.span_id, "016x")
    assert marker.parent is not None and marker.parent.span_id == announced.span_id
    assert marker.attributes[semconv.MESSAGE_ID] == "evt_1"
    assert marker.attributes[semconv.CORRELATION_ID] == "order_441"
    assert marker.start_time == slow.start_time  # type: ignore[attr-defined]
    assert quick.get_span_context().span_id != announced.span_id


def test_tracebraids_own_spans_are_left_alone(service: Service) -> None:
    with (
        tracebraid.correlation("order_441"),
        tracebraid.publishing(
            "order.placed", destination="orders", tracer_provider=service.provider
        ) as pub,
    ):
        pass
    [span] = service.spans()
    assert span.attributes[semconv.MESSAGE_ID] == pub.message.event_id
    assert len(service.processor._in_flight) == 0


def test_tracebraids_sdk_inside_a_stock_consumer_sees_its_message(service: Service) -> None:
    # A service mixing both: the stock consumer's message is tracebraid's current processing.
    def consume() -> tuple[str | None, str | None, tracebraid.MessageContext]:
        ctx = PROPAGATOR.extract({"x-event-id": "evt_1", "x-correlation-id": "order_441"})
        with service.tracer.start_as_current_span("orders receive", ctx, kind=SpanKind.CONSUMER):
            processing = tracebraid.current_processing()
            with tracebraid.publishing(
                "inventory.reserved", destination="inventory", tracer_provider=service.provider
            ) as pub:
                pass
        assert processing is not None
        return processing.event_id, processing.correlation_id, pub.message

    event_id, correlation, follow_up = contextvars.copy_context().run(consume)
    assert (event_id, correlation) == ("evt_1", "order_441")
    assert (follow_up.causation_id, follow_up.correlation_id) == ("evt_1", "order_441")


def test_what_a_kafka_consumer_publishes_after_the_receive_span_ended_is_its_child(
    service: Service,
) -> None:
    def consume() -> tuple[trace.Span, trace.Span]:
        ctx = PROPAGATOR.extract([("x-event-id", b"evt_1")], getter=KafkaGetter())
        with service.tracer.start_as_current_span(
            "orders receive", ctx, kind=SpanKind.CONSUMER
        ) as got:
            pass  # aiokafka's span ends when getone() returns the record
        with service.tracer.start_as_current_span("inventory send", kind=SpanKind.PRODUCER) as sent:
            pass
        return got, sent

    received, sent = contextvars.copy_context().run(consume)
    assert isinstance(sent, ReadableSpan) and sent.parent is not None
    assert sent.parent.span_id == received.get_span_context().span_id
    assert sent.attributes[semconv.CAUSATION_ID] == "evt_1"
    assert not trace.get_current_span().get_span_context().is_valid  # nothing leaked here


def test_a_consumer_span_with_a_message_id_of_its_own_keeps_it(service: Service) -> None:
    # aio-pika's instrumentation records AMQP's message_id before the processor sees it.
    ctx = PROPAGATOR.extract({"x-correlation-id": "order_441"})

    def consume() -> None:
        with service.tracer.start_as_current_span(
            "orders receive", ctx, kind=SpanKind.CONSUMER, attributes={semconv.MESSAGE_ID: "amqp-1"}
        ):
            pass

    contextvars.copy_context().run(consume)
    [span] = service.spans()
    assert span.attributes[semconv.MESSAGE_ID] == "amqp-1"
    assert span.attributes[semconv.CORRELATION_ID] == "order_441"


def test_spans_that_are_not_messaging_get_nothing(service: Service) -> None:
    with (
        tracebraid.correlation("order_441"),
        service.tracer.start_as_current_span("GET /orders", kind=SpanKind.SERVER),
    ):
        pass
    [span] = service.spans()
    assert semconv.CORRELATION_ID not in (span.attributes or {})


def test_a_consumer_reading_a_malformed_message_still_gets_what_was_readable(
    service: Service,
) -> None:
    headers = {"traceparent": "garbage", "x-event-id": b"evt_1", "x-attempt": "0"}
    ctx = PROPAGATOR.extract(headers)

    def consume() -> None:
        with service.tracer.start_as_current_span("orders receive", ctx, kind=SpanKind.CONSUMER):
            pass

    contextvars.copy_context().run(consume)
    [span] = service.spans()
    assert span.attributes[semconv.MESSAGE_ID] == "evt_1"
    assert semconv.ATTEMPT not in (span.attributes or {})
    assert extract(headers).no_parent is not None


def test_instrument_installs_both_once() -> None:
    saved = propagate.get_global_textmap()
    provider = TracerProvider()
    try:
        first = tracebraid.instrument(provider)
        assert tracebraid.instrument(provider) is first
        textmap = propagate.get_global_textmap()
        assert uses_tracebraid_propagator(textmap)
        tracebraid.instrument(provider)
        assert propagate.get_global_textmap() is textmap  # not composed twice
        assert first in provider._active_span_processor._span_processors
    finally:
        propagate.set_global_textmap(saved)
        provider.shutdown()


def test_instrument_without_an_sdk_provider_says_what_to_do() -> None:
    with pytest.raises(ConfigurationError, match="set_tracer_provider"):
        tracebraid.instrument(trace.NoOpTracerProvider())


def test_a_consumer_span_that_links_to_the_message_gets_its_identities(
    service: Service,
) -> None:
    # confluent-kafka's shape: extract only to link, the span starts in another context.
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    carrier = [("traceparent", traceparent.encode()), ("x-event-id", b"evt_1")]

    def consume() -> trace.Span:
        ctx = PROPAGATOR.extract(carrier, getter=KafkaGetter())
        # (tracebraid's propagator alone puts the creation context into ctx too)
        link = trace.Link(trace.get_current_span(ctx).get_span_context())
        with service.tracer.start_as_current_span(
            "orders process", kind=SpanKind.CONSUMER, links=[link]
        ) as span:
            return span

    span = contextvars.copy_context().run(consume)
    assert isinstance(span, ReadableSpan)
    assert span.attributes[semconv.MESSAGE_ID] == "evt_1"
    batch = service.tracer.start_span("orders process", kind=SpanKind.CONSUMER)
    assert semconv.MESSAGE_ID not in (batch.attributes or {})  # no link: not this message


def test_identities_stamped_on_a_span_obey_the_providers_attribute_limits() -> None:
    """The processor writes into the SDK span's store directly only where no limit
    applies; under a count or length limit it goes through the SDK, which evicts the
    oldest attribute and truncates long values as for any other attribute."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(span_limits=SpanLimits(max_span_attributes=3, max_attribute_length=8))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(tracebraid.SpanProcessor(provider, start_marker_after_ms=None))
    tracer = provider.get_tracer("stock.instrumentation")
    headers = {"x-event-id": "evt_0123456789", "x-correlation-id": "order_441"}

    def consume() -> None:
        # In a context of its own: the processor leaves the consumer span current.
        with tracer.start_as_current_span(
            "orders receive",
            context=PROPAGATOR.extract(headers),
            kind=SpanKind.CONSUMER,
            attributes={"messaging.system": "rabbitmq", "messaging.operation": "receive"},
        ):
            pass

    contextvars.copy_context().run(consume)
    provider.shutdown()
    [span] = exporter.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert attributes == {
        "messaging.operation": "receive",
        semconv.MESSAGE_ID: "evt_0123",
        semconv.CORRELATION_ID: "order_44",
    }
    assert span.dropped_attributes == 1


def test_identities_stamped_on_a_span_replace_its_own_in_the_sdks_order() -> None:
    """Without limits the processor writes the store itself: a value set again replaces
    the old one and moves last, as the SDK's ``set_attribute`` does."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(tracebraid.SpanProcessor(provider, start_marker_after_ms=None))
    tracer = provider.get_tracer("stock.instrumentation")
    headers = {"x-event-id": "evt_1", "x-correlation-id": "order_441"}

    def consume() -> None:
        # In a context of its own: the processor leaves the consumer span current.
        with tracer.start_as_current_span(
            "orders receive",
            context=PROPAGATOR.extract(headers),
            kind=SpanKind.CONSUMER,
            attributes={semconv.MESSAGE_ID: "amqp-7", "messaging.system": "rabbitmq"},
        ):
            pass

    contextvars.copy_context().run(consume)
    provider.shutdown()
    [span] = exporter.get_finished_spans()
    assert list((span.attributes or {}).items()) == [
        ("messaging.system", "rabbitmq"),
        (semconv.MESSAGE_ID, "evt_1"),
        (semconv.CORRELATION_ID, "order_441"),
    ]


def test_a_consumed_messages_span_is_freed_without_the_garbage_collector(
    service: Service,
) -> None:
    """The guard keeping the message's event ID on a consumer span (against the Kafka
    instrumentations' later ``topic.partition.offset``) holds the span weakly: no
    reference cycle per consumed message for the garbage collector to find."""
    spans: list[weakref.ref[object]] = []

    def consume() -> None:
        ctx = PROPAGATOR.extract({"x-event-id": "evt_1", "x-correlation-id": "order_441"})
        with service.tracer.start_as_current_span(
            "orders receive", context=ctx, kind=SpanKind.CONSUMER
        ) as span:
            span.set_attribute(semconv.MESSAGE_ID, "orders.0.5")  # ignored: the event's ID
            span.set_attribute("messaging.kafka.message.offset", 5)
            spans.append(weakref.ref(span))

    gc.disable()
    try:
        contextvars.copy_context().run(consume)
        assert spans[0]() is None
    finally:
        gc.enable()
    [finished] = service.spans()
    assert (finished.attributes or {})[semconv.MESSAGE_ID] == "evt_1"
    assert (finished.attributes or {})["messaging.kafka.message.offset"] == 5
