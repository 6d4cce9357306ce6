"""Broken causality: islands, and the propagation breaks that stitching repaired.

An **island** is a trace whose root is a consumer span that neither a parent nor a
link ties to the event it processed, although that event was produced elsewhere:
broken causality, the seed's design-review case (a producer that did not carry the
trace context forward, so its consumer started a new trace). A span whose parent is
merely absent from the input is not an island: its context arrived, only the parent
span was not exported or not fetched (``CausalGraph.missing_parents`` says so).

An island whose event ID was produced in another trace is joined to its producer by
a stitched ``delivery`` edge (``tracebraid.analysis.graph``); every stitched edge is a
**propagation break**, grouped here by (producer service, producer step, consumer
service, consumer step, destination) with how often it happened, so the report
points at the one publish call that drops its headers.

Example::

    >>> from tracebraid.analysis.graph import build_graph
    >>> from tracebraid.testing.workflows import islands
    >>> graph = build_graph(islands(3).spans)
    >>> [(b.producer_step, b.consumer_step, b.count) for b in find_breaks(graph)]
    [('order.placed publish', 'legacy-audit', 3)]
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from tracebraid.analysis.graph import NO_NODE, CausalGraph, EdgeKind
from tracebraid.analysis.records import SpanRef
from tracebraid.messaging import Role
from tracebraid.model import EventId, TraceId

__all__ = [
    "EXAMPLES_PER_BREAK",
    "Island",
    "IslandCause",
    "PropagationBreak",
    "find_breaks",
    "find_islands",
    "genuine_roots",
]

EXAMPLES_PER_BREAK = 5
"""How many example event and trace IDs a ``PropagationBreak`` keeps."""


@dataclass(frozen=True, slots=True)
class PropagationBreak:
    """Producer -> consumer hand-offs that lost their trace context, and how often."""

    producer_service: str
    producer_step: str
    consumer_service: str
    consumer_step: str
    destination: str | None
    count: int
    event_ids: tuple[EventId, ...]
    consumer_trace_ids: tuple[TraceId, ...]


class IslandCause(enum.StrEnum):
    """Why a trace is an island, and whether it could be stitched back."""

    STITCHED = "stitched"  # its event's producer is in another trace: joined by event ID
    NO_PRODUCER = "no_producer"  # its event's producer is not among the spans
    NO_EVENT_ID = "no_event_id"  # the root consumer carries no event ID: cannot be joined


@dataclass(frozen=True, slots=True)
class Island:
    """A trace cut off from its cause; ``producer`` is where it was stitched to, if anywhere."""

    trace_id: TraceId
    root: SpanRef
    event_id: EventId | None
    cause: IslandCause
    producer: SpanRef | None
    span_count: int


def find_breaks(graph: CausalGraph) -> tuple[PropagationBreak, ...]:
    """Every stitched delivery edge, grouped by where it happened, most frequent first."""
    groups: dict[tuple[str, str, str, str, str | None], list[tuple[EventId, TraceId]]] = {}
    views, spans = graph.views, graph.spans
    for edge in graph.edges:
        if edge.kind is not EdgeKind.DELIVERY or not edge.stitched:
            continue
        producer, consumer = spans[edge.source], spans[edge.target]
        key = (
            producer.service,
            views[edge.source].step,
            consumer.service,
            views[edge.target].step,
            views[edge.source].destination or views[edge.target].destination,
        )
        assert edge.event_id is not None  # a delivery edge always names its event
        groups.setdefault(key, []).append((edge.event_id, consumer.trace_id))
    breaks = [
        PropagationBreak(
            *key,
            count=len(hits),
            event_ids=tuple(dict.fromkeys(e for e, _ in hits))[:EXAMPLES_PER_BREAK],
            consumer_trace_ids=tuple(dict.fromkeys(t for _, t in hits))[:EXAMPLES_PER_BREAK],
        )
        for key, hits in groups.items()
    ]
    breaks.sort(key=lambda b: (-b.count, b.producer_service, b.producer_step, b.consumer_step))
    return tuple(breaks)


def _is_genuine_root(graph: CausalGraph, node: int) -> bool:
    span = graph.spans[node]
    if span.parent_span_id is not None:
        return False  # its parent exists somewhere else: the trace is cut
    if graph.views[node].role is not Role.CONSUMER:
        return True
    return any(graph.edges[e].kind is EdgeKind.LINK for e in graph.incoming[node])


def genuine_roots(graph: CausalGraph) -> tuple[int, ...]:
    """Nodes where causality starts legitimately: user actions, scheduled jobs, and
    consumers that a link ties to their cause."""
    return tuple(
        node
        for node in range(len(graph.spans))
        if graph.parent[node] == NO_NODE and _is_genuine_root(graph, node)
    )


def _island_cause(graph: CausalGraph, node: int) -> tuple[IslandCause, int] | None:
    """Why the root ``node`` is cut off from its cause (and the producer it was stitched
    to, or ``NO_NODE``); ``None`` when it is not: a link ties it, or its context arrived."""
    if graph.views[node].role is not Role.CONSUMER:
        return None
    producer, stitched = NO_NODE, False
    for number in graph.incoming[node]:
        edge = graph.edges[number]
        if edge.kind is EdgeKind.LINK:
            return None
        if edge.kind is EdgeKind.DELIVERY:
            producer, stitched = edge.source, edge.stitched
    if producer != NO_NODE:
        return (IslandCause.STITCHED, producer) if stitched else None
    if graph.spans[node].parent_span_id is not None:
        return None  # the context arrived: only its parent span is missing
    cause = IslandCause.NO_PRODUCER if graph.delivered[node] else IslandCause.NO_EVENT_ID
    return cause, NO_NODE


def find_islands(graph: CausalGraph) -> tuple[Island, ...]:
    """Traces without a genuine root, one ``Island`` per cut-off root, in start order."""
    roots: dict[TraceId, list[int]] = {}
    sizes: dict[TraceId, int] = {}
    for node, span in enumerate(graph.spans):
        sizes[span.trace_id] = sizes.get(span.trace_id, 0) + 1
        if graph.parent[node] == NO_NODE:
            roots.setdefault(span.trace_id, []).append(node)
    islands: list[Island] = []
    for trace_id, nodes in roots.items():
        if any(_is_genuine_root(graph, node) for node in nodes):
            continue
        for node in nodes:
            found = _island_cause(graph, node)
            if found is None:
                continue
            cause, producer = found
            events = graph.delivered[node]
            islands.append(
                Island(
                    trace_id=trace_id,
                    root=graph.ref(node),
                    event_id=events[0] if events else None,
                    cause=cause,
                    producer=graph.ref(producer) if producer != NO_NODE else None,
                    span_count=sizes[trace_id],
                )
            )
    return tuple(islands)
