"""The public capture helper, and the carriers' OpenTelemetry getters and setters."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.propagate import extract as otel_extract
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tracebraid.sdk import BYTES_HEADERS, KAFKA_HEADERS, STR_HEADERS, _tracers, step
from tracebraid.testing import capture_spans

GOOD = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_capture_restores_the_previous_provider_and_forgets_on_clear() -> None:
    before = _tracers.settings()
    with capture_spans(service="inventory") as captured:
        assert _tracers.settings().tracer_provider is captured.tracer_provider
        with step("reserve-inventory"):
            pass
        (span,) = captured.spans
        assert span.service == "inventory"
        captured.clear()
        assert captured.spans == []
    assert _tracers.settings() == before


def test_capture_attaches_to_an_existing_provider_and_detaches_after() -> None:
    provider = TracerProvider()
    tracer = provider.get_tracer("stock-instrumentation")
    with (
        capture_spans(tracer_provider=provider, install=False) as captured,
        tracer.start_as_current_span("orders receive"),
    ):
        pass
    with tracer.start_as_current_span("after the capture"):
        pass
    assert [s.name for s in captured.spans] == ["orders receive"]


def test_getters_work_with_opentelemetry_propagators_for_every_carrier() -> None:
    carriers = [
        (STR_HEADERS, {"TraceParent": GOOD}),
        (BYTES_HEADERS, {"traceparent": GOOD.encode()}),
        (KAFKA_HEADERS, [("traceparent", GOOD.encode())]),
    ]
    for getter, carrier in carriers:
        ctx = otel_extract(carrier, getter=getter)  # type: ignore[arg-type]
        span_context = trace.get_current_span(ctx).get_span_context()
        assert format(span_context.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_setters_write_the_carrier_shape_they_name() -> None:
    provider = TracerProvider()
    propagator = TraceContextTextMapPropagator()
    with provider.get_tracer("t").start_as_current_span("p"):
        as_str: dict[str, str] = {}
        as_bytes: dict[str, bytes] = {}
        as_kafka: list[tuple[str, bytes]] = []
        propagator.inject(as_str, setter=STR_HEADERS)
        propagator.inject(as_bytes, setter=BYTES_HEADERS)
        propagator.inject(as_kafka, setter=KAFKA_HEADERS)
    assert isinstance(as_str["traceparent"], str)
    assert as_bytes["traceparent"] == as_str["traceparent"].encode()
    assert as_kafka == [("traceparent", as_str["traceparent"].encode())]


def test_getter_returns_none_for_bytes_that_are_not_utf8() -> None:
    assert BYTES_HEADERS.get({"traceparent": b"\xff"}, "traceparent") is None
    assert KAFKA_HEADERS.keys([("a", b"1"), ("b", b"2")]) == ["a", "b"]
