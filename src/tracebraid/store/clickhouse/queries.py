"""The SQL the ClickHouse store reads spans with, one builder per question.

Every read ends in ``LIMIT 1 BY TraceId, SpanId``: ``otel_traces`` has no unique
key, so a span written twice (two collectors racing on one replay, or the
Collector and tracebraid both storing it) is stored twice, and the read shows it
once. Times cross the wire as integer nanoseconds (``toUnixTimestamp64Nano``).

Example::

    >>> from tracebraid.store.clickhouse.schema import TableNames
    >>> sql = spans_where(TableNames("otel"), "TraceId = {trace:String}", scope_columns=True)
    >>> sql.endswith("LIMIT 1 BY TraceId, SpanId")
    True
"""

from __future__ import annotations

from tracebraid import semconv
from tracebraid.model import SpanKind
from tracebraid.store.clickhouse.codec import ERROR_STATUSES, kind_values, select_columns
from tracebraid.store.clickhouse.schema import TableNames, attribute_expr

__all__ = [
    "CORRELATION",
    "ERROR",
    "in_kinds",
    "ns_param",
    "spans_where",
    "trace_summaries",
]

ERROR = "StatusCode IN (" + ", ".join(f"'{text}'" for text in ERROR_STATUSES) + ")"
"""SQL true for a failed span, whichever generation of the exporter wrote it."""

CORRELATION = attribute_expr(semconv.CORRELATION_ID)
"""SQL for a span's correlation ID ('' when none)."""

_DEDUP = "LIMIT 1 BY TraceId, SpanId"


def ns_param(name: str) -> str:
    """SQL for the ``DateTime64`` that the ``Int64`` parameter ``name`` holds as nanoseconds."""
    return f"fromUnixTimestamp64Nano({{{name}:Int64}})"


def in_kinds(*kinds: SpanKind) -> str:
    """SQL true for a span of one of ``kinds``."""
    texts = [text for kind in kinds for text in kind_values(kind)]
    return "SpanKind IN (" + ", ".join(f"'{text}'" for text in texts) + ")"


def spans_where(names: TableNames, condition: str, *, scope_columns: bool) -> str:
    """Every span matching ``condition``, in start order, each once."""
    return (
        f"SELECT {select_columns(scope_columns)} FROM {names.traces} "
        f"WHERE {condition} ORDER BY Timestamp, TraceId, SpanId {_DEDUP}"
    )


def trace_summaries(names: TableNames) -> str:
    """One summary row per trace in ``{traces:Array(String)}``: what ``recent_traces`` lists."""
    return f"""SELECT
    TraceId,
    toUnixTimestamp64Nano(min(Timestamp)) AS StartNs,
    max(toUnixTimestamp64Nano(Timestamp) + toInt64(Duration)) AS EndNs,
    count() AS Spans,
    countIf({ERROR}) AS Errors,
    argMin(SpanName, (ParentSpanId != '', Timestamp, SpanId)) AS RootName,
    argMin(ServiceName, (ParentSpanId != '', Timestamp, SpanId)) AS RootService,
    arraySort(groupUniqArrayIf(Correlation, Correlation != '')) AS Correlations
FROM (
    SELECT TraceId, SpanId, ParentSpanId, Timestamp, Duration, StatusCode, SpanName,
           ServiceName, {CORRELATION} AS Correlation
    FROM {names.traces}
    WHERE TraceId IN {{traces:Array(String)}}
    {_DEDUP}
)
GROUP BY TraceId"""
