"""Capture the spans a block of code produces, in memory, as tracebraid ``Span`` records.

Public API for users' own test suites (the pytest plugin wraps it). By default a
fresh SDK ``TracerProvider`` with a ``SimpleSpanProcessor`` and an
``InMemorySpanExporter`` becomes tracebraid's provider for the block; pass an existing
SDK provider to capture everything it records instead (e.g. stock instrumentation).

Example::

    >>> from tracebraid.sdk import step
    >>> with capture_spans() as captured:
    ...     with step("reserve-inventory"):
    ...         pass
    >>> [s.name for s in captured.spans]
    ['reserve-inventory']
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tracebraid import semconv
from tracebraid.model import Span
from tracebraid.sdk import _tracers
from tracebraid.sdk.convert import to_span

__all__ = ["SpanCapture", "capture_spans"]


class _Gate(SpanProcessor):
    """Forwards to the in-memory processor only while the capture is open: an SDK
    provider cannot drop a processor once added."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner
        self.open = True

    def on_start(self, span: SdkSpan, parent_context: Context | None = None) -> None:
        if self.open:
            self.inner.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if self.open:
            self.inner.on_end(span)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class SpanCapture:
    """Spans finished while a ``capture_spans`` block is open, in end order."""

    def __init__(self, tracer_provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
        self.tracer_provider = tracer_provider
        self._exporter = exporter

    @property
    def readable(self) -> Sequence[ReadableSpan]:
        """The raw OpenTelemetry spans (start markers included)."""
        return self._exporter.get_finished_spans()

    @property
    def spans(self) -> list[Span]:
        """Finished spans as tracebraid ``Span`` records, start markers excluded."""
        return [s for s in self.all_spans if s.scope != semconv.START_MARKER_SCOPE]

    @property
    def all_spans(self) -> list[Span]:
        """Finished spans including start markers."""
        return [to_span(s) for s in self._exporter.get_finished_spans()]

    @property
    def markers(self) -> list[Span]:
        """Only the start markers."""
        return [s for s in self.all_spans if s.scope == semconv.START_MARKER_SCOPE]

    def named(self, name: str) -> list[Span]:
        """The captured spans called ``name``, in end order."""
        return [s for s in self.spans if s.name == name]

    def clear(self) -> None:
        """Forget the spans captured so far."""
        self._exporter.clear()


@contextmanager
def capture_spans(
    *,
    tracer_provider: TracerProvider | None = None,
    service: str = "test",
    install: bool = True,
) -> Iterator[SpanCapture]:
    """Capture spans in memory for the block; see the module docstring.

    ``install`` makes the capture's provider tracebraid's provider for the block
    (restoring the previous settings after); ``service`` names the fresh provider's
    ``service.name``.
    """
    exporter = InMemorySpanExporter()
    gate: _Gate | None = None
    if tracer_provider is None:
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        provider = tracer_provider
        gate = _Gate(SimpleSpanProcessor(exporter))
        provider.add_span_processor(gate)
    previous = _tracers.settings()
    if install:
        _tracers.configure(
            tracer_provider=provider,
            start_markers=previous.start_markers,
            start_marker_after_ms=previous.start_marker_after_ms,
        )
    try:
        yield SpanCapture(provider, exporter)
    finally:
        if install:
            _tracers.configure(
                tracer_provider=previous.tracer_provider,
                start_markers=previous.start_markers,
                start_marker_after_ms=previous.start_marker_after_ms,
            )
        if gate is not None:
            gate.open = False
        else:
            provider.shutdown()
