"""One business workflow's spans, gathered across every trace it touched.

A workflow rarely fits in one trace: a consumer whose producer did not propagate
``traceparent`` starts a new trace (an island), a batch consumer links to the
producers it drained, and follow-up events may be published from elsewhere. Starting
from a key (trace ID, correlation ID or event ID), ``load_workflow`` takes the
closure over

- every trace carrying one of the workflow's correlation IDs;
- delivery by event ID: every trace with a span whose event ID (``messaging.message.id``)
  or causation ID is an event ID of the workflow, in either role;
- span links, both ways: the traces a span links to and the traces whose spans link
  to a span of the workflow.

One rule keeps fan-in from merging the whole fleet into one workflow: the
workflow's correlation IDs are the key's (when it is one) or those of the nearest
traces that carry any, and a trace reached through an event or a link whose spans
carry only *other* correlation IDs is a neighbouring workflow (the other orders a
batch consumer drained), not part of this one. The closure stops
after ``max_traces`` traces and says so (``WorkflowSpans.truncated``).

The decisions are pure (``keys_of``, ``WorkflowClosure``); ``fetch_workflow`` is the
thin loop that asks the store.

Example::

    >>> from tracebraid.store import open_store
    >>> load_workflow(open_store("sqlite:///:memory:"), "order_441")
    []
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from tracebraid import semconv
from tracebraid.model import (
    CorrelationId,
    EventId,
    Span,
    SpanId,
    TraceId,
    is_valid_trace_id,
)
from tracebraid.store.base import SpanStore

__all__ = [
    "DEFAULT_MAX_TRACES",
    "WorkflowClosure",
    "WorkflowKeys",
    "WorkflowSpans",
    "fetch_workflow",
    "keys_of",
    "load_workflow",
]

DEFAULT_MAX_TRACES = 10_000

_log = logging.getLogger(__name__)
_K = TypeVar("_K")


@dataclass(frozen=True, slots=True)
class WorkflowKeys:
    """The keys in a set of spans that can lead to more of their workflow."""

    trace_ids: frozenset[TraceId] = frozenset()
    """The spans' own traces and the traces they link to."""
    correlation_ids: frozenset[CorrelationId] = frozenset()
    event_ids: frozenset[EventId] = frozenset()
    """Event IDs and causation IDs."""
    link_targets: frozenset[tuple[TraceId, SpanId]] = frozenset()
    """The spans themselves: another trace may hold a link to any of them."""

    def __bool__(self) -> bool:
        return bool(self.trace_ids or self.correlation_ids or self.event_ids or self.link_targets)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def keys_of(spans: Iterable[Span]) -> WorkflowKeys:
    """Every key in ``spans`` that the closure can follow (convention aliases included)."""
    trace_ids: set[TraceId] = set()
    correlations: set[CorrelationId] = set()
    events: set[EventId] = set()
    targets: set[tuple[TraceId, SpanId]] = set()
    for span in spans:
        trace_ids.add(span.trace_id)
        targets.add(span.key)
        trace_ids.update(link.trace_id for link in span.links)
        correlation = _text(semconv.first_of(span.attributes, semconv.CORRELATION_ID))
        if correlation is not None:
            correlations.add(CorrelationId(correlation))
        for canonical in (semconv.MESSAGE_ID, semconv.CAUSATION_ID):
            event = _text(semconv.first_of(span.attributes, canonical))
            if event is not None:
                events.add(EventId(event))
    return WorkflowKeys(
        frozenset(trace_ids), frozenset(correlations), frozenset(events), frozenset(targets)
    )


@dataclass(slots=True)
class WorkflowClosure:
    """The closure's state: which traces belong, which keys were already followed.

    Pure: it is told what the store answered and says what to ask next.
    """

    correlation_ids: frozenset[CorrelationId]
    """The workflow's own correlation IDs: the key, when it is one, else those of the
    nearest traces that carry any (the starting traces, usually)."""
    max_traces: int = DEFAULT_MAX_TRACES
    truncated: bool = False
    members: dict[TraceId, list[Span]] = field(default_factory=dict)
    _requested: set[TraceId] = field(default_factory=set)
    _followed: set[object] = field(default_factory=set)

    def to_fetch(self, trace_ids: Iterable[TraceId]) -> list[TraceId]:
        """The traces of ``trace_ids`` not fetched yet, as many as the bound allows."""
        new = sorted(set(trace_ids) - self._requested)
        room = self.max_traces - len(self._requested)
        if len(new) > room:
            self.truncated = True
            new = new[: max(0, room)]
        self._requested.update(new)
        return new

    def belongs(self, spans: Collection[Span]) -> bool:
        """Whether a fetched trace is part of the workflow rather than a neighbour."""
        if not self.correlation_ids:
            return True
        carried = keys_of(spans).correlation_ids
        return not carried or not carried.isdisjoint(self.correlation_ids)

    def admit(self, traces: dict[TraceId, list[Span]]) -> WorkflowKeys:
        """Take fetched traces in; the keys of their members that were not followed yet."""
        fetched = [spans for spans in traces.values() if spans]
        if not self.correlation_ids:
            # The nearest traces that carry correlation IDs name the workflow.
            self.correlation_ids = keys_of(s for spans in fetched for s in spans).correlation_ids
        admitted = [spans for spans in fetched if self.belongs(spans)]
        for spans in admitted:
            self.members[spans[0].trace_id] = spans
        keys = keys_of(span for spans in admitted for span in spans)
        correlations = keys.correlation_ids
        if self.correlation_ids:
            correlations = correlations & self.correlation_ids
        return WorkflowKeys(
            trace_ids=keys.trace_ids - self._requested,
            correlation_ids=self._unfollowed("correlation", correlations),
            event_ids=self._unfollowed("event", keys.event_ids),
            link_targets=self._unfollowed("link", keys.link_targets),
        )

    def _unfollowed(self, kind: str, keys: frozenset[_K]) -> frozenset[_K]:
        new = frozenset(k for k in keys if (kind, k) not in self._followed)
        self._followed.update((kind, k) for k in new)
        return new


@dataclass(frozen=True, slots=True)
class WorkflowSpans:
    """What ``fetch_workflow`` found."""

    spans: tuple[Span, ...]
    """Every span of the workflow, in start order."""
    trace_ids: tuple[TraceId, ...]
    correlation_ids: tuple[CorrelationId, ...]
    truncated: bool
    """True when the closure stopped at ``max_traces`` with traces left unexplored."""


def _seed(store: SpanStore, key: str) -> tuple[list[Span], frozenset[CorrelationId]]:
    """The spans a key names directly, and the workflow's correlation IDs."""
    spans: list[Span] = []
    if is_valid_trace_id(key):
        spans += store.spans_of_trace(TraceId(key))
    by_correlation = store.spans_of_correlation(CorrelationId(key))
    spans += by_correlation
    spans += store.spans_by_event(EventId(key))
    if by_correlation:
        return spans, frozenset({CorrelationId(key)})
    return spans, frozenset()


def _traces_found(store: SpanStore, keys: WorkflowKeys) -> set[TraceId]:
    found = set(keys.trace_ids)
    for correlation in sorted(keys.correlation_ids):
        found.update(s.trace_id for s in store.spans_of_correlation(correlation))
    for event in sorted(keys.event_ids):
        found.update(s.trace_id for s in store.spans_by_event(event))
    for trace_id, span_id in sorted(keys.link_targets):
        found.update(s.trace_id for s in store.spans_linking_to(trace_id, span_id))
    return found


def fetch_workflow(
    store: SpanStore, key: str, *, max_traces: int = DEFAULT_MAX_TRACES
) -> WorkflowSpans:
    """Every span of the workflow ``key`` names (a trace, correlation or event ID).

    Example::

        >>> from tracebraid.store import open_store
        >>> fetch_workflow(open_store("sqlite:///:memory:"), "evt_8821").truncated
        False
    """
    seeds, correlations = _seed(store, key)
    closure = WorkflowClosure(correlation_ids=correlations, max_traces=max_traces)
    to_fetch = closure.to_fetch(span.trace_id for span in seeds)
    while to_fetch:
        fetched: dict[TraceId, list[Span]] = {trace_id: [] for trace_id in to_fetch}
        for span in store.spans_of_traces(to_fetch):
            fetched[span.trace_id].append(span)
        keys = closure.admit(fetched)
        to_fetch = closure.to_fetch(_traces_found(store, keys)) if keys else []
    if closure.truncated:
        _log.warning(
            "workflow %r spans more than %d traces; loaded the first %d found",
            key,
            max_traces,
            len(closure.members),
        )
    spans = sorted(
        (span for spans in closure.members.values() for span in spans),
        key=lambda s: (s.start_ns, s.trace_id, s.span_id),
    )
    return WorkflowSpans(
        spans=tuple(spans),
        trace_ids=tuple(sorted(closure.members)),
        correlation_ids=tuple(sorted(closure.correlation_ids)),
        truncated=closure.truncated,
    )


def load_workflow(
    store: SpanStore, key: str, *, max_traces: int = DEFAULT_MAX_TRACES
) -> list[Span]:
    """Every span of the workflow ``key`` names, in start order; ``[]`` for an unknown key.

    Logs a warning when the workflow is larger than ``max_traces`` traces; use
    ``fetch_workflow`` to learn that programmatically.
    """
    return list(fetch_workflow(store, key, max_traces=max_traces).spans)
