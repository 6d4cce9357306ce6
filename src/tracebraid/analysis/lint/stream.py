"""A store's workflows, one at a time: what ``lint_store`` reads, never the whole store.

How a workflow is gathered (pure decisions, thin store calls):

1. The trace summaries in the time window are paged (``recent_traces``), keeping only
   each trace's ID and correlation IDs: memory grows with the number of traces, never
   with spans.
2. Traces sharing a correlation ID form a workflow; its spans are read in one
   ``spans_of_traces`` call and analysed.
3. What the analysis points at but does not hold (its ``frontier``: traces named by
   links, events consumed here whose producer is elsewhere, causation IDs) is
   fetched and joined, unless the trace carries only *other* correlation IDs (a
   neighbouring workflow, as a batch consumer's other orders are). Repeat until
   nothing new, or ``max_traces``.

A trace belongs to the first workflow that reaches it. A later workflow that reaches
it again (an island without correlation ID, whose producer was linted already) gets
it as context: ``StoredWorkflow.seen`` says which traces were yielded before, so the
lint reports only what the new traces add.

Example::

    >>> from tracebraid.store import open_store
    >>> from tracebraid.testing.workflows import islands, order_flow
    >>> store = open_store("sqlite:///:memory:")
    >>> _ = store.write(order_flow().spans + islands(2).spans)
    >>> sorted(len(w.trace_ids) for w in iter_stored_workflows(store))
    [1, 4]
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass

from tracebraid.analysis.workflow import WorkflowAnalysis, analyze
from tracebraid.messaging import correlation_of
from tracebraid.model import CorrelationId, Span, TraceId
from tracebraid.store.base import SpanStore

__all__ = [
    "DEFAULT_MAX_TRACES",
    "DEFAULT_PAGE",
    "StoredWorkflow",
    "TraceIndex",
    "WorkflowReader",
    "iter_stored_workflows",
    "reaches_beyond",
    "read_index",
]

DEFAULT_PAGE = 5_000
"""Trace summaries read per ``recent_traces`` call."""
DEFAULT_MAX_TRACES = 10_000
"""A workflow stops growing at this many traces (and a warning says so)."""
_END_OF_TIME = 2**63 - 1

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredWorkflow:
    """One workflow read from a store, analysed.

    ``seen``: traces of it that an earlier workflow already yielded (context for
    stitching, not news). ``truncated``: it stopped growing at ``max_traces``.
    """

    spans: tuple[Span, ...]
    analysis: WorkflowAnalysis
    trace_ids: tuple[TraceId, ...]
    seen: frozenset[TraceId]
    truncated: bool = False


@dataclass(slots=True)
class TraceIndex:
    """Trace <-> correlation ID, for the traces in the window: IDs only, no spans."""

    order: list[TraceId]
    correlations: dict[TraceId, tuple[CorrelationId, ...]]
    traces: dict[CorrelationId, list[TraceId]]

    def component(self, start: Iterable[TraceId], limit: int) -> set[TraceId]:
        """``start`` and every trace that shares a correlation ID with them, transitively."""
        found = set(start)
        queue = list(found)
        followed: set[CorrelationId] = set()
        while queue and len(found) < limit:
            trace = queue.pop()
            for correlation in self.correlations.get(trace, ()):
                if correlation in followed:
                    continue
                followed.add(correlation)
                for other in self.traces.get(correlation, ()):
                    if other not in found and len(found) < limit:
                        found.add(other)
                        queue.append(other)
        return found

    def components(self, limit: int) -> Iterator[set[TraceId]]:
        """The index cut into disjoint components, in index order."""
        assigned: set[TraceId] = set()
        for start in self.order:
            if start not in assigned:
                found = self.component([start], limit) - assigned
                assigned |= found
                yield found


def read_index(
    store: SpanStore, since_ns: int | None, until_ns: int | None, page: int = DEFAULT_PAGE
) -> TraceIndex:
    """Page the trace summaries of the window (newest first) into a ``TraceIndex``."""
    index = TraceIndex([], {}, {})
    before = until_ns if until_ns is not None else _END_OF_TIME
    while True:
        summaries = store.recent_traces(limit=page, before_ns=before)
        fresh = [s for s in summaries if s.trace_id not in index.correlations]
        for summary in fresh:
            if since_ns is not None and summary.start_ns < since_ns:
                continue
            index.order.append(summary.trace_id)
            index.correlations[summary.trace_id] = summary.correlation_ids
            for correlation in summary.correlation_ids:
                index.traces.setdefault(correlation, []).append(summary.trace_id)
        if len(summaries) < page or (since_ns is not None and summaries[-1].start_ns < since_ns):
            return index
        last = summaries[-1].start_ns
        if not fresh:
            # A whole page started in one nanosecond: step past it rather than loop.
            _log.warning("more than %d traces start at %d ns; some were skipped", page, last)
            before = last
        else:
            before = last + 1  # traces starting in the same nanosecond come again; skipped


def _correlations(spans: Iterable[Span]) -> set[str]:
    found: set[str] = set()
    for span in spans:
        value = correlation_of(span.attributes)
        if value is not None:
            found.add(value)
    return found


def reaches_beyond(analysis: WorkflowAnalysis, traces: Collection[TraceId]) -> bool:
    """True when the analysis points at traces or events that are not among ``traces``."""
    frontier = analysis.frontier
    return bool(frontier.event_ids) or any(t not in traces for t in frontier.trace_ids)


@dataclass(slots=True)
class WorkflowReader:
    """Reads one workflow at a time from a store, growing it along its frontier."""

    store: SpanStore
    index: TraceIndex
    windowed: bool
    max_traces: int = DEFAULT_MAX_TRACES

    def start(self, first: Iterable[TraceId]) -> tuple[set[TraceId], list[Span]]:
        """The traces sharing correlation IDs with ``first``, and their spans."""
        traces = self.index.component(first, self.max_traces)
        if self.windowed:
            # Traces outside the window may carry the workflow's correlation IDs too.
            for correlation in {c for t in traces for c in self.index.correlations.get(t, ())}:
                traces.update(s.trace_id for s in self.store.spans_of_correlation(correlation))
        return traces, self.store.spans_of_traces(sorted(traces))

    def complete(
        self,
        traces: set[TraceId],
        spans: list[Span],
        visited: Collection[TraceId],
        analysis: WorkflowAnalysis | None = None,
    ) -> StoredWorkflow:
        """Follow the frontier until nothing new; ``visited`` traces count as seen."""
        excluded: set[TraceId] = set()
        followed: set[str] = set()
        truncated = len(traces) >= self.max_traces
        own: set[str] | None = None  # read once when first needed, then grown, never re-read
        while True:
            analysis = analysis or analyze(spans)
            wanted = {t for t in analysis.frontier.trace_ids if t not in traces}
            for event in analysis.frontier.event_ids:
                if event not in followed:
                    followed.add(event)
                    wanted.update(s.trace_id for s in self.store.spans_by_event(event))
            wanted -= traces | excluded
            if not wanted or truncated:
                break
            wanted = self.index.component(wanted, self.max_traces) - traces
            room = self.max_traces - len(traces)
            if len(wanted) > room:
                truncated = True
                wanted = set(sorted(wanted)[:room])
            if own is None:
                own = _correlations(spans)
            fetched: dict[TraceId, list[Span]] = {t: [] for t in wanted}
            for span in self.store.spans_of_traces(sorted(wanted)):
                fetched[span.trace_id].append(span)
            admitted: list[Span] = []
            joined: set[str] = set()
            for trace, found in fetched.items():
                carried = _correlations(found)
                if own and carried and carried.isdisjoint(own):
                    excluded.add(trace)  # a neighbouring workflow, not this one
                else:
                    traces.add(trace)
                    admitted += found
                    joined |= carried
            if not admitted:
                break
            own |= joined
            spans = sorted([*spans, *admitted], key=lambda s: (s.start_ns, s.trace_id, s.span_id))
            analysis = None
        if truncated:
            _log.warning(
                "a workflow spans more than %d traces; linted the first %d",
                self.max_traces,
                len(traces),
            )
        return StoredWorkflow(
            spans=tuple(spans),
            analysis=analysis,
            trace_ids=tuple(sorted(traces)),
            seen=frozenset(t for t in traces if t in visited),
            truncated=truncated,
        )


def iter_stored_workflows(
    store: SpanStore,
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    page: int = DEFAULT_PAGE,
    max_traces: int = DEFAULT_MAX_TRACES,
) -> Iterator[StoredWorkflow]:
    """Every workflow with a trace starting in [``since_ns``, ``until_ns``), analysed.

    Raises ``StoreError`` when the store cannot be read.
    """
    index = read_index(store, since_ns, until_ns, page)
    windowed = since_ns is not None or until_ns is not None
    reader = WorkflowReader(store, index, windowed, max_traces)
    visited: set[TraceId] = set()
    for start in index.order:
        if start in visited:
            continue
        workflow = reader.complete(*reader.start([start]), visited)
        yield workflow
        visited.update(workflow.trace_ids)
