"""tracebraid's TextMapPropagator: stock instrumentation carries correlation, causation and
event identity in tracebraid's header names, and a malformed header never raises."""

from __future__ import annotations

import contextvars
import importlib
import importlib.metadata
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import tracebraid
from tracebraid import semconv
from tracebraid.processor import SpanProcessor
from tracebraid.propagator import TracebraidPropagator
from tracebraid.sdk import carriers as h
from tracebraid.sdk.stock import received

T = TypeVar("T")
ROOT = Path(__file__).parents[1]
PROPAGATOR = CompositePropagator(
    [TraceContextTextMapPropagator(), W3CBaggagePropagator(), TracebraidPropagator()]
)


class KafkaGetter(Getter[list[tuple[str, bytes]]]):
    """Like aiokafka's instrumentation: exact names, ``bytes.decode()`` that may raise."""

    def get(self, carrier: list[tuple[str, bytes]], key: str) -> list[str] | None:
        for name, value in carrier:
            if name == key:
                return [value.decode()]
        return None

    def keys(self, carrier: list[tuple[str, bytes]]) -> list[str]:
        return [name for name, _ in carrier]


class KafkaSetter:
    def set(self, carrier: list[tuple[str, bytes]], key: str, value: str) -> None:
        carrier.append((key, value.encode()))


@pytest.fixture
def tracer() -> Iterator[trace.Tracer]:
    provider = TracerProvider()
    provider.add_span_processor(SpanProcessor(provider, start_marker_after_ms=None))
    yield provider.get_tracer("stock.instrumentation")
    provider.shutdown()


def in_own_context(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a copy of the context: consumer spans make their message current."""
    return contextvars.copy_context().run(fn)


def test_the_entry_point_names_the_propagator() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    target = project["project"]["entry-points"]["opentelemetry_propagator"]["tracebraid"]
    module, _, name = target.partition(":")
    assert getattr(importlib.import_module(module), name) is TracebraidPropagator
    installed = importlib.metadata.entry_points(group="opentelemetry_propagator", name="tracebraid")
    if not installed:
        pytest.skip("the installed tracebraid predates the entry point (reinstall to check it)")
    # What a service configured with OTEL_PROPAGATORS gets, in a fresh interpreter.
    probe = (
        "from opentelemetry import propagate;"
        "print(sorted(type(p).__name__ for p in propagate.get_global_textmap()._propagators))"
    )
    env = {**os.environ, "OTEL_PROPAGATORS": "tracecontext,baggage,tracebraid"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert "TracebraidPropagator" in out.stdout, out.stderr


def test_a_stock_publish_and_consume_carry_every_identity(tracer: trace.Tracer) -> None:
    def flow() -> tuple[dict[str, str], ReadableSpan, ReadableSpan, ReadableSpan]:
        headers: dict[str, str] = {}
        with (
            tracebraid.correlation("order_441"),
            tracer.start_as_current_span("orders publish", kind=SpanKind.PRODUCER) as sent,
        ):
            PROPAGATOR.inject(headers)
        ctx = PROPAGATOR.extract(headers)
        with tracer.start_as_current_span("orders process", ctx, kind=SpanKind.CONSUMER) as got:
            follow_up: list[tuple[str, bytes]] = []
            with tracer.start_as_current_span("inventory publish", kind=SpanKind.PRODUCER) as next_:
                PROPAGATOR.inject(follow_up, setter=KafkaSetter())  # type: ignore[arg-type]
        assert isinstance(sent, ReadableSpan) and isinstance(got, ReadableSpan)
        assert isinstance(next_, ReadableSpan)
        headers.update((k, v.decode()) for k, v in follow_up if k.startswith("x-follow"))
        return headers, sent, got, next_

    headers, sent, got, follow_up = in_own_context(flow)
    event_id = sent.attributes[semconv.MESSAGE_ID]
    assert headers[h.EVENT_ID_HEADER] == event_id and str(event_id).startswith("evt_")
    assert headers[h.CORRELATION_ID_HEADER] == "order_441"
    assert sent.attributes[semconv.CORRELATION_ID] == "order_441"
    assert got.attributes[semconv.MESSAGE_ID] == event_id
    assert got.attributes[semconv.CORRELATION_ID] == "order_441"
    assert got.parent is not None and got.parent.span_id == sent.context.span_id
    assert follow_up.attributes[semconv.CAUSATION_ID] == event_id
    assert follow_up.attributes[semconv.CORRELATION_ID] == "order_441"


def test_the_follow_up_headers_name_the_event_being_processed(tracer: trace.Tracer) -> None:
    def flow() -> list[tuple[str, bytes]]:
        incoming = [(h.EVENT_ID_HEADER, b"evt_1"), (h.CORRELATION_ID_HEADER, b"order_441")]
        ctx = PROPAGATOR.extract(incoming, getter=KafkaGetter())
        with tracer.start_as_current_span("orders receive", ctx, kind=SpanKind.CONSUMER):
            pass  # Kafka clients end the consumer span before the record is processed
        follow_up: list[tuple[str, bytes]] = []
        with tracer.start_as_current_span("inventory send", kind=SpanKind.PRODUCER):
            PROPAGATOR.inject(follow_up, setter=KafkaSetter())  # type: ignore[arg-type]
        return follow_up

    sent = dict(in_own_context(flow))
    assert sent[h.CAUSATION_ID_HEADER] == b"evt_1"
    assert sent[h.CORRELATION_ID_HEADER] == b"order_441"
    assert sent[h.EVENT_ID_HEADER].startswith(b"evt_") and sent[h.EVENT_ID_HEADER] != b"evt_1"
    assert baggage.get_baggage("correlation_id") is None  # nothing leaked out of the copy


def test_the_propagator_alone_carries_identities_without_the_processor() -> None:
    tracer = TracerProvider().get_tracer("stock.instrumentation")
    headers: dict[str, str] = {}
    incoming = PROPAGATOR.extract({"x-event-id": "evt_1", "x-correlation-id": "order_441"})
    token = otel_context.attach(incoming)  # as aio-pika's consumer does
    try:
        with tracer.start_as_current_span("send", kind=SpanKind.PRODUCER) as span:
            PROPAGATOR.inject(headers)
    finally:
        otel_context.detach(token)
    assert isinstance(span, ReadableSpan)
    assert headers[h.CAUSATION_ID_HEADER] == "evt_1"
    assert headers[h.CORRELATION_ID_HEADER] == "order_441"
    assert headers[h.EVENT_ID_HEADER] == span.attributes[semconv.MESSAGE_ID]


def test_what_the_message_already_carries_is_its_own(tracer: trace.Tracer) -> None:
    # A binary-mode CloudEvent: its id is the event ID, and it gets the Correlation
    # extension in its own header style.
    headers = [("ce_id", b"evt_ce"), ("ce_type", b"order.placed"), ("ce_source", b"/checkout")]
    with (
        tracebraid.correlation("order_441"),
        tracer.start_as_current_span("orders send", kind=SpanKind.PRODUCER) as span,
    ):
        PROPAGATOR.inject(headers, setter=KafkaSetter())  # type: ignore[arg-type]
    assert isinstance(span, ReadableSpan)
    sent = dict(headers)
    assert sent[h.EVENT_ID_HEADER] == b"evt_ce" and sent["ce_correlationid"] == b"order_441"
    assert span.attributes[semconv.MESSAGE_ID] == "evt_ce"
    assert span.attributes[semconv.EVENT_NAME] == "order.placed"
    assert span.attributes["cloudevents.event_id"] == "evt_ce"
    assert span.attributes["cloudevents.event_type"] == "order.placed"


def test_republishing_the_message_being_processed_is_not_its_own_cause(
    tracer: trace.Tracer,
) -> None:
    def retry() -> tuple[dict[str, str], trace.Span]:
        original = {"x-event-id": "evt_1", "x-correlation-id": "order_441"}
        ctx = PROPAGATOR.extract(original)
        with tracer.start_as_current_span("orders process", ctx, kind=SpanKind.CONSUMER):
            again = dict(original)
            with tracer.start_as_current_span("orders publish", kind=SpanKind.PRODUCER) as span:
                PROPAGATOR.inject(again)
        return again, span

    headers, span = in_own_context(retry)
    assert h.CAUSATION_ID_HEADER not in headers
    assert isinstance(span, ReadableSpan)
    assert span.attributes[semconv.MESSAGE_ID] == "evt_1"
    assert not span.attributes.get(semconv.CAUSATION_ID)  # not its own cause


def test_rabbitmq_delivery_count_is_the_attempt() -> None:
    ctx = PROPAGATOR.extract({"x-event-id": "evt_1", "x-delivery-count": 2})
    found = received(ctx)
    assert found is not None and found.extracted.context.attempt == 3
    ctx = PROPAGATOR.extract({"x-attempt": "2", "x-delivery-count": 7})
    found = received(ctx)
    assert found is not None and found.extracted.context.attempt == 2


# -- malformed headers: never raise, NoParent(reason), and every readable identity --

BAD = "00-nope-nope-01"
STYLES: dict[str, tuple[object, Getter[object] | None]] = {
    "str-headers": (
        {
            "traceparent": BAD,
            "x-event-id": "evt_1",
            "x-correlation-id": "order_441",
            "x-attempt": "first",
        },
        None,
    ),
    "bytes-headers": (
        {
            "traceparent": BAD.encode(),
            "x-event-id": b"evt_1",
            "x-correlation-id": b"order_441",
            "x-causation-id": b"\xff\xfe",
        },
        None,
    ),
    "kafka-headers": (
        [
            ("traceparent", BAD.encode()),
            ("x-event-id", b"evt_1"),
            ("x-correlation-id", b"order_441"),
            ("x-event-name", b"\xc3\x28"),
        ],
        KafkaGetter(),  # type: ignore[dict-item]
    ),
    "cloudevents-http": (
        {"ce-id": "evt_1", "ce-correlationid": "order_441", "ce-traceparent": BAD},
        None,
    ),
    "cloudevents-kafka": (
        [
            ("ce_id", b"evt_1"),
            ("ce_correlationid", b"order_441"),
            ("ce_traceparent", BAD.encode()),
            ("ce_type", b"\xff"),
        ],
        KafkaGetter(),  # type: ignore[dict-item]
    ),
}


@pytest.mark.parametrize("style", sorted(STYLES))
def test_a_malformed_header_gives_no_parent_and_what_could_be_read(style: str) -> None:
    carrier, getter = STYLES[style]
    # tracebraid's propagator alone: OpenTelemetry's W3C one cannot read bytes values
    # through its default getter (AMQP instrumentations bring their own getters).
    ours = TracebraidPropagator()
    ctx = ours.extract(carrier) if getter is None else ours.extract(carrier, getter=getter)
    found = received(ctx)
    assert found is not None
    assert found.extracted.no_parent is not None
    assert BAD in found.extracted.no_parent.reason
    assert found.extracted.context.event_id == "evt_1"
    assert found.extracted.context.correlation_id == "order_441"
    assert not trace.get_current_span(ctx).get_span_context().is_valid


@pytest.mark.parametrize(
    "carrier", [None, 42, "traceparent", [("x-event-id",)], {1: b"x"}, [b"raw"]]
)
def test_a_carrier_of_the_wrong_shape_never_raises(carrier: object) -> None:
    ours = TracebraidPropagator()  # (OpenTelemetry's own W3C propagators raise on these)
    ctx = ours.extract(carrier)
    assert isinstance(ctx, Context)
    headers: dict[str, str] = {}
    ours.inject(carrier)
    ours.inject(headers, ctx)
