"""Which TracerProvider tracebraid's spans go to, and the tracers it caches per provider.

tracebraid adds spans to whatever provider the application configured and never sets
OpenTelemetry's global provider itself. ``configure(tracer_provider=...)`` picks one for
tracebraid only (tests use it through ``tracebraid.testing.capture_spans``).

Example::

    >>> from opentelemetry.sdk.trace import TracerProvider
    >>> configure(tracer_provider=TracerProvider(), start_markers=False)
    >>> configure()  # back to OpenTelemetry's global provider, markers after 100 ms
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry import trace

from tracebraid import semconv

if TYPE_CHECKING:
    from tracebraid.sdk.sampler import WorkflowSampler

__all__ = ["SCOPE", "Settings", "Tracers", "configure", "settings", "tracers"]

SCOPE = "tracebraid"
_VERSION = "0.1.0"


@dataclass(frozen=True, slots=True)
class Tracers:
    """The tracer for tracebraid's spans and the one for start markers, of one provider,
    with the marker settings in force (one look-up on the hot path, not two)."""

    spans: trace.Tracer
    markers: trace.Tracer
    start_markers: bool = True
    marker_delay_ns: int = 100_000_000
    # The provider's sampler when it is a WorkflowSampler: a dropped workflow's spans
    # are then made without the SDK (see sdk.sampler.dropped_span).
    workflows: WorkflowSampler | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    """tracebraid's process-wide SDK settings (see ``configure``)."""

    tracer_provider: trace.TracerProvider | None = None
    start_markers: bool = True
    start_marker_after_ms: float = 100.0


_settings = Settings()
# Tracers are cached per provider: get_tracer is not free, and this is the hot path.
_configured: Tracers | None = None  # for the configured provider (or the global one)
_per_provider: weakref.WeakKeyDictionary[trace.TracerProvider, Tracers] = (
    weakref.WeakKeyDictionary()
)


def _nothing() -> None:
    return None


_NO_TRACERS = Tracers(trace.NoOpTracer(), trace.NoOpTracer())
# The provider ``tracers`` answered for last, and its tracers (``_nothing``: none yet).
_last: tuple[Callable[[], object], Tracers] = (_nothing, _NO_TRACERS)


def configure(
    *,
    tracer_provider: trace.TracerProvider | None = None,
    start_markers: bool = True,
    start_marker_after_ms: float = 100.0,
) -> None:
    """Choose the provider tracebraid's spans go to (None: OpenTelemetry's global one),
    whether consumers emit start markers, and after how long (0: at once; see
    ``tracebraid.sdk.marker`` for why the default defers them).
    """
    global _settings, _configured, _last
    _settings = Settings(
        tracer_provider=tracer_provider,
        start_markers=start_markers,
        start_marker_after_ms=start_marker_after_ms,
    )
    _configured = None
    _per_provider.clear()
    _last = (_nothing, _NO_TRACERS)


def settings() -> Settings:
    """The current settings."""
    return _settings


def _build(provider: trace.TracerProvider | None) -> Tracers:
    settings = _settings
    # A ProxyTracer (provider None) follows the global provider even when it is set later.
    get_tracer = trace.get_tracer if provider is None else provider.get_tracer
    return Tracers(
        spans=get_tracer(SCOPE, _VERSION),
        markers=get_tracer(semconv.START_MARKER_SCOPE, _VERSION),
        start_markers=settings.start_markers,
        marker_delay_ns=int(settings.start_marker_after_ms * 1_000_000),
        workflows=_workflow_sampler(provider),
    )


def _workflow_sampler(provider: trace.TracerProvider | None) -> WorkflowSampler | None:
    """``provider``'s sampler if it is a WorkflowSampler (None: the global provider, once
    set: a proxy, which may change, has none). Read without importing the sampler: a
    process that never imported it has none."""
    module = sys.modules.get("tracebraid.sdk.sampler")
    if module is None:
        return None
    found = trace.get_tracer_provider() if provider is None else provider
    sampler = getattr(found, "sampler", None)
    return sampler if isinstance(sampler, module.WorkflowSampler) else None


def tracers(provider: trace.TracerProvider | None = None) -> Tracers:
    """The tracers for ``provider``, else the configured one, else the global one."""
    global _configured, _last
    if provider is None:
        found = _configured
        if found is None:
            found = _configured = _build(_settings.tracer_provider)
        return found
    # A service passes the same provider every time: one weak reference to call, not
    # the weak dictionary's look-up (which makes a new weak reference per call).
    last_provider, last_tracers = _last
    if last_provider() is provider:
        return last_tracers
    found = _per_provider.get(provider)
    if found is None:
        found = _per_provider[provider] = _build(provider)
    _last = (weakref.ref(provider), found)
    return found
