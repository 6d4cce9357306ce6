"""The causal tree an operator reads: user actions, the events they published, each branch.

``build_tree`` arranges one ``WorkflowAnalysis`` the way DESIGN.md's sketch reads:
a root action (``POST /orders``), the events it published, under each event one node
per consumer (a ``Branch``, or an expected branch that has not started), and under a
branch the events its work published. Pending, in-flight and lost branches are nodes
like any other; the critical path and stitched (propagation-break) deliveries are
flags on the nodes. The terminal tree, the Mermaid export and the JSON ``tree`` all
draw this one structure, so they never disagree.

Pure: no I/O, nothing but the analysis read.

Example::

    >>> from tracebraid.analysis import analyze
    >>> from tracebraid.testing.workflows import order_flow
    >>> tree = build_tree(analyze(order_flow().spans))
    >>> [e.event_name for e in tree.roots[0].events]
    ['order.placed']
    >>> [b.step for b in tree.roots[0].events[0].branches]
    ['reserve-inventory', 'authorize-payment']
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from tracebraid.analysis import (
    Branch,
    BranchLatency,
    BranchStatus,
    CriticalPath,
    Hop,
    LaggingConsumer,
    PendingBranch,
    PendingState,
    Role,
    SpanRef,
    WorkflowAnalysis,
)
from tracebraid.model import EventId, SpanId, TraceId

__all__ = [
    "ActionNode",
    "BranchNode",
    "EventNode",
    "NodeState",
    "PathStop",
    "WorkflowTree",
    "build_tree",
    "path_stops",
    "walk_branches",
]

_NO_NODE = -1


class NodeState(enum.StrEnum):
    """Where a branch of the tree stands (``lost``: not successful by its deadline)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEAD_LETTERED = "dead_lettered"
    IN_FLIGHT = "in_flight"
    PENDING = "pending"
    LOST = "lost"
    UNKNOWN = "unknown"  # delivered, but its spans cannot show how handling went


@dataclass(frozen=True, slots=True)
class BranchNode:
    """One consumer's work on one event: a ``Branch``, or an expected one not started.

    ``branch`` is ``None`` for an expected branch with no attempt at all; ``pending``
    is set when the branch has not succeeded (yet). ``critical_attempts`` are the
    attempt numbers the critical path runs through.
    """

    event_id: EventId
    consumer: str
    step: str
    service: str | None
    state: NodeState
    branch: Branch | None
    pending: PendingBranch | None
    latency: BranchLatency | None
    lagging: LaggingConsumer | None
    stitched: bool
    on_critical_path: bool
    critical_attempts: tuple[int, ...]
    events: tuple[EventNode, ...]


@dataclass(frozen=True, slots=True)
class EventNode:
    """One published event and every branch it started (or should have started)."""

    event_id: EventId
    event_name: str | None
    destination: str | None
    producer: SpanRef | None
    causation_id: EventId | None
    published_ns: int | None
    on_critical_path: bool
    branches: tuple[BranchNode, ...]


@dataclass(frozen=True, slots=True)
class ActionNode:
    """A root of the workflow: the user action or scheduled job where causality starts."""

    span: SpanRef
    start_ns: int
    duration_ns: int
    on_critical_path: bool
    events: tuple[EventNode, ...]


@dataclass(frozen=True, slots=True)
class WorkflowTree:
    """The tree: ``roots`` with what they caused; ``orphans`` are events whose cause is
    not among the spans (a producer outside the query, a trace cut by a missing parent)."""

    roots: tuple[ActionNode, ...]
    orphans: tuple[EventNode, ...]


@dataclass(frozen=True, slots=True)
class PathStop:
    """One business stop of the critical path: a step name and how many attempts it took."""

    name: str
    service: str
    attempts: int


def path_stops(path: CriticalPath) -> tuple[PathStop, ...]:
    """The critical path in business terms: the root action, then each consumer step.

    Producer spans and internal steps are left out (they sit inside the stops), and
    consecutive attempts of one step become one stop with their count.
    """
    stops: list[PathStop] = []
    for position, step in enumerate(path.steps):
        if position == 0:
            stops.append(PathStop(step.span.name, step.span.service, 1))
            continue
        if step.role is not Role.CONSUMER:
            continue
        last = stops[-1] if stops else None
        if step.via is Hop.RETRY and last and last.name == step.step:
            stops[-1] = PathStop(last.name, last.service, last.attempts + 1)
        else:
            stops.append(PathStop(step.step, step.span.service, 1))
    return tuple(stops)


def _key(ref: SpanRef) -> tuple[TraceId, SpanId]:
    return (ref.trace_id, ref.span_id)


@dataclass(frozen=True, slots=True)
class _EventFacts:
    event_name: str | None
    destination: str | None
    producer: SpanRef | None
    causation_id: EventId | None
    published_ns: int | None
    producer_node: int


class _Builder:
    def __init__(self, analysis: WorkflowAnalysis) -> None:
        self.analysis = analysis
        self.graph = analysis.graph
        self.path = frozenset(_key(step.span) for step in analysis.critical_path.steps)
        self.by_event: dict[EventId, list[Branch]] = {}
        for branch in analysis.branches:
            self.by_event.setdefault(branch.event_id, []).append(branch)
        self.pending = {(p.event_id, p.consumer): p for p in analysis.pending}
        self.waiting: dict[EventId, list[PendingBranch]] = {}
        for waiting in analysis.pending:
            self.waiting.setdefault(waiting.event_id, []).append(waiting)
        self._facts: dict[EventId, _EventFacts] = {}
        self.latency = {(b.event_id, b.consumer): b for b in analysis.branch_latencies}
        self.lagging = {(lag.event_id, lag.consumer): lag for lag in analysis.lagging}
        self.parent_branch = {
            event: branch.id for branch in analysis.branches for event in branch.downstream_events
        }
        self.expanded: set[EventId] = set()

    def events(self) -> list[EventId]:
        ordered = dict.fromkeys(self.graph.origin_producers)
        ordered.update(dict.fromkeys(self.by_event))
        ordered.update(dict.fromkeys(self.waiting))
        return list(ordered)

    def facts(self, event_id: EventId) -> _EventFacts:
        """What is known of the event's publishing (worked out once per event)."""
        known = self._facts.get(event_id)
        if known is None:
            known = self._facts[event_id] = self._find_facts(event_id)
        return known

    def _find_facts(self, event_id: EventId) -> _EventFacts:
        graph = self.graph
        producers = graph.origin_producers.get(event_id, ()) or graph.producers_of(event_id)
        taken = self.by_event.get(event_id, [])
        if producers:
            first = producers[0]
            view = graph.views[first]
            name = view.event_name or next((b.event_name for b in taken if b.event_name), None)
            return _EventFacts(
                name,
                view.destination,
                graph.ref(first),
                view.causation_id,
                min(graph.spans[p].end_ns for p in producers),
                first,
            )
        waiting = self.waiting.get(event_id, [])
        return _EventFacts(
            next((b.event_name for b in taken if b.event_name), None)
            or next((p.event_name for p in waiting if p.event_name), None),
            next((b.destination for b in taken if b.destination), None),
            None,
            None,
            next((p.published_ns for p in waiting), None),
            _NO_NODE,
        )

    def root_of(self, node: int) -> int:
        seen: set[int] = set()
        while self.graph.parent[node] != _NO_NODE and node not in seen:
            seen.add(node)
            node = self.graph.parent[node]
        return node

    def event_node(self, event_id: EventId, facts: _EventFacts | None = None) -> EventNode:
        self.expanded.add(event_id)
        facts = facts or self.facts(event_id)
        branches = self.by_event.get(event_id, [])
        nodes = [self.branch_node(b) for b in branches]
        taken = {b.consumer for b in branches}
        nodes += [
            self.waiting_node(p) for p in self.waiting.get(event_id, []) if p.consumer not in taken
        ]
        producer = facts.producer
        return EventNode(
            event_id=event_id,
            event_name=facts.event_name,
            destination=facts.destination,
            producer=producer,
            causation_id=facts.causation_id,
            published_ns=facts.published_ns,
            on_critical_path=producer is not None and _key(producer) in self.path,
            branches=tuple(nodes),
        )

    def branch_node(self, branch: Branch) -> BranchNode:
        key = (branch.event_id, branch.consumer)
        waiting = self.pending.get(key)
        critical = tuple(a.number for a in branch.attempts if _key(a.span) in self.path)
        children = tuple(
            self.event_node(event)
            for event in sorted(branch.downstream_events, key=self._published)
            if event not in self.expanded
        )
        return BranchNode(
            event_id=branch.event_id,
            consumer=branch.consumer,
            step=branch.step,
            service=branch.service,
            state=_state(branch, waiting),
            branch=branch,
            pending=waiting,
            latency=self.latency.get(key),
            lagging=self.lagging.get(key),
            stitched=branch.stitched,
            on_critical_path=bool(critical),
            critical_attempts=critical,
            events=children,
        )

    def waiting_node(self, waiting: PendingBranch) -> BranchNode:
        lost = waiting.state is PendingState.LOST
        return BranchNode(
            event_id=waiting.event_id,
            consumer=waiting.consumer,
            step=waiting.consumer,
            service=None,
            state=NodeState.LOST if lost else NodeState.PENDING,
            branch=None,
            pending=waiting,
            latency=None,
            lagging=None,
            stitched=False,
            on_critical_path=False,
            critical_attempts=(),
            events=(),
        )

    def _published(self, event_id: EventId) -> tuple[int, str]:
        return (self.facts(event_id).published_ns or 0, event_id)

    def build(self) -> WorkflowTree:
        analysis = self.analysis
        attempt_spans = {_key(a.span) for b in analysis.branches for a in b.attempts}
        roots = [r for r in analysis.roots if _key(r) not in attempt_spans]
        root_nodes = {self.graph.node(r.trace_id, r.span_id): r for r in roots}
        top: dict[int, list[tuple[EventId, _EventFacts]]] = {}
        orphans: list[tuple[EventId, _EventFacts]] = []
        for event_id in self.events():
            if event_id in self.parent_branch:
                continue
            facts = self.facts(event_id)
            root = (
                _NO_NODE if facts.producer_node == _NO_NODE else self.root_of(facts.producer_node)
            )
            if root in root_nodes:
                top.setdefault(root, []).append((event_id, facts))
            else:
                orphans.append((event_id, facts))
        actions: list[ActionNode] = []
        for node, ref in root_nodes.items():
            assert node is not None  # analysis roots are nodes of its graph
            span = self.graph.spans[node]
            events = sorted(top.get(node, []), key=lambda item: item[1].published_ns or 0)
            actions.append(
                ActionNode(
                    span=ref,
                    start_ns=span.start_ns,
                    duration_ns=span.duration_ns,
                    on_critical_path=_key(ref) in self.path,
                    events=tuple(
                        self.event_node(e, f) for e, f in events if e not in self.expanded
                    ),
                )
            )
        orphans.sort(key=lambda item: (item[1].published_ns or 0, item[0]))
        lonely = tuple(self.event_node(e, f) for e, f in orphans if e not in self.expanded)
        return WorkflowTree(tuple(actions), lonely)


def _state(branch: Branch, waiting: PendingBranch | None) -> NodeState:
    if branch.status is BranchStatus.SUCCEEDED:
        return NodeState.SUCCEEDED
    if branch.status is BranchStatus.DEAD_LETTERED:
        return NodeState.DEAD_LETTERED
    if waiting is not None and waiting.state is PendingState.LOST:
        return NodeState.LOST
    if branch.status is BranchStatus.IN_FLIGHT:
        return NodeState.IN_FLIGHT
    if branch.status is BranchStatus.UNKNOWN:
        return NodeState.UNKNOWN
    return NodeState.FAILED


def build_tree(analysis: WorkflowAnalysis) -> WorkflowTree:
    """Arrange ``analysis`` as the causal tree (see the module docstring)."""
    return _Builder(analysis).build()


def walk_branches(tree: WorkflowTree) -> Iterable[BranchNode]:
    """Every branch node of ``tree``, depth first (for tests and summaries)."""
    stack: list[EventNode] = [e for root in tree.roots for e in root.events] + list(tree.orphans)
    stack.reverse()
    while stack:
        event = stack.pop()
        for node in event.branches:
            yield node
            stack.extend(reversed(node.events))
