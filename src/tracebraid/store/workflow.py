"""One business workflow's spans, gathered across every trace it touched.

A workflow rarely fits in one trace: a consumer whose producer did not propagate
``traceparent`` starts a new trace (an island), a batch consumer links to the
producers it drained, and follow-up events may be published from elsewhere. Starting
from a key (trace ID, correlation ID or event ID), ``load_workflow`` takes the
closure over

- every trace carrying one of the workflow's correlation IDs;
- delivery by message identity: every trace with a span that shows one of the
  workflow's strong message identities (``tracebraid.messaging``: message ID, Kafka
  offset, CloudEvents ID, Celery task ID; a weak Kafka key never joins) or names one
  as its causation ID, in either role, and the message IDs that links to absent
  spans carry: every island the analysis' stitching can join is gathered;
- span links, both ways: the traces a span links to and the traces whose spans link
  to a span of the workflow.

One rule keeps fan-in from merging the whole fleet into one workflow: the
workflow's correlation IDs are the key's (when it is one) or those of the nearest
traces that carry any, and a trace reached through an event or a link whose spans
carry only *other* correlation IDs is a neighbouring workflow (the other orders a
batch consumer drained), not part of this one. The closure stops
after ``max_traces`` traces and says so (``WorkflowSpans.truncated``).

The closure grows by rounds: each round fetches the new traces whole
(``spans_of_traces``) and asks where their keys not followed yet lead, all kinds at
once (``trace_ids_with``). Two store calls a round, however many spans, events and
links the round brings; the rounds are as many as the longest chain of traces found
only through the previous one (a workflow whose traces all carry its correlation ID
takes two or three).

The decisions are pure (``keys_of``, ``keys_named_by``, ``WorkflowClosure``);
``fetch_workflow`` is the thin loop that asks the store.

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
from tracebraid.messaging import normalize
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
    "keys_named_by",
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


def keys_of(spans: Iterable[Span]) -> WorkflowKeys:
    """Every key in ``spans`` that the closure can follow, read through the messaging
    vocabulary (every convention generation, every strong message identity)."""
    trace_ids: set[TraceId] = set()
    correlations: set[CorrelationId] = set()
    events: set[EventId] = set()
    targets: set[tuple[TraceId, SpanId]] = set()
    for span in spans:
        trace_ids.add(span.trace_id)
        targets.add(span.key)
        view = normalize(span)
        if view.correlation_id is not None:
            correlations.add(view.correlation_id)
        events.update(EventId(identity) for identity in view.strong_identities)
        if view.causation_id is not None:
            events.add(view.causation_id)
        for link in span.links:
            trace_ids.add(link.trace_id)
            # A batch consumer's records whose producers are elsewhere: the analysis
            # joins them by the message ID the link carries.
            said = semconv.first_of(link.attributes, semconv.MESSAGE_ID)
            if said is not None and said != "":
                events.add(EventId(str(said)))
    return WorkflowKeys(
        frozenset(trace_ids), frozenset(correlations), frozenset(events), frozenset(targets)
    )


def _merged(keys: Collection[WorkflowKeys]) -> WorkflowKeys:
    return WorkflowKeys(
        trace_ids=frozenset().union(*(k.trace_ids for k in keys)),
        correlation_ids=frozenset().union(*(k.correlation_ids for k in keys)),
        event_ids=frozenset().union(*(k.event_ids for k in keys)),
        link_targets=frozenset().union(*(k.link_targets for k in keys)),
    )


def keys_named_by(key: str) -> WorkflowKeys:
    """What a key given by a user may be: a correlation or event ID, or a trace ID."""
    return WorkflowKeys(
        trace_ids=frozenset({TraceId(key)}) if is_valid_trace_id(key) else frozenset(),
        correlation_ids=frozenset({CorrelationId(key)}),
        event_ids=frozenset({EventId(key)}),
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
    key: str | None = None
    """The key the workflow was asked by: when the first traces carry it as a
    correlation ID, it alone names the workflow."""
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
        return self._carries_ours(keys_of(spans).correlation_ids)

    def _carries_ours(self, carried: frozenset[CorrelationId]) -> bool:
        return (
            not self.correlation_ids or not carried or not carried.isdisjoint(self.correlation_ids)
        )

    def admit(self, traces: dict[TraceId, list[Span]]) -> WorkflowKeys:
        """Take fetched traces in; the keys of their members that were not followed yet."""
        # Each trace's keys, read once: they decide both membership and what comes next.
        fetched = {trace_id: keys_of(spans) for trace_id, spans in traces.items() if spans}
        if not self.correlation_ids:
            # The nearest traces that carry correlation IDs name the workflow.
            carried = _merged(fetched.values()).correlation_ids
            named = CorrelationId(self.key) if self.key is not None else None
            self.correlation_ids = frozenset({named}) if named in carried else carried
        admitted = {
            trace_id: keys
            for trace_id, keys in fetched.items()
            if self._carries_ours(keys.correlation_ids)
        }
        for trace_id in admitted:
            self.members[trace_id] = traces[trace_id]
        keys = _merged(admitted.values())
        correlations = keys.correlation_ids
        if self.correlation_ids:
            correlations = correlations & self.correlation_ids
        return self.follow(
            WorkflowKeys(keys.trace_ids, correlations, keys.event_ids, keys.link_targets)
        )

    def follow(self, keys: WorkflowKeys) -> WorkflowKeys:
        """The part of ``keys`` not followed yet (traces: not fetched yet); from now on
        it counts as followed."""
        return WorkflowKeys(
            trace_ids=keys.trace_ids - self._requested,
            correlation_ids=self._unfollowed("correlation", keys.correlation_ids),
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


def _traces_found(store: SpanStore, keys: WorkflowKeys) -> set[TraceId]:
    """The traces ``keys`` lead to: one store call for every correlation, event and link."""
    found = set(keys.trace_ids)
    if keys.correlation_ids or keys.event_ids or keys.link_targets:
        found |= store.trace_ids_with(
            correlation_ids=keys.correlation_ids,
            event_ids=keys.event_ids,
            link_targets=keys.link_targets,
        )
    return found


def _spans_by_trace(store: SpanStore, trace_ids: list[TraceId]) -> dict[TraceId, list[Span]]:
    fetched: dict[TraceId, list[Span]] = {trace_id: [] for trace_id in trace_ids}
    for span in store.spans_of_traces(trace_ids):
        fetched[span.trace_id].append(span)
    return fetched


def fetch_workflow(
    store: SpanStore, key: str, *, max_traces: int = DEFAULT_MAX_TRACES
) -> WorkflowSpans:
    """Every span of the workflow ``key`` names (a trace, correlation or event ID).

    Example::

        >>> from tracebraid.store import open_store
        >>> fetch_workflow(open_store("sqlite:///:memory:"), "evt_8821").truncated
        False
    """
    closure = WorkflowClosure(correlation_ids=frozenset(), max_traces=max_traces, key=key)
    to_fetch = closure.to_fetch(_traces_found(store, closure.follow(keys_named_by(key))))
    while to_fetch:
        keys = closure.admit(_spans_by_trace(store, to_fetch))
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
