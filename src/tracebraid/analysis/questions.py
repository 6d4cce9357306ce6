"""The four operator questions, answered from one ``WorkflowAnalysis``.

1. ``why(analysis, target)``: what caused this branch? The causal chain from the
   user action to an event or span, across stitched traces.
2. ``pending(analysis)``: which branches are still pending (or lost)?
3. ``retries(analysis)``: which step retried, how often, and why?
4. ``latency(analysis)``: where did latency accumulate? The critical path with its
   segments ranked, per-delivery timings and lagging consumers.

The same functions serve the CLI, the web UI and users' own code.

Example::

    >>> from tracebraid.analysis.workflow import analyze
    >>> from tracebraid.testing.workflows import order_flow
    >>> flow = order_flow()
    >>> analysis = analyze(flow.spans)
    >>> chain = why(analysis, flow.events["inventory.reserved"])
    >>> " -> ".join(step.step for step in chain.steps)
    'POST /orders -> order.placed publish -> reserve-inventory -> inventory.reserved publish'
    >>> [(r.step, r.retries) for r in retries(analysis).branches]
    [('send-warehouse-webhook', 2)]
"""

from __future__ import annotations

from dataclasses import dataclass

from tracebraid.analysis.attempts import Branch, BranchStatus
from tracebraid.analysis.critical_path import CriticalPath
from tracebraid.analysis.graph import NO_NODE, CausalGraph, EdgeKind
from tracebraid.analysis.hazards import DeadLetter, DuplicatePublish
from tracebraid.analysis.outstanding import PendingBranch, PendingState
from tracebraid.analysis.records import SpanRef
from tracebraid.analysis.timing import (
    BranchLatency,
    ClockSkew,
    DeliveryLatency,
    LaggingConsumer,
)
from tracebraid.analysis.workflow import WorkflowAnalysis
from tracebraid.errors import InputError
from tracebraid.messaging import Role
from tracebraid.model import EventId, SpanId, TraceId

__all__ = [
    "CausalChain",
    "ChainStep",
    "LatencyReport",
    "RetryReport",
    "latency",
    "pending",
    "retries",
    "why",
]


@dataclass(frozen=True, slots=True)
class ChainStep:
    """One span on a causal chain; ``via`` is the edge from the previous step."""

    span: SpanRef
    role: Role
    step: str
    event_id: EventId | None
    event_name: str | None
    consumer: str | None
    via: EdgeKind | None
    stitched: bool


@dataclass(frozen=True, slots=True)
class CausalChain:
    """The causes of ``target``, from the earliest known (the user action) to it.

    ``complete`` is true when the chain reaches a span that nothing caused (a user
    action or a scheduled job); otherwise ``gap`` says where and why it stops.
    ``also_caused_by`` lists further causes at fan-in points (a batch's other links).
    """

    target: str
    steps: tuple[ChainStep, ...]
    complete: bool
    gap: str | None
    stitched_hops: int
    also_caused_by: tuple[SpanRef, ...]


@dataclass(frozen=True, slots=True)
class RetryReport:
    """Branches that retried, processed an event twice, were dead-lettered or still
    fail; plus duplicate publishes and dead letters."""

    branches: tuple[Branch, ...]
    total_retries: int
    duplicate_publishes: tuple[DuplicatePublish, ...]
    dead_letters: tuple[DeadLetter, ...]


@dataclass(frozen=True, slots=True)
class LatencyReport:
    """Where the time went: the critical path first, then every hand-off."""

    critical_path: CriticalPath
    lagging: tuple[LaggingConsumer, ...]
    branches: tuple[BranchLatency, ...]
    deliveries: tuple[DeliveryLatency, ...]
    clock_skews: tuple[ClockSkew, ...]


def _resolve(graph: CausalGraph, target: str) -> int:
    event = EventId(target)
    producers = graph.origin_producers.get(event) or graph.republishers.get(event)
    if producers:
        return producers[0]
    if event in graph.consumers:
        return graph.consumers[event][0]
    trace_id, _, span_id = target.rpartition(":")
    if trace_id:
        node = graph.node(TraceId(trace_id), SpanId(span_id))
        if node is not None:
            return node
    matches = [n for n, span in enumerate(graph.spans) if span.span_id == target]
    if len(matches) == 1:
        return matches[0]
    if matches:
        traces = ", ".join(graph.spans[n].trace_id for n in matches)
        raise InputError(
            f"span ID {target!r} occurs in several traces ({traces}); give it as TRACE_ID:SPAN_ID"
        )
    raise InputError(
        f"no event or span with ID {target!r} among the {len(graph.spans)} spans analysed; "
        "give an event ID (messaging.message.id), a span ID or TRACE_ID:SPAN_ID of this workflow"
    )


def _cause(graph: CausalGraph, node: int, visited: set[int]) -> tuple[int, EdgeKind | None, bool]:
    delivery = link = NO_NODE
    stitched = False
    for number in graph.incoming[node]:
        edge = graph.edges[number]
        if edge.source in visited:
            continue
        if edge.kind is EdgeKind.DELIVERY and delivery == NO_NODE:
            delivery, stitched = edge.source, edge.stitched
        elif edge.kind is EdgeKind.LINK and (
            link == NO_NODE or graph.spans[edge.source].end_ns > graph.spans[link].end_ns
        ):
            link = edge.source
    if delivery != NO_NODE:
        return delivery, EdgeKind.DELIVERY, stitched
    parent = graph.parent[node]
    if parent != NO_NODE and parent not in visited:
        return parent, EdgeKind.CHILD, False
    if link != NO_NODE:
        return link, EdgeKind.LINK, False
    return NO_NODE, None, False


def _gap(graph: CausalGraph, node: int, visited: set[int]) -> str | None:
    span, view = graph.spans[node], graph.views[node]
    if any(graph.edges[e].source in visited for e in graph.incoming[node]):
        return f"the chain loops back at {span.name!r} (a cycle in the causal graph)"
    missing_parent = span.parent_span_id is not None and graph.parent[node] == NO_NODE
    linked = any(graph.edges[e].kind is EdgeKind.LINK for e in graph.incoming[node])
    if view.role is Role.CONSUMER and not linked:
        events = graph.delivered[node]
        if events:
            return (
                f"event {events[0]} was consumed by {span.name!r} but its producer is not "
                "among the spans (fetch the producing trace, or fix its propagation)"
            )
        if not missing_parent:
            return f"consumer {span.name!r} carries no event ID and no link: its cause is unknown"
    if missing_parent:
        return (
            f"parent span {span.parent_span_id} of {span.name!r} (trace {span.trace_id}) "
            "is not among the spans"
        )
    return None


def why(analysis: WorkflowAnalysis, target: str) -> CausalChain:
    """The causal chain back to the user action from an event ID, span ID or TRACE:SPAN.

    For an event, the chain ends at the span that published it. Raises ``InputError``
    when nothing in the analysis has that ID.
    """
    graph = analysis.graph
    node = _resolve(graph, target)
    visited: set[int] = set()
    reversed_steps: list[ChainStep] = []
    others: list[SpanRef] = []
    while True:
        visited.add(node)
        cause, via, stitched = _cause(graph, node, visited)
        view = graph.views[node]
        reversed_steps.append(
            ChainStep(graph.ref(node), view.role, view.step, view.event_id, view.event_name,
                      view.consumer, via, stitched)
        )  # fmt: skip
        others.extend(
            graph.ref(graph.edges[e].source)
            for e in graph.incoming[node]
            if graph.edges[e].kind is EdgeKind.LINK and graph.edges[e].source != cause
        )
        if cause == NO_NODE:
            break
        node = cause
    steps = tuple(reversed(reversed_steps))
    gap = _gap(graph, node, visited - {node})
    return CausalChain(
        target=target,
        steps=steps,
        complete=gap is None,
        gap=gap,
        stitched_hops=sum(1 for step in steps if step.stitched),
        also_caused_by=tuple(others),
    )


def pending(analysis: WorkflowAnalysis, *, include_lost: bool = True) -> tuple[PendingBranch, ...]:
    """Branches expected but not (yet) successful; lost ones too unless ``include_lost=False``."""
    return tuple(p for p in analysis.pending if include_lost or p.state is PendingState.PENDING)


def retries(analysis: WorkflowAnalysis) -> RetryReport:
    """Every branch with a retry or more than one attempt, a dead letter, or a last
    attempt that failed or is still running."""
    troubled = tuple(
        b
        for b in analysis.branches
        if len(b.attempts) > 1
        or b.retries
        or b.dead_lettered
        or b.status in (BranchStatus.FAILED, BranchStatus.IN_FLIGHT)
    )  # an unknown outcome is no trouble by itself: its spans just cannot tell
    return RetryReport(
        branches=troubled,
        total_retries=sum(b.retries for b in analysis.branches),
        duplicate_publishes=analysis.duplicate_publishes,
        dead_letters=analysis.dead_letters,
    )


def latency(analysis: WorkflowAnalysis) -> LatencyReport:
    """The critical path (segments ranked), lagging consumers and every hand-off's timing."""
    return LatencyReport(
        critical_path=analysis.critical_path,
        lagging=analysis.lagging,
        branches=analysis.branch_latencies,
        deliveries=analysis.deliveries,
        clock_skews=analysis.clock_skews,
    )
