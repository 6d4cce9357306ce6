"""The causal graph: spans as nodes, typed edges ``child``, ``link`` and ``delivery``.

- ``child``: parent span -> child span (same trace).
- ``link``: the linked span -> the span holding the link (fan-in, batch consumers).
- ``delivery``: producer span of message M -> each consumer span that processed M.
  Structure first: a consumer span whose parent is a producer span, or that links to
  exactly one, is a delivery of that producer's message whatever IDs either side
  carries (stock aiokafka's producers carry none). Identity joins the rest: the
  message's strong identities (``tracebraid.messaging.MessageIdentity``: message ID,
  Kafka topic/partition@offset, CloudEvents ID, Celery task ID) are merged across every
  span that shows them, so a redelivery, an island or a second consumer group finds
  its message. A delivery is ``stitched`` when it crosses traces and the consumer has
  neither a parent nor a link to the producer: propagation broke there. Weak
  identities (a Kafka key) never join.
- poll and batch spans (``container``): a consumer span whose children or link targets
  are per-record consumer spans (aiokafka ``getmany``, confluent-kafka ``recv``,
  kafkajs ``eachBatch``) is not itself a delivery; its record spans are.

Receive-only instrumentation ends its consumer span before the handler runs and leaves
the producer's context current: the handler's spans are children of the producer's
span. Such a span, in a service that took the message before it started, is owned by
that delivery (the latest one), and the delivery's outcome is unknown unless it says.

A message is named by its earliest producer's ID, else by the first ID any of its
spans carries, else (a producer that carries none, and no consumer that does) by the
producer's ``trace_id:span_id``.

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

import dataclasses
import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter

from tracebraid.analysis.records import SpanRef
from tracebraid.messaging import (
    AttemptOutcome,
    MessagingView,
    Role,
    is_retry_route,
    is_start_marker,
    link_message_id,
    marker_target,
    normalize,
)
from tracebraid.model import EventId, Span, SpanId, StatusCode, TraceId

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
    (edge indices). ``message`` is the message a producer or delivery span is about
    (``None`` for other spans and batch consumers); ``container`` marks poll and batch
    spans, whose record spans are the deliveries. ``open_markers`` are the start markers
    whose span has not arrived, ``marker_count`` how many markers there were in all.
    ``copies`` and ``rerouted`` are the producer spans whose message was inferred from
    structure, not read: sibling publishes taken for copies of an earlier one, and
    republishes to a retry or dead-letter route taken for the message being handled.
    """

    spans: tuple[Span, ...]
    views: tuple[MessagingView, ...]
    edges: tuple[Edge, ...]
    parent: tuple[int, ...]
    owner: tuple[int, ...]
    delivered: tuple[tuple[EventId, ...], ...]
    message: tuple[EventId | None, ...]
    container: tuple[bool, ...]
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
    copies: tuple[int, ...]
    rerouted: tuple[int, ...]
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
    origins: tuple[int, ...],
    republished: tuple[int, ...],
    owner: list[int],
    from_dead_letter: bool,
) -> int:
    """The producer an identity-matched consumer most likely took its message from."""
    candidates = [p for p in origins + republished if owner[p] != consumer]
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
    ordered: list[Span], index: Mapping[tuple[TraceId, SpanId], int], edges: list[Edge]
) -> tuple[dict[int, list[int]], dict[int, list[str]], list[MissingLink]]:
    """Linked nodes per holder (in link order); the message IDs links to absent spans
    carry (a batch consumer's records whose producers are elsewhere)."""
    linked: dict[int, list[int]] = {}
    absent_ids: dict[int, list[str]] = {}
    missing: list[MissingLink] = []
    for i, span in enumerate(ordered):
        if not span.links:
            continue
        targets = linked.setdefault(i, [])
        for link in span.links:
            found = index.get((link.trace_id, link.span_id))
            if found is None:
                missing.append(MissingLink(SpanRef.of(span), link.trace_id, link.span_id))
                said = link_message_id(link)
                if said is not None:
                    absent_ids.setdefault(i, []).append(said)
            elif found not in targets:
                targets.append(found)
                edges.append(Edge(EdgeKind.LINK, found, i))
    return linked, absent_ids, missing


def _handling_parents(
    ordered: list[Span],
    views: list[MessagingView],
    parent: list[int],
    message: list[EventId | None],
    container: list[bool],
) -> list[int]:
    """Parents for ownership. Receive-only instrumentation (aiokafka, kafka-python) ends
    its consumer span before the handler runs and leaves the context it extracted from
    the message's headers current: the handler's spans are children of the *producer's*
    span. A span whose parent is a producer span of message M, in a service that took
    M before it started, is work of that delivery (the latest one)."""
    taken: dict[tuple[EventId, str], list[int]] = {}
    for node, view in enumerate(views):
        took = message[node]
        if view.role is Role.CONSUMER and not container[node] and took is not None:
            taken.setdefault((took, ordered[node].service), []).append(node)
    adopted = list(parent)
    for node, above in enumerate(parent):
        if above == NO_NODE or views[above].role is not Role.PRODUCER:
            continue
        sent = message[above]
        if views[node].role is Role.CONSUMER or sent is None:
            continue
        deliveries = taken.get((sent, ordered[node].service), ())
        start = ordered[node].start_ns
        before = [d for d in deliveries if ordered[d].start_ns <= start]
        if before:
            adopted[node] = before[-1]  # nodes are in start order: the latest delivery
    return adopted


def _unknown_when_handled_outside(
    ordered: list[Span], views: list[MessagingView], parent: list[int], adopted: list[int]
) -> None:
    """A delivery whose handler's spans lie outside it (adopted from the producer's
    context) ended before handling: unless it says otherwise, its outcome is unknown.
    This catches receive-only instrumentation ``RECEIVE_ONLY_SCOPES`` does not list."""
    for node, boss in enumerate(adopted):
        if boss == parent[node] or boss == NO_NODE:
            continue
        view = views[boss]
        if view.outcome is AttemptOutcome.OK and ordered[boss].status is StatusCode.UNSET:
            views[boss] = dataclasses.replace(view, outcome=AttemptOutcome.UNKNOWN)


def _retries_requested(
    views: list[MessagingView],
    owner: list[int],
    delivered: list[tuple[EventId, ...]],
    republishers: Mapping[EventId, list[int]],
) -> None:
    """An attempt that re-sent the message it was handling to a retry or dead-letter
    route asked for another attempt (or gave up): it did not succeed, even when its span
    ended OK (a kafkajs handler that catches its failure and forwards the record to a
    retry topic). Its outcome becomes ``retry`` (``dead_letter`` for a dead-letter route)."""
    for event_id, producers in republishers.items():
        for producer in producers:
            boss, sent = owner[producer], views[producer]
            if boss == NO_NODE or event_id not in delivered[boss]:
                continue
            if views[boss].outcome is not AttemptOutcome.OK or not is_retry_route(sent.destination):
                continue
            outcome = AttemptOutcome.DEAD_LETTER if sent.dead_letter else AttemptOutcome.RETRY
            views[boss] = dataclasses.replace(
                views[boss], outcome=outcome, error=f"re-sent to {sent.destination}"
            )


def _route_joins(
    views: list[MessagingView], owner: list[int], message: list[EventId | None]
) -> dict[int, int]:
    """Producer spans that re-send the message their owner is handling to a retry or
    dead-letter route (``orders.payment.retry``, ``orders.dlt``) without an identity of
    their own: the same message on another route (a retry topic), not a new one. A key
    both sides carry must agree."""
    joined: dict[int, int] = {}
    for node, view in enumerate(views):
        boss = owner[node]
        if view.role is not Role.PRODUCER or boss == NO_NODE or view.strong_identities:
            continue
        if message[boss] is None or not is_retry_route(view.destination):
            continue
        mine, theirs = _weak_key(view), _weak_key(views[boss])
        if mine is None or theirs is None or mine == theirs:
            joined[node] = boss
    return joined


def _containers(
    views: list[MessagingView], parent: list[int], linked: Mapping[int, list[int]]
) -> list[bool]:
    """Poll and batch spans: consumer spans whose children (or link targets) are the
    per-record consumer spans. They carry no message of their own (or the same message
    as the record span under them), so they are neither deliveries nor attempts."""
    holds: dict[int, list[int]] = {}
    for node, view in enumerate(views):
        if view.role is not Role.CONSUMER:
            continue
        above = parent[node]
        if above != NO_NODE and views[above].role is Role.CONSUMER:
            holds.setdefault(above, []).append(node)
    for node, targets in linked.items():
        # A span linking its records (aiokafka's getmany) and no producer: a batch
        # consumer that links producers is a delivery of each of their messages.
        if views[node].role is Role.CONSUMER:
            records = [t for t in targets if views[t].role is Role.CONSUMER]
            if records and not any(views[t].role is Role.PRODUCER for t in targets):
                holds.setdefault(node, []).extend(records)
    container = [False] * len(views)
    for node, records in holds.items():
        view = views[node]
        above = parent[node]
        if view.event_id is None:
            # A poll span has no message; a consumer under its producer has one.
            container[node] = above == NO_NODE or views[above].role is not Role.PRODUCER
        elif view.operation == "receive":
            container[node] = any(
                views[r].event_id == view.event_id and views[r].operation != "receive"
                for r in records
            )
    return container


class _Messages:
    """Which message every producer and delivery span is about: a union-find over
    producer spans (their node numbers) and strong identities (strings). A consumer
    joins its structural producer's message (whatever IDs either carries); identities
    join the rest."""

    def __init__(self) -> None:
        self.up: dict[object, object] = {}

    def find(self, key: object) -> object:
        up = self.up
        root = key
        while (above := up.get(root, root)) != root:
            root = above
        while key != root:  # path compression keeps later finds flat
            key, up[key] = up.get(key, key), root
        return root

    def union(self, a: object, b: object) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.up[rb] = ra


def _weak_key(view: MessagingView) -> str | None:
    return next((i.value for i in view.identities if not i.strong), None)


def _copies(ordered: list[Span], views: list[MessagingView], parent: list[int]) -> list[int]:
    """Producer spans that are copies of one message, each joined to the first: sibling
    publishes (one parent, one service, one destination, one key or none) that carry no
    identity of their own. Nothing in their spans tells them apart, so they are taken
    for one message published more than once: a duplicate publish, said to be inferred
    (``CausalGraph.weak``)."""
    first: dict[tuple[int, str, str | None, str | None], int] = {}
    copy_of = [NO_NODE] * len(views)
    for node, view in enumerate(views):
        above = parent[node]
        if view.role is not Role.PRODUCER or above == NO_NODE or view.strong_identities:
            continue
        key = (above, ordered[node].service, view.destination, _weak_key(view))
        earlier = first.setdefault(key, node)
        if earlier != node:
            copy_of[node] = earlier
    return copy_of


def _resolve_messages(
    ordered: list[Span],
    views: list[MessagingView],
    parent: list[int],
    linked: Mapping[int, list[int]],
    container: list[bool],
    copy_of: list[int],
    joined: Mapping[int, int],
) -> tuple[list[EventId | None], list[int], Callable[[str], EventId]]:
    """The message of every producer and delivery span (``None``: none known), the
    structural producer of every delivery span (``NO_NODE``: none), and the message of
    a bare identity. ``joined`` maps a producer span to a delivery span whose message it
    re-sends (a retry or dead-letter route taken while handling it)."""
    count = len(ordered)
    messages = _Messages()
    source = [NO_NODE] * count
    for node, copy in enumerate(copy_of):
        if copy != NO_NODE:
            messages.union(copy, node)
    for node, view in enumerate(views):
        if view.role is Role.PRODUCER:
            for identity in view.strong_identities:
                messages.union(node, identity)
        elif view.role is Role.CONSUMER and not container[node]:
            above = parent[node]
            if above != NO_NODE and views[above].role is Role.PRODUCER:
                source[node] = above
            else:
                producers = [t for t in linked.get(node, ()) if views[t].role is Role.PRODUCER]
                if len(producers) == 1:
                    source[node] = producers[0]
            own = view.strong_identities
            anchor: object = source[node] if source[node] != NO_NODE else None
            for identity in own:
                if anchor is None:
                    anchor = identity
                else:
                    messages.union(anchor, identity)
    for producer, delivery in joined.items():
        anchor = source[delivery] if source[delivery] != NO_NODE else None
        said = views[delivery].event_id
        if anchor is not None or said is not None:
            messages.union(anchor if anchor is not None else said, producer)
    # Name each message: the earliest producer's own ID, else the earliest ID anyone
    # carries, else (a producer without one) its trace and span ID.
    names: dict[object, EventId] = {}
    for node, view in enumerate(views):
        if view.role is Role.PRODUCER and view.event_id is not None:
            names.setdefault(messages.find(node), view.event_id)
    for view in views:
        if view.event_id is not None and view.role is Role.CONSUMER:
            names.setdefault(messages.find(view.event_id), view.event_id)
    result: list[EventId | None] = [None] * count
    for node, view in enumerate(views):
        if view.role is Role.PRODUCER:
            root = messages.find(node)
        elif view.role is Role.CONSUMER and not container[node]:
            if source[node] != NO_NODE:
                root = messages.find(source[node])
            elif view.event_id is not None:
                root = messages.find(view.event_id)
            else:
                continue
        else:
            continue
        name = names.get(root)
        if name is None:
            span = ordered[source[node] if view.role is Role.CONSUMER else node]
            name = names[root] = EventId(f"{span.trace_id}:{span.span_id}")
        result[node] = name

    def named(said: str) -> EventId:
        """The message a bare identity (a link's message ID) belongs to."""
        return names.get(messages.find(said), EventId(said))

    return result, source, named


def _consumers(
    views: list[MessagingView],
    message: list[EventId | None],
    container: list[bool],
    linked: Mapping[int, list[int]],
    absent_ids: Mapping[int, list[str]],
    named: Callable[[str], EventId],
) -> tuple[list[tuple[EventId, ...]], dict[EventId, list[int]]]:
    """The messages each consumer span processed (its own, or for a batch consumer those
    of the producers it links to), and the consumer spans of each message."""
    delivered: list[tuple[EventId, ...]] = [()] * len(views)
    consumers: dict[EventId, list[int]] = {}
    for i, view in enumerate(views):
        if view.role is not Role.CONSUMER or container[i]:
            continue
        own = message[i]
        if own is not None:
            events: tuple[EventId, ...] = (own,)
        else:
            batch = [message[t] for t in linked.get(i, ()) if views[t].role is Role.PRODUCER]
            batch += [named(said) for said in absent_ids.get(i, ())]
            events = tuple(dict.fromkeys(e for e in batch if e is not None))
        delivered[i] = events
        for event_id in events:
            consumers.setdefault(event_id, []).append(i)
    return delivered, consumers


def _producers(
    views: list[MessagingView],
    message: list[EventId | None],
    parent: list[int],
    owner: list[int],
    delivered: list[tuple[EventId, ...]],
) -> tuple[dict[EventId, list[int]], dict[EventId, list[int]]]:
    """Producer spans per message: origins, and republishers (a dead-letter destination,
    a re-send from inside the message's own consumer, or a producer span nested in one
    of the same message: pika traces one publish twice)."""
    origins: dict[EventId, list[int]] = {}
    republishers: dict[EventId, list[int]] = {}
    for i, view in enumerate(views):
        event_id = message[i]
        if view.role is not Role.PRODUCER or event_id is None:
            continue
        boss, above = owner[i], parent[i]
        nested = (
            above != NO_NODE and views[above].role is Role.PRODUCER and message[above] == event_id
        )
        resend = nested or view.dead_letter or (boss != NO_NODE and event_id in delivered[boss])
        (republishers if resend else origins).setdefault(event_id, []).append(i)
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
    linked, absent_ids, missing_links = _link_edges(ordered, index, edges)
    container = _containers(views, parent, linked)
    roles = [Role.OTHER if container[n] else view.role for n, view in enumerate(views)]
    copy_of = _copies(ordered, views, parent)
    resolved = _resolve_messages(ordered, views, parent, linked, container, copy_of, {})
    adopted = _handling_parents(ordered, views, parent, resolved[0], container)
    owner = _owners(adopted, roles)
    joined = _route_joins(views, owner, resolved[0])
    if joined:  # a second pass, with the re-sent routes joined to their messages
        resolved = _resolve_messages(ordered, views, parent, linked, container, copy_of, joined)
        adopted = _handling_parents(ordered, views, parent, resolved[0], container)
        owner = _owners(adopted, roles)
    message, source, named = resolved
    _unknown_when_handled_outside(ordered, views, parent, adopted)
    delivered, consumers = _consumers(views, message, container, linked, absent_ids, named)
    origins, republishers = _producers(views, message, parent, owner, delivered)
    _retries_requested(views, owner, delivered, republishers)

    for event_id, readers in consumers.items():
        own_origins = tuple(origins.get(event_id, ()))
        own_republished = tuple(republishers.get(event_id, ()))
        for consumer in readers:
            if message[consumer] != event_id:
                continue  # a batch consumer is joined by its links, not by a delivery
            producer = source[consumer]
            if producer == NO_NODE:
                if not own_origins and not own_republished:
                    continue
                producer = _choose_producer(
                    consumer, ordered, own_origins, own_republished, owner,
                    views[consumer].dead_letter,
                )  # fmt: skip
                if producer == NO_NODE:
                    continue
            stitched = (
                ordered[producer].trace_id != ordered[consumer].trace_id
                and producer != source[consumer]
                and producer not in linked.get(consumer, ())
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
        message=tuple(message),
        container=tuple(container),
        origin_producers={k: tuple(v) for k, v in origins.items()},
        republishers={k: tuple(v) for k, v in republishers.items()},
        consumers={k: tuple(v) for k, v in consumers.items()},
        open_markers=tuple(unfinished),
        open_marker_views=tuple(normalize(marker) for marker in unfinished),
        marker_count=len(markers),
        missing_parents=tuple(missing_parents),
        missing_links=tuple(missing_links),
        replayed=replayed + replayed_markers,
        copies=tuple(n for n, copy in enumerate(copy_of) if copy != NO_NODE),
        rerouted=tuple(joined),
        refs=[None] * count,
    )
