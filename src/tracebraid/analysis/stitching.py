"""Broken causality: islands, and the propagation breaks that stitching repaired.

An **island** is a trace whose root is a consumer span that neither a parent nor a
link ties to the event it processed, although that event was produced elsewhere
(a poll or batch root, ``CausalGraph.container``, is judged by its record spans: it
is no island when one of them is tied to its cause):
broken causality, the seed's design-review case (a producer that did not carry the
trace context forward, so its consumer started a new trace). A span whose parent is
merely absent from the input is not an island: its context arrived, only the parent
span was not exported or not fetched (``CausalGraph.missing_parents`` says so).

A trace whose root is a publish, in a service that had taken a message before it
started, is an island too (``context_dropped``): a publish from a consumer's work that
dropped its context (nothing in the spans joins it to the delivery it came from).

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
    # A publish that starts a trace of its own in a service that had taken a message
    # before it: the context of the work that caused it was dropped (nothing joins it).
    CONTEXT_DROPPED = "context_dropped"


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


def _below(graph: CausalGraph, node: int) -> list[int]:
    """The spans under ``node`` (its children, their children...), ``node`` excluded."""
    found: list[int] = []
    seen = {node}
    stack = [node]
    while stack:
        for number in graph.outgoing[stack.pop()]:
            edge = graph.edges[number]
            if edge.kind is EdgeKind.CHILD and edge.target not in seen:
                seen.add(edge.target)
                found.append(edge.target)
                stack.append(edge.target)
    return found


def _tied(graph: CausalGraph, node: int) -> bool:
    """True when a link, or a delivery its context carried, ties ``node`` to its cause."""
    for number in graph.incoming[node]:
        edge = graph.edges[number]
        if edge.kind is EdgeKind.LINK or (edge.kind is EdgeKind.DELIVERY and not edge.stitched):
            return True
    return False


def _records(graph: CausalGraph, poll: int) -> list[int]:
    """The per-record consumer spans under a poll or batch span (through nested ones)."""
    return [
        n
        for n in _below(graph, poll)
        if graph.views[n].role is Role.CONSUMER and not graph.container[n]
    ]


def _root_publishes(graph: CausalGraph) -> bool:
    """True when some trace starts with a publish (only those can have dropped context)."""
    return any(
        graph.views[n].role is Role.PRODUCER and graph.spans[n].parent_span_id is None
        for n, above in enumerate(graph.parent)
        if above == NO_NODE
    )


def _taken_by(graph: CausalGraph) -> dict[str, int]:
    """Per service, when the first delivery to it ended."""
    first: dict[str, int] = {}
    for node, events in enumerate(graph.delivered):
        if events and not graph.container[node]:
            service = graph.spans[node].service
            first[service] = min(first.get(service, graph.spans[node].end_ns),
                                 graph.spans[node].end_ns)  # fmt: skip
    return first


def _dropped_context(graph: CausalGraph, node: int, taken: dict[str, int]) -> bool:
    """A publish that is its trace's very root, in a service that had finished taking a
    message before it started: it lost the context of the work that caused it."""
    span = graph.spans[node]
    if graph.views[node].role is not Role.PRODUCER or span.parent_span_id is not None:
        return False
    ended = taken.get(span.service)
    return ended is not None and ended <= span.start_ns


def _is_genuine_root(graph: CausalGraph, node: int, taken: dict[str, int]) -> bool:
    span = graph.spans[node]
    if span.parent_span_id is not None:
        return False  # its parent exists somewhere else: the trace is cut
    if graph.views[node].role is not Role.CONSUMER:
        return not _dropped_context(graph, node, taken)
    if graph.container[node]:
        # A poll (getmany, recv, eachBatch) is part of the workflow its records link into.
        return _tied(graph, node) or any(_tied(graph, n) for n in _below(graph, node))
    return any(graph.edges[e].kind is EdgeKind.LINK for e in graph.incoming[node])


def genuine_roots(graph: CausalGraph) -> tuple[int, ...]:
    """Nodes where causality starts legitimately: user actions, scheduled jobs, and
    consumers that a link ties to their cause. A poll span is no cause: it is left out,
    although the trace it roots is no island when its records tie it in."""
    taken = _taken_by(graph) if _root_publishes(graph) else {}
    return tuple(
        node
        for node in range(len(graph.spans))
        if graph.parent[node] == NO_NODE
        and not graph.container[node]
        and _is_genuine_root(graph, node, taken)
    )


def _island_cause(
    graph: CausalGraph, node: int, *, under_poll: bool = False
) -> tuple[IslandCause, int] | None:
    """Why the root ``node`` (or a record span under a poll root) is cut off from its
    cause, and the producer it was stitched to (or ``NO_NODE``); ``None`` when it is
    not: a link ties it, or its context arrived."""
    if graph.views[node].role is Role.PRODUCER and not under_poll:
        return (IslandCause.CONTEXT_DROPPED, NO_NODE)  # only dropped roots are asked
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
    if graph.spans[node].parent_span_id is not None and not under_poll:
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
    taken = _taken_by(graph) if _root_publishes(graph) else {}
    for trace_id, nodes in roots.items():
        if any(_is_genuine_root(graph, node, taken) for node in nodes):
            continue
        for root in nodes:
            # A poll root is cut off through its records: judge each of them.
            judged = _records(graph, root) if graph.container[root] else [root]
            for node in judged:
                found = _island_cause(graph, node, under_poll=node != root)
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
