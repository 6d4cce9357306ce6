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
    "attribute_match",
    "in_kinds",
    "spans_where",
    "trace_summaries",
]

ERROR = "StatusCode IN (" + ", ".join(f"'{text}'" for text in ERROR_STATUSES) + ")"
"""SQL true for a failed span, whichever generation of the exporter wrote it."""

CORRELATION = attribute_expr(semconv.CORRELATION_ID)
"""SQL for a span's correlation ID ('' when none)."""

_DEDUP = "LIMIT 1 BY TraceId, SpanId"


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


def attribute_match(canonicals: tuple[str, ...], param: str, *, attribute_items: bool) -> str:
    """SQL true when ``semconv.first_of(SpanAttributes, c)`` equals ``{param}`` for some ``c``.

    The plain ``SpanAttributes[key] = value`` disjunction is what the exporter's
    skip indexes (bloom filter on map values, or text index on ``key=value``
    items) can prune granules with; the ``first_of`` expression keeps it exact.
    """
    value = f"{{{param}:String}}"
    keys = list(dict.fromkeys(key for c in canonicals for key in semconv.ALIASES.get(c, (c,))))
    if attribute_items:
        prune = " OR ".join(f"has(SpanAttributeItems, concat('{key}=', {value}))" for key in keys)
    else:
        prune = " OR ".join(f"SpanAttributes['{key}'] = {value}" for key in keys)
    exact = " OR ".join(f"{attribute_expr(c)} = {value}" for c in canonicals)
    return f"({prune}) AND ({exact})"


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
