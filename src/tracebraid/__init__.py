"""tracebraid: causal tracing for asynchronous, event-driven systems, on OpenTelemetry.

The public API is re-exported here; everything under a ``_name`` or a subpackage
not listed in ``__all__`` may change without notice.

Services import the SDK (context, propagation, spans, the broker layer). The
analysis and the stores are loaded on first use (``tracebraid.analyze``), so a
service that only emits spans never pays for YAML, SQLite or the causal graph.

Example::

    >>> import tracebraid
    >>> with tracebraid.correlation("order_441"):
    ...     tracebraid.current_correlation_id()
    'order_441'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracebraid.errors import (
    BrokerUnavailableError,
    ConfigurationError,
    InputError,
    MissingExtraError,
    StoreError,
    TracebraidError,
)
from tracebraid.instrument import instrument
from tracebraid.model import (
    CorrelationId,
    EventId,
    Span,
    SpanEvent,
    SpanId,
    SpanKind,
    SpanLink,
    StatusCode,
    TraceId,
)
from tracebraid.processor import SpanProcessor
from tracebraid.propagator import TracebraidPropagator
from tracebraid.sdk import (
    Extracted,
    MessageContext,
    NoParent,
    Outcome,
    Processing,
    carry_context,
    configure,
    consuming,
    consuming_batch,
    correlation,
    current_correlation_id,
    current_processing,
    extract,
    extract_envelope,
    inject,
    publishing,
    retrying,
    step,
    to_envelope,
)
from tracebraid.sdk.broker import (
    Broker,
    Delivery,
    EventBus,
    InMemoryBroker,
    RetryPolicy,
    open_broker,
)

if TYPE_CHECKING:  # type checkers see the lazy names as the real things
    from tracebraid.analysis import WorkflowAnalysis, analyze, latency, pending, retries, why
    from tracebraid.analysis.lint import lint
    from tracebraid.sdk.sampler import WorkflowSampler
    from tracebraid.store import SpanStore, open_store

__version__ = "0.1.0"

# name -> module, imported on first attribute access (PEP 562)
_LAZY = {
    "analyze": "tracebraid.analysis",
    "why": "tracebraid.analysis",
    "pending": "tracebraid.analysis",
    "retries": "tracebraid.analysis",
    "latency": "tracebraid.analysis",
    "WorkflowAnalysis": "tracebraid.analysis",
    "lint": "tracebraid.analysis.lint",
    "open_store": "tracebraid.store",
    "SpanStore": "tracebraid.store",
    # loads OpenTelemetry's SDK: only services that configure sampling pay for it
    "WorkflowSampler": "tracebraid.sdk.sampler",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tracebraid' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [  # noqa: RUF022 - the lazy names are listed after the eager ones
    "Broker",
    "BrokerUnavailableError",
    "ConfigurationError",
    "CorrelationId",
    "Delivery",
    "EventBus",
    "EventId",
    "Extracted",
    "InMemoryBroker",
    "InputError",
    "MessageContext",
    "MissingExtraError",
    "NoParent",
    "Outcome",
    "Processing",
    "RetryPolicy",
    "Span",
    "SpanProcessor",
    "SpanEvent",
    "SpanId",
    "SpanKind",
    "SpanLink",
    "StatusCode",
    "StoreError",
    "TraceId",
    "TracebraidError",
    "TracebraidPropagator",
    "__version__",
    "carry_context",
    "configure",
    "consuming",
    "consuming_batch",
    "correlation",
    "current_correlation_id",
    "current_processing",
    "extract",
    "extract_envelope",
    "inject",
    "instrument",
    "open_broker",
    "publishing",
    "retrying",
    "step",
    "to_envelope",
    # loaded on first use
    "SpanStore",
    "WorkflowAnalysis",
    "WorkflowSampler",
    "analyze",
    "latency",
    "lint",
    "open_store",
    "pending",
    "retries",
    "why",
]
