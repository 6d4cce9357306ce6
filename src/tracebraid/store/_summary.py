"""Per-trace summaries (``traces`` table) folded from span rows: pure, no SQL.

``write`` folds each batch in Python and merges the result into the table with one
upsert per trace, which costs far less than a trigger firing per span. When a batch
held replays, the spans of the touched traces are read back from the table and folded
again from scratch, so a summary only ever counts stored spans.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeAlias

from tracebraid.model import StatusCode

__all__ = ["SUMMARY_COLUMNS", "TRACE_COLUMNS", "TraceFold", "TraceRow", "fold"]

# What ``fold`` reads from each span, in this order.
SUMMARY_COLUMNS = (
    "trace_id",
    "parent_span_id",
    "name",
    "service",
    "start_ns",
    "end_ns",
    "status",
    "correlation_id",
)
TRACE_COLUMNS = (
    "trace_id",
    "start_ns",
    "end_ns",
    "span_count",
    "error_count",
    "root_rank",
    "root_start_ns",
    "root_name",
    "root_service",
)
SummaryInput: TypeAlias = tuple[str, str | None, str, str, int, int, int, str | None]
_ERROR = int(StatusCode.ERROR)


@dataclass(slots=True)
class TraceRow:
    """One ``traces`` row being folded (mutable while folding, then bound as a tuple)."""

    trace_id: str
    start_ns: int
    end_ns: int
    span_count: int
    error_count: int
    root_rank: int  # 0: a span without parent; 1: a stand-in until the root arrives
    root_start_ns: int
    root_name: str
    root_service: str

    def values(self) -> tuple[str, int, int, int, int, int, int, str, str]:
        """The row in ``TRACE_COLUMNS`` order."""
        return (
            self.trace_id,
            self.start_ns,
            self.end_ns,
            self.span_count,
            self.error_count,
            self.root_rank,
            self.root_start_ns,
            self.root_name,
            self.root_service,
        )


@dataclass(slots=True)
class TraceFold:
    """The ``traces`` rows and (correlation ID, trace ID) pairs of a set of spans."""

    traces: dict[str, TraceRow] = field(default_factory=dict)
    correlations: set[tuple[str, str]] = field(default_factory=set)


def fold(spans: Iterable[SummaryInput]) -> TraceFold:
    """Fold spans into one summary row per trace.

    The root is a span without a parent (rank 0) before any other (rank 1), then the
    earliest start, then the first seen; until the root arrives the earliest span
    stands in for it. The table's upsert applies the same order when merging.
    """
    result = TraceFold()
    traces = result.traces
    correlations = result.correlations
    for trace_id, parent, name, service, start, end, status, correlation in spans:
        rank = 0 if parent is None else 1
        row = traces.get(trace_id)
        if row is None:
            traces[trace_id] = TraceRow(
                trace_id, start, end, 1, int(status == _ERROR), rank, start, name, service
            )
        else:
            row.start_ns = min(row.start_ns, start)
            row.end_ns = max(row.end_ns, end)
            row.span_count += 1
            row.error_count += status == _ERROR
            if (rank, start) < (row.root_rank, row.root_start_ns):
                row.root_rank, row.root_start_ns = rank, start
                row.root_name, row.root_service = name, service
        if correlation is not None:
            correlations.add((correlation, trace_id))
    return result
