"""``tracebraid.instrument()``: the propagator and the span processor for a service that
keeps its stock OpenTelemetry instrumentation.

Five lines of a service's start-up give its existing instrumentation the seed's
identities (correlation, causation, event identity, attempts, in-flight work)::

    provider = TracerProvider(resource=Resource.create({"service.name": "inventory"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    tracebraid.instrument()                 # propagator + span processor
    AioPikaInstrumentor().instrument()      # the stock instrumentation, as before

Example::

    >>> from opentelemetry import propagate
    >>> from opentelemetry.sdk.trace import TracerProvider
    >>> saved = propagate.get_global_textmap()
    >>> processor = instrument(TracerProvider())
    >>> uses_tracebraid_propagator(propagate.get_global_textmap())
    True
    >>> propagate.set_global_textmap(saved)
"""

from __future__ import annotations

import threading
import weakref

from opentelemetry import propagate, trace
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator

from tracebraid.errors import ConfigurationError
from tracebraid.processor import SpanProcessor
from tracebraid.propagator import TracebraidPropagator

__all__ = ["install_propagator", "instrument", "uses_tracebraid_propagator"]

_installed: weakref.WeakKeyDictionary[trace.TracerProvider, SpanProcessor] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


def uses_tracebraid_propagator(propagator: TextMapPropagator) -> bool:
    """True when ``propagator`` is, or composes, a ``TracebraidPropagator``."""
    if isinstance(propagator, TracebraidPropagator):
        return True
    inner = getattr(propagator, "_propagators", None)
    return isinstance(inner, list | tuple) and any(
        isinstance(p, TextMapPropagator) and uses_tracebraid_propagator(p) for p in inner
    )


def install_propagator() -> None:
    """Add ``TracebraidPropagator`` to OpenTelemetry's global propagator, after the ones
    configured (``OTEL_PROPAGATORS``, W3C trace context and baggage by default); a no-op
    when it is already there (``OTEL_PROPAGATORS=tracecontext,baggage,tracebraid``)."""
    current = propagate.get_global_textmap()
    if not uses_tracebraid_propagator(current):
        propagate.set_global_textmap(CompositePropagator([current, TracebraidPropagator()]))


def instrument(
    tracer_provider: trace.TracerProvider | None = None,
    *,
    propagator: bool = True,
    start_marker_after_ms: float | None = 100.0,
) -> SpanProcessor:
    """Install tracebraid's propagator and add its ``SpanProcessor`` to ``tracer_provider``
    (default: OpenTelemetry's global one, which must be an SDK ``TracerProvider``).

    Calling it again for the same provider returns the processor already added.
    ``propagator=False`` adds only the processor (then no identity crosses a broker:
    the lint reports the broken correlation, TB201).
    """
    provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    add = getattr(provider, "add_span_processor", None)
    if add is None:
        raise ConfigurationError(
            f"tracebraid.instrument() needs an SDK TracerProvider, got "
            f"{type(provider).__name__}: call trace.set_tracer_provider(TracerProvider(...)) "
            "first, or pass tracer_provider="
        )
    with _lock:
        processor = _installed.get(provider)
        if processor is None:
            processor = SpanProcessor(provider, start_marker_after_ms=start_marker_after_ms)
            add(processor)
            _installed[provider] = processor
    if propagator:
        install_propagator()
    return processor
