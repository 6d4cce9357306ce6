"""The SDK: context model, propagation, and producer/consumer/step spans on OpenTelemetry.

Spans go to whatever TracerProvider the application configured; tracebraid adds spans
and context, it never replaces either.

Example::

    >>> from tracebraid.sdk import consuming, extract, publishing
    >>> with publishing("order.placed", destination="orders") as pub:
    ...     headers = pub.headers()
    >>> with consuming(extract(headers), step="reserve-inventory", consumer="inventory",
    ...                destination="orders") as c:
    ...     with publishing("inventory.reserved", destination="inventory") as follow_up:
    ...         pass
    >>> follow_up.message.causation_id == pub.message.event_id
    True
"""

from __future__ import annotations

from tracebraid.sdk._tracers import configure
from tracebraid.sdk.carriers import (
    ATTEMPT_HEADER,
    BAGGAGE_HEADER,
    BYTES_HEADERS,
    CAUSATION_ID_HEADER,
    CORRELATION_ID_HEADER,
    EVENT_ID_HEADER,
    EVENT_NAME_HEADER,
    KAFKA_HEADERS,
    STR_HEADERS,
    TRACEPARENT_HEADER,
    TRACESTATE_HEADER,
    HeaderCarrier,
)
from tracebraid.sdk.consume import Consumption, consuming, consuming_batch
from tracebraid.sdk.context import (
    BAGGAGE_CORRELATION_KEY,
    MessageContext,
    Outcome,
    Processing,
    carry_context,
    correlation,
    current_correlation_id,
    current_processing,
    new_correlation_id,
    new_event_id,
)
from tracebraid.sdk.convert import to_span
from tracebraid.sdk.envelope import extract_envelope, to_envelope
from tracebraid.sdk.propagation import Extracted, NoParent, extract, inject
from tracebraid.sdk.publish import Publication, publishing
from tracebraid.sdk.retry import exponential_backoff, retrying
from tracebraid.sdk.step import Step, step

__all__ = [
    "ATTEMPT_HEADER",
    "BAGGAGE_CORRELATION_KEY",
    "BAGGAGE_HEADER",
    "BYTES_HEADERS",
    "CAUSATION_ID_HEADER",
    "CORRELATION_ID_HEADER",
    "EVENT_ID_HEADER",
    "EVENT_NAME_HEADER",
    "KAFKA_HEADERS",
    "STR_HEADERS",
    "TRACEPARENT_HEADER",
    "TRACESTATE_HEADER",
    "Consumption",
    "Extracted",
    "HeaderCarrier",
    "MessageContext",
    "NoParent",
    "Outcome",
    "Processing",
    "Publication",
    "Step",
    "carry_context",
    "configure",
    "consuming",
    "consuming_batch",
    "correlation",
    "current_correlation_id",
    "current_processing",
    "exponential_backoff",
    "extract",
    "extract_envelope",
    "inject",
    "new_correlation_id",
    "new_event_id",
    "publishing",
    "retrying",
    "step",
    "to_envelope",
    "to_span",
]
