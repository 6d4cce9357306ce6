"""The critical path: the chain of edges that decided when the workflow finished.

Walk back from the business work that ended last (never a poll or batch span, whose
end says when the poll returned, not when work finished). At each span, the
predecessor is:

1. the previous attempt of the same message, when the span is a retry or redelivery
   (it waited for that attempt, joined by message identity even when no span edge
   joins them; a duplicate publish's message did not);
2. else the ``delivery`` or ``link`` source that ended last before the span
   started (the message it waited for; the latest one if skew puts all after);
3. else its parent (``child`` edge).

Each span is visited once, so a cycle cannot trap the walk. The path, read from its
start, is cut into segments that partition the time from its first start to its last
end: ``processing`` (a span's own time until it handed off), ``queue_wait`` (producer
end -> consumer start), ``failed_attempt`` and ``backoff`` (failed attempt end -> next
attempt start). Nothing is counted twice: a span that started before its predecessor
ended (clock skew, or work running alongside it) counts only from where the previous
segment ended, and the negative gap is recorded as the gap segment's
``clock_skew_ns``. A span that ends before it starts lasts 0.

Example::

    >>> from tracebraid.analysis.attempts import find_branches
    >>> from tracebraid.analysis.graph import build_graph
    >>> from tracebraid.testing.workflows import order_flow
    >>> graph = build_graph(order_flow().spans)
    >>> path = find_critical_path(graph, find_branches(graph))
    >>> [step.span.name for step in path.steps if step.role.value == "consumer"]
    ['reserve-inventory', 'send-warehouse-webhook', 'send-warehouse-webhook', \
'send-warehouse-webhook']
    >>> [(t.kind.value, t.duration_ns // 1_000_000) for t in path.totals][:2]
    [('failed_attempt', 1000), ('backoff', 600)]
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from tracebraid.analysis.attempts import Branches
from tracebraid.analysis.graph import NO_NODE, CausalGraph, EdgeKind
from tracebraid.analysis.records import SpanRef
from tracebraid.messaging import Role

__all__ = [
    "CriticalPath",
    "Hop",
    "PathStep",
    "Segment",
    "SegmentKind",
    "SegmentTotal",
    "find_critical_path",
]


class Hop(enum.StrEnum):
    """How the path got from one span to the next."""

    CHILD = "child"
    LINK = "link"
    DELIVERY = "delivery"
    RETRY = "retry"


class SegmentKind(enum.StrEnum):
    """What a stretch of the critical path was spent on."""

    PROCESSING = "processing"
    QUEUE_WAIT = "queue_wait"
    BACKOFF = "backoff"
    FAILED_ATTEMPT = "failed_attempt"


@dataclass(frozen=True, slots=True)
class PathStep:
    """One span on the path; ``via`` is how it was reached (``None`` for the first)."""

    span: SpanRef
    role: Role
    step: str
    via: Hop | None
    attempt: int | None


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of time on the path, charged to ``span`` (the waiting or working one).

    ``clock_skew_ns`` is how much earlier than its natural start the stretch would
    have ended (a consumer starting before its producer ended); that overlap is
    counted once, in the stretch before.
    """

    kind: SegmentKind
    span: SpanRef
    start_ns: int
    end_ns: int
    duration_ns: int
    attempt: int | None
    clock_skew_ns: int


@dataclass(frozen=True, slots=True)
class SegmentTotal:
    """Time on the path per segment kind."""

    kind: SegmentKind
    duration_ns: int
    count: int


@dataclass(frozen=True, slots=True)
class CriticalPath:
    """The path, its segments in time order, ranked longest first, and totals per kind.

    ``duration_ns`` is the path's length, ``end_ns - start_ns`` (the sum of its
    segments, which never overlap); ``workflow_duration_ns`` the whole workflow's (first
    start to last end), never less.
    """

    steps: tuple[PathStep, ...]
    segments: tuple[Segment, ...]
    ranked: tuple[Segment, ...]
    totals: tuple[SegmentTotal, ...]
    start_ns: int
    end_ns: int
    duration_ns: int
    workflow_duration_ns: int


EMPTY_PATH = CriticalPath((), (), (), (), 0, 0, 0, 0)


def _predecessor(
    graph: CausalGraph, node: int, previous: Mapping[int, int], visited: set[int]
) -> tuple[int, Hop | None]:
    before = previous.get(node)
    if before is not None and before not in visited:
        return before, Hop.RETRY
    spans = graph.spans
    start = spans[node].start_ns
    best, best_key, best_hop = NO_NODE, (False, 0, False, 0), Hop.DELIVERY
    parent = NO_NODE
    for number in graph.incoming[node]:
        edge = graph.edges[number]
        source = edge.source
        if source in visited:
            continue
        if edge.kind is EdgeKind.CHILD:
            parent = source
            continue
        end = spans[source].end_ns
        key = (end <= start, end, edge.kind is EdgeKind.DELIVERY, source)
        if best == NO_NODE or key > best_key:
            best, best_key = source, key
            best_hop = Hop.DELIVERY if edge.kind is EdgeKind.DELIVERY else Hop.LINK
    if best != NO_NODE:
        return best, best_hop
    if parent != NO_NODE:
        return parent, Hop.CHILD
    return NO_NODE, None


def _business(graph: CausalGraph, node: int) -> bool:
    """False for poll and batch spans: they wrap deliveries, they are not work.

    A receive-only delivery span stays: its handler's work follows it unrecorded, so
    the delivery is the latest evidence of that work."""
    return not graph.container[node]


class _Timeline:
    """Segments laid end to end from the path's start: each begins where the last ended."""

    def __init__(self, start_ns: int) -> None:
        self.segments: list[Segment] = []
        self.cursor = start_ns

    def add(
        self, kind: SegmentKind, ref: SpanRef, start: int, end: int, attempt: int | None
    ) -> None:
        begin = max(start, self.cursor)
        finish = max(begin, end)
        self.segments.append(
            Segment(kind, ref, begin, finish, finish - begin, attempt, max(0, start - end))
        )
        self.cursor = finish


def find_critical_path(graph: CausalGraph, branches: Branches) -> CriticalPath:
    """The critical path of the workflow in ``graph`` (empty for no spans)."""
    spans = graph.spans
    if not spans:
        return EMPTY_PATH
    ends = [max(span.start_ns, span.end_ns) for span in spans]
    # The path ends at the last business work: never a poll span, whose end is when the
    # poll returned (after the records it wraps were handed over), not when work finished.
    work = [n for n in range(len(spans)) if _business(graph, n)] or range(len(spans))
    last = max(work, key=lambda n: (ends[n], n))
    chain: list[tuple[int, Hop | None]] = []
    visited: set[int] = set()
    node = last
    while node != NO_NODE:
        visited.add(node)
        previous, hop = _predecessor(graph, node, branches.previous_attempt, visited)
        chain.append((node, hop))  # hop: how ``previous`` led to ``node``
        node = previous
    chain.reverse()
    nodes = [n for n, _ in chain]
    hops = [h for _, h in chain]
    numbers = branches.attempt_number
    steps = tuple(
        PathStep(graph.ref(n), graph.views[n].role, graph.views[n].step, h, numbers.get(n))
        for n, h in zip(nodes, hops, strict=True)
    )
    path_start = spans[nodes[0]].start_ns
    timeline = _Timeline(path_start)
    for position, current in enumerate(nodes):
        span, ref, number = spans[current], steps[position].span, numbers.get(current)
        if position == len(nodes) - 1:
            timeline.add(SegmentKind.PROCESSING, ref, span.start_ns, ends[current], number)
            break
        following = spans[nodes[position + 1]]
        via = hops[position + 1]
        if via is Hop.CHILD:
            timeline.add(SegmentKind.PROCESSING, ref, span.start_ns, following.start_ns, number)
            continue
        if via is Hop.RETRY:
            failed = graph.views[current].outcome.failed
            kind = SegmentKind.FAILED_ATTEMPT if failed else SegmentKind.PROCESSING
            gap = SegmentKind.BACKOFF
        else:
            kind, gap = SegmentKind.PROCESSING, SegmentKind.QUEUE_WAIT
        timeline.add(kind, ref, span.start_ns, ends[current], number)
        waiter, waiter_number = steps[position + 1].span, numbers.get(nodes[position + 1])
        timeline.add(gap, waiter, ends[current], following.start_ns, waiter_number)
    segments = timeline.segments
    totals: dict[SegmentKind, list[int]] = {}
    for segment in segments:
        total = totals.setdefault(segment.kind, [0, 0])
        total[0] += segment.duration_ns
        total[1] += 1
    first_start = min(span.start_ns for span in spans)
    return CriticalPath(
        steps=steps,
        segments=tuple(segments),
        ranked=tuple(sorted(segments, key=lambda s: -s.duration_ns)),
        totals=tuple(
            SegmentTotal(kind, duration, count)
            for kind, (duration, count) in sorted(totals.items(), key=lambda kv: -kv[1][0])
        ),
        start_ns=path_start,
        end_ns=timeline.cursor,
        duration_ns=timeline.cursor - path_start,
        workflow_duration_ns=max(ends) - first_start,
    )
