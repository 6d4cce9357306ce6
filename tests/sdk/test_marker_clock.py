"""The marker clock: markers for work still in flight when due, none for work that ended,
and a clock that went quiet (blocked) wakes for new work."""

from __future__ import annotations

import time

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tracebraid import semconv
from tracebraid.sdk import marker
from tracebraid.sdk.marker import MarkerClock, PendingMarker


class _Work:
    """In-flight work as the clock sees it (what ``Consumption`` provides)."""

    def __init__(self, tracer: trace.Tracer, step: str, span_id: int, after_ms: float) -> None:
        self._marker_due_ns = time.time_ns() + int(after_ms * 1_000_000)
        self._pending = PendingMarker(
            tracer,
            step,
            trace.SpanContext(
                0x4BF92F3577B34DA6A3CE929D0E0E4736,
                span_id,
                False,
                trace.TraceFlags(trace.TraceFlags.SAMPLED),
            ),
            {semconv.STEP: step},
            time.time_ns(),
        )

    def _start_marker(self) -> PendingMarker:
        return self._pending


def _wait_for(condition: object, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.005)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exporter: InMemorySpanExporter) -> trace.Tracer:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer(semconv.START_MARKER_SCOPE)


def _steps(exporter: InMemorySpanExporter) -> list[object]:
    return [span.attributes[semconv.STEP] for span in exporter.get_finished_spans()]  # type: ignore[index]


def test_only_work_still_in_flight_when_due_gets_a_marker(
    tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    clock = MarkerClock()
    quick, slow = _Work(tracer, "quick", 1, 20), _Work(tracer, "slow", 2, 20)
    clock.track(quick)
    clock.track(slow)
    clock.untrack(quick)
    _wait_for(lambda: exporter.get_finished_spans())
    time.sleep(0.05)
    assert _steps(exporter) == ["slow"]
    assert not clock.in_flight  # a marker is emitted once, then the work leaves the set


def test_a_clock_that_went_quiet_wakes_for_new_work(
    tracer: trace.Tracer, exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(marker, "_QUIET_TICKS_BEFORE_BLOCKING", 2)
    monkeypatch.setattr(marker, "_QUIET_TICK_S", 0.005)
    clock = MarkerClock()
    clock.track(_Work(tracer, "first", 1, 0))
    _wait_for(lambda: clock.blocked and exporter.get_finished_spans())
    assert clock.blocked, "the clock should block once nothing is in flight"
    clock.track(_Work(tracer, "after the quiet", 2, 10))
    _wait_for(lambda: len(exporter.get_finished_spans()) == 2)
    assert _steps(exporter) == ["first", "after the quiet"]


def test_a_marker_that_fails_does_not_stop_the_clock(
    tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    class _Broken(_Work):
        def _start_marker(self) -> PendingMarker:
            raise RuntimeError("no marker")

    clock = MarkerClock()
    clock.track(_Broken(tracer, "broken", 1, 0))
    clock.track(_Work(tracer, "fine", 2, 10))
    _wait_for(lambda: exporter.get_finished_spans())
    assert _steps(exporter) == ["fine"]
