"""The causal graph: spans as nodes, typed edges ``child``, ``link`` and ``delivery``.

- ``child``: parent span -> child span (same trace).
- ``link``: the linked span -> the span holding the link (fan-in, batch consumers).
- ``delivery``: producer span of event E -> each consumer span that processed E,
  found by event ID across traces. It is ``stitched`` when it crosses traces and the
  consumer has neither a parent nor a link to the producer: propagation broke there.

Nodes are numbered by start order (ties broken by trace and span ID), so the graph
is the same whatever order the spans arrived in. Replayed spans (same trace and span
ID) count once. Start markers are not nodes; those whose span has not arrived are kept
aside (``open_markers``): that work is in flight, or stuck.
Parents and link targets that are not among the spans are tolerated and listed.

A producer that re-sends an event from inside that event's own consumer (a retry
queue, a dead-letter queue) is a *republisher*, not a second origin: only origins
count towards duplicate publishes.

Example::

    >>> from tracebraid.testing.workflows import order_flow
    >>> graph = build_graph(order_flow().spans)
    >>> sorted({edge.kind.value for edge in graph.edges})
    ['child', 'delivery', 'link']
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter

from tracebraid import semconv
from tracebraid.analysis.records import SpanRef
from tracebraid.messaging import (
    MessagingView,
    Role,
    is_start_marker,
    marker_target,
    normalize,
)
from tracebraid.model import EventId, Span, SpanId, TraceId

__all__ = ["CausalGraph", "Edge", "EdgeKind", "MissingLink", "build_graph"]

NO_NODE = -1
_VISITING = -2
_UNRESOLVED = -3


class EdgeKind(enum.StrEnum):
    """The three kinds of causal edge."""

    CHILD = "child"
    LINK = "link"
    DELIVERY = "delivery"


@dataclass(frozen=True, slots=True)
class Edge:
    """One typed edge between two nodes (indices into ``CausalGraph.spans``)."""

    kind: EdgeKind
    source: int
    target: int
    event_id: EventId | None = None
    stitched: bool = False


@dataclass(frozen=True, slots=True)
class MissingLink:
    """A span links to a span that is not among the input (another trace to fetch)."""

    span: SpanRef
    trace_id: TraceId
    span_id: SpanId


@dataclass(frozen=True, slots=True)
class CausalGraph:
    """The graph of one trace or one workflow; every later pass reads it, none rebuilds it.

    Per-node tuples are indexed like ``spans``: ``views`` (the normalised messaging
    view), ``parent`` (parent node or ``-1``), ``owner`` (the nearest consumer span at or
    above the node, ``-1`` when the work belongs to no consumer: the user action),
    ``delivered`` (the events a consumer span processed: its own event ID, or for a
    batch consumer those of the producers it links to), ``incoming``/``outgoing``
    (edge indices). ``open_markers`` are the start markers whose span has not arrived,
    ``marker_count`` how many markers there were in all.
    """

    spans: tuple[Span, ...]
    views: tuple[MessagingView, ...]
    edges: tuple[Edge, ...]
    parent: tuple[int, ...]
    owner: tuple[int, ...]
    delivered: tuple[tuple[EventId, ...], ...]
    incoming: tuple[tuple[int, ...], ...]
    outgoing: tuple[tuple[int, ...], ...]
    index: Mapping[tuple[TraceId, SpanId], int]
    origin_producers: Mapping[EventId, tuple[int, ...]]
    republishers: Mapping[EventId, tuple[int, ...]]
    consumers: Mapping[EventId, tuple[int, ...]]
    open_markers: tuple[Span, ...]
    open_marker_views: tuple[MessagingView, ...]
    marker_count: int
    missing_parents: tuple[int, ...]
    missing_links: tuple[MissingLink, ...]
    replayed: int
    refs: list[SpanRef | None] = field(repr=False, compare=False)

    def ref(self, node: int) -> SpanRef:
        """The ``SpanRef`` of a node (made once, shared by every result naming it)."""
        found = self.refs[node]
        if found is None:
            found = self.refs[node] = SpanRef.of(self.spans[node])
        return found

    def node(self, trace_id: TraceId, span_id: SpanId) -> int | None:
        """The node of (trace ID, span ID), or ``None`` when that span is not here."""
        return self.index.get((trace_id, span_id))

    def producers_of(self, event_id: EventId) -> tuple[int, ...]:
        """Every producer span of an event: origins first, then republishers."""
        return self.origin_producers.get(event_id, ()) + self.republishers.get(event_id, ())


_ORDER = attrgetter("start_ns", "trace_id", "span_id")


def _unique_in_start_order(spans: Iterable[Span]) -> tuple[list[Span], int]:
    unique: dict[tuple[TraceId, SpanId], Span] = {}
    seen = 0
    for span in spans:
        seen += 1
        key = (span.trace_id, span.span_id)
        kept = unique.setdefault(key, span)
        # Keep the longest copy, whichever arrived first, so input order never matters.
        if kept is not span and (span.end_ns, repr(span)) > (kept.end_ns, repr(kept)):
            unique[key] = span
    return sorted(unique.values(), key=_ORDER), seen - len(unique)


def _owners(parent: list[int], roles: list[Role]) -> list[int]:
    owner = [_UNRESOLVED] * len(parent)
    for start in range(len(parent)):
        if owner[start] != _UNRESOLVED:
            continue
        path: list[int] = []
        node = start
        result = NO_NODE
        while node != NO_NODE:
            known = owner[node]
            if known != _UNRESOLVED:
                # _VISITING means the parent chain loops back on itself: no owner.
                result = NO_NODE if known == _VISITING else known
                break
            if roles[node] is Role.CONSUMER:
                owner[node] = result = node
                break
            owner[node] = _VISITING
            path.append(node)
            node = parent[node]
        for visited in path:
            owner[visited] = result
    return owner


def _choose_producer(
    consumer: int,
    spans: list[Span],
    parent: list[int],
    linked: set[int],
    origins: tuple[int, ...],
    republished: tuple[int, ...],
    owner: list[int],
    from_dead_letter: bool,
) -> int:
    candidates = [p for p in origins + republished if owner[p] != consumer]
    for producer in candidates:
        if producer == parent[consumer] or producer in linked:
            return producer
    if from_dead_letter:
        for producer in republished:
            if owner[producer] != consumer:
                return producer
    pool = [p for p in origins if owner[p] != consumer] or candidates
    if not pool:
        return NO_NODE
    start = spans[consumer].start_ns
    before = [p for p in pool if spans[p].end_ns <= start]
    if before:
        return max(before, key=lambda p: (spans[p].end_ns, p))
    return pool[0]


def _child_edges(
    ordered: list[Span], index: Mapping[tuple[TraceId, SpanId], int], edges: list[Edge]
) -> tuple[list[int], list[int]]:
    """Parent of every node (or ``NO_NODE``), and the nodes whose parent is absent."""
    parent = [NO_NODE] * len(ordered)
    missing: list[int] = []
    for i, span in enumerate(ordered):
        if span.parent_span_id is not None:
            found = index.get((span.trace_id, span.parent_span_id))
            if found is None:
                missing.append(i)
            else:
                parent[i] = found
                edges.append(Edge(EdgeKind.CHILD, found, i))
    return parent, missing


def _link_edges(
    ordered: list[Span],
    views: list[MessagingView],
    index: Mapping[tuple[TraceId, SpanId], int],
    edges: list[Edge],
) -> tuple[dict[int, set[int]], dict[int, list[EventId]], list[MissingLink]]:
    """Linked nodes per holder; the events a batch consumer took through its links
    (the linked producer's event ID, or the link's own ``messaging.message.id``)."""
    linked: dict[int, set[int]] = {}
    batch_events: dict[int, list[EventId]] = {}
    missing: list[MissingLink] = []
    for i, span in enumerate(ordered):
        if not span.links:
            continue
        targets = linked.setdefault(i, set())
        takes_batch = views[i].role is Role.CONSUMER and views[i].event_id is None
        for link in span.links:
            found = index.get((link.trace_id, link.span_id))
            event: object = None
            if found is None:
                missing.append(MissingLink(SpanRef.of(span), link.trace_id, link.span_id))
                event = semconv.first_of(link.attributes, semconv.MESSAGE_ID)
            else:
                targets.add(found)
                edges.append(Edge(EdgeKind.LINK, found, i))
                if views[found].role is Role.PRODUCER:
                    event = views[found].event_id
            if event is not None and takes_batch:
                batch_events.setdefault(i, []).append(EventId(str(event)))
    return linked, batch_events, missing


def _consumers(
    views: list[MessagingView], batch_events: dict[int, list[EventId]]
) -> tuple[list[tuple[EventId, ...]], dict[EventId, list[int]]]:
    """The events each consumer span processed, and the consumer spans of each event."""
    delivered: list[tuple[EventId, ...]] = [()] * len(views)
    consumers: dict[EventId, list[int]] = {}
    for i, view in enumerate(views):
        if view.role is not Role.CONSUMER:
            continue
        if view.event_id is not None:
            events: tuple[EventId, ...] = (view.event_id,)
        else:
            events = tuple(dict.fromkeys(batch_events.get(i, ())))
        delivered[i] = events
        for event_id in events:
            consumers.setdefault(event_id, []).append(i)
    return delivered, consumers


def _producers(
    views: list[MessagingView], owner: list[int], delivered: list[tuple[EventId, ...]]
) -> tuple[dict[EventId, list[int]], dict[EventId, list[int]]]:
    """Producer spans per event: origins, and republishers (a dead-letter destination,
    or a re-send from inside the event's own consumer)."""
    origins: dict[EventId, list[int]] = {}
    republishers: dict[EventId, list[int]] = {}
    for i, view in enumerate(views):
        if view.role is not Role.PRODUCER or view.event_id is None:
            continue
        boss = owner[i]
        resend = view.dead_letter or (boss != NO_NODE and view.event_id in delivered[boss])
        (republishers if resend else origins).setdefault(view.event_id, []).append(i)
    return origins, republishers


def build_graph(spans: Iterable[Span]) -> CausalGraph:
    """Build the causal graph of ``spans`` (any order, any number of traces)."""
    nodes: list[Span] = []
    markers: list[Span] = []
    for span in spans:
        (markers if is_start_marker(span) else nodes).append(span)
    ordered, replayed = _unique_in_start_order(nodes)
    markers, replayed_markers = _unique_in_start_order(markers)
    views = [normalize(span) for span in ordered]
    index = {(span.trace_id, span.span_id): i for i, span in enumerate(ordered)}
    count = len(ordered)

    edges: list[Edge] = []
    parent, missing_parents = _child_edges(ordered, index, edges)
    linked, batch_events, missing_links = _link_edges(ordered, views, index, edges)
    owner = _owners(parent, [view.role for view in views])
    delivered, consumers = _consumers(views, batch_events)
    origins, republishers = _producers(views, owner, delivered)

    for event_id, readers in consumers.items():
        own_origins = tuple(origins.get(event_id, ()))
        own_republished = tuple(republishers.get(event_id, ()))
        if not own_origins and not own_republished:
            continue
        for consumer in readers:
            if views[consumer].event_id != event_id:
                continue  # a batch consumer is joined by its links, not by a delivery
            links = linked.get(consumer, set())
            producer = _choose_producer(
                consumer, ordered, parent, links, own_origins, own_republished, owner,
                views[consumer].dead_letter,
            )  # fmt: skip
            if producer == NO_NODE:
                continue
            stitched = (
                ordered[producer].trace_id != ordered[consumer].trace_id
                and parent[consumer] != producer
                and producer not in links
            )
            edges.append(Edge(EdgeKind.DELIVERY, producer, consumer, event_id, stitched))

    # Only a marker whose span has not arrived says anything (work in flight, or stuck).
    unfinished = [m for m in markers if (m.trace_id, marker_target(m)) not in index]
    incoming: list[list[int]] = [[] for _ in range(count)]
    outgoing: list[list[int]] = [[] for _ in range(count)]
    for number, edge in enumerate(edges):
        outgoing[edge.source].append(number)
        incoming[edge.target].append(number)

    return CausalGraph(
        spans=tuple(ordered),
        views=tuple(views),
        edges=tuple(edges),
        parent=tuple(parent),
        owner=tuple(owner),
        delivered=tuple(delivered),
        incoming=tuple(map(tuple, incoming)),
        outgoing=tuple(map(tuple, outgoing)),
        index=index,
        origin_producers={k: tuple(v) for k, v in origins.items()},
        republishers={k: tuple(v) for k, v in republishers.items()},
        consumers={k: tuple(v) for k, v in consumers.items()},
        open_markers=tuple(unfinished),
        open_marker_views=tuple(normalize(marker) for marker in unfinished),
        marker_count=len(markers),
        missing_parents=tuple(missing_parents),
        missing_links=tuple(missing_links),
        replayed=replayed + replayed_markers,
        refs=[None] * count,
    )
