"""``stock.sending`` and ``stock.expecting``: an integration hands the span processor the
message it sends or received, for the spans a framework's instrumentation starts with
propagators of its own (FastStream's telemetry middleware)."""

from __future__ import annotations

import contextvars

from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import tracebraid
from tracebraid import semconv
from tracebraid.propagator import TracebraidPropagator
from tracebraid.sdk.stock import carried, expecting, received, sending


def provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    found = TracerProvider()
    found.add_span_processor(SimpleSpanProcessor(exporter))
    found.add_span_processor(tracebraid.SpanProcessor(found, start_marker_after_ms=None))
    return found, exporter


def test_producer_spans_started_while_sending_name_the_message_being_sent() -> None:
    tracer = provider()[0].get_tracer("framework")
    headers = {"x-event-id": "evt_9", "x-correlation-id": "order_1", "x-event-name": "a.b"}
    with sending(carried(headers)):
        # A framework's own "create" then "publish" span, with its own conversation ID.
        with tracer.start_as_current_span(
            "orders create",
            kind=SpanKind.PRODUCER,
            attributes={semconv.CORRELATION_ID: "faststream-uuid"},
        ) as create:
            pass
        with tracer.start_as_current_span("orders publish", kind=SpanKind.PRODUCER) as publish:
            pass
    with tracer.start_as_current_span("later", kind=SpanKind.PRODUCER) as later:
        pass
    for span in (create, publish):
        assert span.attributes is not None
        assert span.attributes[semconv.MESSAGE_ID] == "evt_9"
        assert span.attributes[semconv.CORRELATION_ID] == "order_1"
        assert span.attributes[semconv.EVENT_NAME] == "a.b"
    assert later.attributes is not None
    assert later.attributes[semconv.MESSAGE_ID] != "evt_9"  # after it: a message of its own


def test_the_next_consumer_span_gets_the_expected_message_and_only_it() -> None:
    # The processor leaves the consumer span current: keep that out of other tests.
    contextvars.copy_context().run(the_next_consumer_span_gets_the_expected_message)


def the_next_consumer_span_gets_the_expected_message() -> None:
    tracer = provider()[0].get_tracer("framework")
    ctx = TracebraidPropagator().extract(
        {"x-event-id": "evt_1", "x-correlation-id": "order_1", "x-attempt": "2"}
    )
    incoming = received(ctx)
    assert incoming is not None
    with expecting(incoming, {semconv.STEP: "reserve-inventory"}):
        # Started in a context the framework extracted itself: no tracebraid identities.
        first = tracer.start_span("orders process", context=Context(), kind=SpanKind.CONSUMER)
        second = tracer.start_span("orders process", context=Context(), kind=SpanKind.CONSUMER)
        processing = tracebraid.current_processing()
    assert first.attributes is not None and second.attributes is not None
    assert first.attributes[semconv.MESSAGE_ID] == "evt_1"
    assert first.attributes[semconv.CORRELATION_ID] == "order_1"
    assert first.attributes[semconv.ATTEMPT] == 2
    assert first.attributes[semconv.STEP] == "reserve-inventory"
    assert semconv.MESSAGE_ID not in second.attributes
    assert processing is not None and processing.event_id == "evt_1"
    first.end()
    second.end()
