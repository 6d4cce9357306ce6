"""The one vocabulary every part of tracebraid speaks: finished spans as immutable records.

The SDK turns OpenTelemetry's ``ReadableSpan`` into these, the collector turns OTLP
into these, the stores persist and return these, and the analysis is pure functions
over them. Nothing else crosses a module boundary.

IDs are lowercase hex strings, as OTLP/JSON, Jaeger and the OpenTelemetry
Collector's ClickHouse exporter all write them: 32 characters for a trace ID, 16
for a span ID. The identities of DESIGN.md are distinct ``NewType`` s so a type
checker refuses an event ID where a correlation ID is expected.

Example::

    >>> span = Span(
    ...     trace_id=TraceId("4bf92f3577b34da6a3ce929d0e0e4736"),
    ...     span_id=SpanId("00f067aa0ba902b7"),
    ...     parent_span_id=None,
    ...     name="reserve-inventory",
    ...     kind=SpanKind.CONSUMER,
    ...     start_ns=1_000,
    ...     end_ns=31_000_000,
    ...     service="inventory",
    ... )
    >>> span.duration_ns
    30999000
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NewType, TypeAlias

__all__ = [
    "AttributeValue",
    "Attributes",
    "CorrelationId",
    "EventId",
    "Span",
    "SpanEvent",
    "SpanId",
    "SpanKind",
    "SpanLink",
    "StatusCode",
    "TraceId",
    "is_valid_span_id",
    "is_valid_trace_id",
]

TraceId = NewType("TraceId", str)
"""32 lowercase hex characters, never all zero: the overall causal path."""
SpanId = NewType("SpanId", str)
"""16 lowercase hex characters, never all zero: one processing segment."""
CorrelationId = NewType("CorrelationId", str)
"""One business workflow or request family, e.g. ``order_441``."""
EventId = NewType("EventId", str)
"""One concrete event record, e.g. ``evt_8821``; also the type of a causation ID."""

AttributeValue: TypeAlias = (
    str
    | bool
    | int
    | float
    | tuple[str, ...]
    | tuple[bool, ...]
    | tuple[int, ...]
    | tuple[float, ...]
)
Attributes: TypeAlias = Mapping[str, AttributeValue]

_HEX = frozenset("0123456789abcdef")


def is_valid_trace_id(value: str) -> bool:
    """True for 32 lowercase hex characters that are not all zero (W3C trace-id)."""
    return len(value) == 32 and _HEX.issuperset(value) and value != "0" * 32


def is_valid_span_id(value: str) -> bool:
    """True for 16 lowercase hex characters that are not all zero (W3C parent-id)."""
    return len(value) == 16 and _HEX.issuperset(value) and value != "0" * 16


class SpanKind(enum.IntEnum):
    """OpenTelemetry span kinds, numbered as in OTLP (0 is "unspecified")."""

    UNSPECIFIED = 0
    INTERNAL = 1
    SERVER = 2
    CLIENT = 3
    PRODUCER = 4
    CONSUMER = 5


class StatusCode(enum.IntEnum):
    """OpenTelemetry span status codes, numbered as in OTLP."""

    UNSET = 0
    OK = 1
    ERROR = 2


@dataclass(frozen=True, slots=True)
class SpanEvent:
    """A timestamped event recorded on a span (an exception, a start marker, ...)."""

    name: str
    time_ns: int
    attributes: Attributes = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SpanLink:
    """A span link: the span holding it was caused by (``trace_id``, ``span_id``)."""

    trace_id: TraceId
    span_id: SpanId
    attributes: Attributes = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Span:
    """One finished span, as exported by any OpenTelemetry SDK.

    ``attributes`` holds the span's own attributes exactly as received; the
    analysis normalises messaging conventions of every generation when it reads
    them (``tracebraid.semconv``), so nothing is rewritten on the way in.
    """

    trace_id: TraceId
    span_id: SpanId
    parent_span_id: SpanId | None
    name: str
    kind: SpanKind
    start_ns: int
    end_ns: int
    service: str
    status: StatusCode = StatusCode.UNSET
    status_message: str = ""
    attributes: Attributes = field(default_factory=dict)
    events: tuple[SpanEvent, ...] = ()
    links: tuple[SpanLink, ...] = ()
    resource: Attributes = field(default_factory=dict)
    scope: str = ""

    @property
    def duration_ns(self) -> int:
        """End minus start; never negative (a span that ends before it starts lasts 0)."""
        return max(0, self.end_ns - self.start_ns)

    @property
    def key(self) -> tuple[TraceId, SpanId]:
        """The span's identity across every trace: (trace ID, span ID)."""
        return (self.trace_id, self.span_id)

    @property
    def failed(self) -> bool:
        """True when the span's status is ERROR."""
        return self.status is StatusCode.ERROR
