"""tracebraid: causal tracing for asynchronous, event-driven systems, on OpenTelemetry.

The public API is re-exported here; everything under a ``_name`` or a subpackage
not listed in ``__all__`` may change without notice.
"""

from __future__ import annotations

from tracebraid.errors import (
    BrokerUnavailableError,
    ConfigurationError,
    InputError,
    MissingExtraError,
    StoreError,
    TracebraidError,
)
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

__version__ = "0.1.0"

__all__ = [
    "BrokerUnavailableError",
    "ConfigurationError",
    "CorrelationId",
    "EventId",
    "Extracted",
    "InputError",
    "MessageContext",
    "MissingExtraError",
    "NoParent",
    "Outcome",
    "Processing",
    "Span",
    "SpanEvent",
    "SpanId",
    "SpanKind",
    "SpanLink",
    "StatusCode",
    "StoreError",
    "TraceId",
    "TracebraidError",
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
    "publishing",
    "retrying",
    "step",
    "to_envelope",
]
