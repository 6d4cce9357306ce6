"""Pending and lost branches: expected work that has not succeeded (yet).

For every event in the workflow, the expected consumers come from the topology
(declared, or learned from history: ``tracebraid.analysis.topology``); every consumer
that actually took the event is expected too ("observed"). An expected consumer is
settled once one of its attempts succeeded (or the event was dead-lettered for it:
that is reported as a dead letter, not as pending). Otherwise its branch is:

- ``pending`` with reason ``not_started`` (no attempt and no start marker seen),
  ``in_flight`` (a start marker without a finished span) or ``failing`` (attempts
  so far all failed: a retry may still come);
- ``lost`` instead, when a deadline applies and ``now_ns`` is past
  the publish time (the producer's end) plus the deadline.

Example::

    >>> from tracebraid.analysis.attempts import find_branches
    >>> from tracebraid.analysis.graph import build_graph
    >>> from tracebraid.analysis.topology import parse_topology
    >>> from tracebraid.testing.workflows import order_flow
    >>> flow = order_flow()
    >>> graph = build_graph(flow.spans)
    >>> topology = parse_topology("events: {order.placed: [payment, inventory, fraud-check]}")
    >>> [(p.consumer, p.state.value, p.reason.value)
    ...  for p in find_pending(graph, find_branches(graph), topology, now_ns=flow.end_ns)]
    [('fraud-check', 'pending', 'not_started')]
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from tracebraid.analysis.attempts import Branch, Branches, BranchStatus
from tracebraid.analysis.graph import CausalGraph
from tracebraid.analysis.records import SpanRef
from tracebraid.analysis.topology import EventExpectation, Topology
from tracebraid.messaging import AttemptOutcome
from tracebraid.model import EventId

__all__ = ["PendingBranch", "PendingReason", "PendingState", "find_pending"]


class PendingState(enum.StrEnum):
    """Still expected to finish, or past its deadline."""

    PENDING = "pending"
    LOST = "lost"


class PendingReason(enum.StrEnum):
    """What the unfinished branch is doing."""

    # No attempt and no marker seen. tracebraid's SDK marks work only once it has run
    # for 100 ms, so work that began less than that before "now" is counted here too.
    NOT_STARTED = "not_started"
    IN_FLIGHT = "in_flight"
    FAILING = "failing"


@dataclass(frozen=True, slots=True)
class PendingBranch:
    """An expected branch with no successful attempt.

    ``expected_by`` is ``topology``, ``history`` or ``observed`` (the consumer took the
    event, so it must finish it). ``published_ns`` is when the event was published
    (the producer's end; the first attempt's start when the producer is unknown).
    ``deadline_ns`` is the absolute time it had to succeed by (``None``: no deadline);
    ``overdue_ns`` how far ``now_ns`` is past it (0 while pending).
    """

    event_id: EventId
    event_name: str | None
    consumer: str
    state: PendingState
    reason: PendingReason
    expected_by: str
    published_ns: int | None
    deadline_ns: int | None
    overdue_ns: int
    attempts: int
    last_error: str | None
    producer: SpanRef | None


def _matches(declared: str, branch: Branch) -> bool:
    return declared in (branch.consumer, branch.service, branch.step)


def _reason(branches: list[Branch]) -> PendingReason:
    if any(b.status is BranchStatus.IN_FLIGHT for b in branches):
        return PendingReason.IN_FLIGHT
    if any(b.attempts for b in branches):
        return PendingReason.FAILING
    return PendingReason.NOT_STARTED


def _settled(branches: list[Branch]) -> bool:
    return any(b.status in (BranchStatus.SUCCEEDED, BranchStatus.DEAD_LETTERED) for b in branches)


@dataclass(frozen=True, slots=True)
class _Event:
    event_id: EventId
    event_name: str | None
    published_ns: int | None
    deadline_ns: int | None
    producer: SpanRef | None

    def pending(
        self, consumer: str, mine: list[Branch], expected_by: str, now_ns: int
    ) -> PendingBranch:
        overdue = 0 if self.deadline_ns is None else max(0, now_ns - self.deadline_ns)
        finished = [
            a for b in mine for a in b.attempts if a.outcome is not AttemptOutcome.IN_FLIGHT
        ]
        errors = [a.error for a in finished if a.outcome.failed and a.error]
        return PendingBranch(
            event_id=self.event_id,
            event_name=self.event_name,
            consumer=consumer,
            state=PendingState.LOST if overdue > 0 else PendingState.PENDING,
            reason=_reason(mine),
            expected_by=expected_by,
            published_ns=self.published_ns,
            deadline_ns=self.deadline_ns,
            overdue_ns=overdue,
            attempts=len(finished),
            last_error=errors[-1] if errors else None,
            producer=self.producer,
        )


def _event(
    graph: CausalGraph, event_id: EventId, taken: list[Branch], topology: Topology | None
) -> tuple[_Event, EventExpectation | None]:
    producers = graph.origin_producers.get(event_id, ()) or graph.producers_of(event_id)
    views = [graph.views[p] for p in producers]
    event_name = next((v.event_name for v in views if v.event_name), None) or next(
        (b.event_name for b in taken if b.event_name), None
    )
    key = event_name or next((v.destination for v in views if v.destination), None)
    if key is None and taken:
        key = taken[0].destination
    expected = topology.expectation(key) if topology is not None else None
    if producers:
        published: int | None = min(graph.spans[p].end_ns for p in producers)
    else:
        published = min((b.first_start_ns for b in taken), default=None)
    deadline = None
    if expected is not None and expected.deadline_ns is not None and published is not None:
        deadline = published + expected.deadline_ns
    producer = graph.ref(producers[0]) if producers else None
    return _Event(event_id, event_name, published, deadline, producer), expected


def find_pending(
    graph: CausalGraph,
    branches: Branches,
    topology: Topology | None,
    *,
    now_ns: int,
) -> tuple[PendingBranch, ...]:
    """Every expected branch of every event in ``graph`` that has not succeeded."""
    by_event: dict[EventId, list[Branch]] = {}
    for branch in branches.branches:
        by_event.setdefault(branch.event_id, []).append(branch)
    found: list[PendingBranch] = []
    for event_id in dict.fromkeys([*graph.origin_producers, *graph.consumers, *by_event]):
        taken = by_event.get(event_id, [])
        event, expected = _event(graph, event_id, taken, topology)
        claimed: set[str] = set()
        if expected is not None:
            for declared in expected.consumers:
                mine = [b for b in taken if _matches(declared, b)]
                claimed.update(b.consumer for b in mine)
                if not _settled(mine):
                    consumer = mine[0].consumer if mine else declared
                    found.append(event.pending(consumer, mine, expected.source, now_ns))
        for branch in taken:
            if branch.consumer not in claimed and not _settled([branch]):
                found.append(event.pending(branch.consumer, [branch], "observed", now_ns))
    return tuple(found)
