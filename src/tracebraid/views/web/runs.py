"""Runs of a workflow: one correlation ID reused by separate user actions, told apart.

A correlation ID names a business workflow (``order_441``), and the same order may
see a second user action half an hour later (a cancellation, a retry from the
shop). Loaded as one, the two would be "a workflow that took 33 minutes" with
every bar a sliver. A **run** is a set of the workflow's traces that belong
together: traces joined by causality (a consumer took an event another trace
published, a parent or a link into another trace) always share a run; unjoined
groups share one when they overlap or follow within ``RUN_GAP_NS``.

The counts every page shows of a workflow (``WorkflowCounts``) come from the
analysis document, by one rule, here: the search row and the workflow header
print the same numbers, and so does ``show --json``'s summary.

Example::

    >>> from tracebraid.testing.workflows import order_flow
    >>> [len(r.trace_ids) for r in split_runs(order_flow().spans)]
    [1]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypedDict

from tracebraid.messaging import MessagingView, Role, normalize
from tracebraid.model import Span
from tracebraid.views.schema import WorkflowDocument

__all__ = [
    "RUN_GAP_NS",
    "CountsJson",
    "Run",
    "RunJson",
    "run_json",
    "run_of",
    "split_runs",
    "workflow_counts",
]

RUN_GAP_NS = 5 * 60 * 1_000_000_000
"""Causally unjoined traces this far apart (5 min) are separate runs."""


@dataclass(frozen=True, slots=True)
class Run:
    """Traces of one workflow that belong together, oldest run first (``index`` 0)."""

    index: int
    trace_ids: tuple[str, ...]
    start_ns: int
    end_ns: int


class RunJson(TypedDict):
    index: int
    trace_ids: list[str]
    start_ns: int
    end_ns: int


def run_json(run: Run) -> RunJson:
    return {
        "index": run.index,
        "trace_ids": list(run.trace_ids),
        "start_ns": run.start_ns,
        "end_ns": run.end_ns,
    }


class _Groups:
    """Union-find over trace IDs."""

    def __init__(self, traces: Iterable[str]) -> None:
        self.parent = {t: t for t in traces}

    def find(self, trace: str) -> str:
        while self.parent[trace] != trace:
            self.parent[trace] = self.parent[self.parent[trace]]
            trace = self.parent[trace]
        return trace

    def join(self, a: str, b: str) -> None:
        if a in self.parent and b in self.parent:
            self.parent[self.find(a)] = self.find(b)


def split_runs(
    spans: Sequence[Span],
    *,
    gap_ns: int = RUN_GAP_NS,
    views: Sequence[MessagingView] | None = None,
) -> list[Run]:
    """The runs of a workflow's spans, oldest first (one run when nothing is far apart).

    ``views`` are the spans' ``normalize`` results when the caller has them (an
    analysis' graph), in the same order.
    """
    if not spans:
        return []
    if views is None:
        views = [normalize(span) for span in spans]
    bounds: dict[str, tuple[int, int]] = {}
    by_span: dict[str, str] = {}
    for span in spans:
        lo, hi = bounds.get(span.trace_id, (span.start_ns, span.end_ns))
        bounds[span.trace_id] = (min(lo, span.start_ns), max(hi, span.end_ns))
        by_span[span.span_id] = span.trace_id
    groups = _Groups(bounds)
    produced: dict[str, str] = {}
    consumed: list[tuple[str, str]] = []
    for span, view in zip(spans, views, strict=True):
        if view.event_id is not None:
            if view.role is Role.PRODUCER:
                produced.setdefault(view.event_id, span.trace_id)
            elif view.role is Role.CONSUMER:
                consumed.append((view.event_id, span.trace_id))
        for link in span.links:
            groups.join(span.trace_id, link.trace_id)
        if span.parent_span_id is not None and span.parent_span_id in by_span:
            groups.join(span.trace_id, by_span[span.parent_span_id])
    for event_id, trace in consumed:
        if event_id in produced:
            groups.join(trace, produced[event_id])
    members: dict[str, list[str]] = {}
    for trace in bounds:
        members.setdefault(groups.find(trace), []).append(trace)
    clusters = sorted(
        (
            min(bounds[t][0] for t in traces),
            max(bounds[t][1] for t in traces),
            sorted(traces),
        )
        for traces in members.values()
    )
    merged: list[tuple[int, int, list[str]]] = []
    for start, end, traces in clusters:
        if merged and start - merged[-1][1] <= gap_ns:
            last = merged[-1]
            merged[-1] = (last[0], max(last[1], end), last[2] + traces)
        else:
            merged.append((start, end, traces))
    return [
        Run(index=i, trace_ids=tuple(sorted(traces)), start_ns=start, end_ns=end)
        for i, (start, end, traces) in enumerate(merged)
    ]


def run_of(runs: Sequence[Run], trace_id: str, start_ns: int) -> Run:
    """The run holding ``trace_id``; a trace in none (one holding only a start marker,
    which the graph leaves out) goes to the last run started before it."""
    for run in runs:
        if trace_id in run.trace_ids:
            return run
    earlier = [run for run in runs if run.start_ns <= start_ns]
    return earlier[-1] if earlier else runs[0]


class CountsJson(TypedDict):
    retries: int
    failing: int
    pending: int
    lost: int
    lagging: int
    broken_links: int
    dead_letters: int
    duplicates: int


def workflow_counts(document: WorkflowDocument) -> CountsJson:
    """What a workflow's badges count, read off its analysis document.

    ``pending`` is branches not finished (in flight or not started, the larger of the
    two answers); ``failing`` branches whose last attempt failed; ``broken_links``
    propagation breaks or island traces, whichever the analysis found more of.
    """
    summary = document["summary"]
    return {
        "retries": summary["retries"],
        "failing": sum(1 for b in document["branches"] if b["status"] == "failed"),
        "pending": max(summary["pending"], summary["in_flight"]),
        "lost": summary["lost"],
        "lagging": len(document["lagging"]),
        "broken_links": max(summary["broken_links"], len(document["islands"])),
        "dead_letters": summary["dead_letters"],
        "duplicates": summary["duplicates"],
    }
