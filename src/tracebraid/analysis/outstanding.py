"""Pending and lost branches: expected work that has not succeeded (yet).

For every event in the workflow, the expected consumers come from the topology
(declared, or learned from history: ``tracebraid.analysis.topology``); every consumer
that actually took the event is expected too ("observed"). An expected consumer is
settled once one of its attempts succeeded (or the event was dead-lettered for it:
that is reported as a dead letter, not as pending), or once its last attempt failed for
good (Celery's ``FAILURE``: no retry will come, so the branch is failed, done, not
waiting for a deadline). Otherwise its branch is:

- ``pending`` with reason ``not_started`` (no attempt and no start marker seen),
  ``in_flight`` (a start marker without a finished span) or ``failing`` (attempts
  so far all failed: a retry may still come);
- ``lost`` instead, once ``now_ns`` is past the publish time (the producer's end) plus
  the deadline: the topology's (the event's own, else its ``default_deadline``), else
  one learned from history, else ``DEFAULT_DEADLINE_NS`` (one hour). So nothing stays
  "in flight" for days; ``overdue_ns`` says how far past it is.

A branch whose attempts' outcome is unknown (receive-only spans) was delivered: it is
not pending, since nothing shows it failed. A message published with no consumer
seen, and no consumer expected for it by the topology or history, is reported apart
(``Unconsumed``: "published to audit, no consumer seen yet"), with the same deadline;
so is a republish to a destination none of the message's consumers read (a parking
queue, a dead-letter topic).

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

__all__ = [
    "DEFAULT_DEADLINE_NS",
    "PendingBranch",
    "PendingReason",
    "PendingState",
    "Unconsumed",
    "find_pending",
    "find_unconsumed",
]

DEFAULT_DEADLINE_NS = 3_600_000_000_000
"""How long expected work may stay unfinished when neither a topology nor history gives
a deadline (one hour): past it, a pending branch is lost."""


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


@dataclass(frozen=True, slots=True)
class Unconsumed:
    """A message published with no consumer seen, and none expected by topology or history.

    ``state`` is ``pending`` until the deadline (``DEFAULT_DEADLINE_NS`` unless the
    topology's ``default_deadline`` says otherwise) has passed, then ``lost``.
    """

    event_id: EventId
    event_name: str | None
    destination: str | None
    producer: SpanRef
    published_ns: int
    state: PendingState
    deadline_ns: int
    overdue_ns: int

    @property
    def summary(self) -> str:
        """``published to audit, no consumer seen yet``."""
        where = self.destination or self.event_name or self.event_id
        return f"published to {where}, no consumer seen yet"


def _matches(declared: str, branch: Branch) -> bool:
    return declared in (branch.consumer, branch.service, branch.step)


def _reason(branches: list[Branch]) -> PendingReason:
    if any(b.status is BranchStatus.IN_FLIGHT for b in branches):
        return PendingReason.IN_FLIGHT
    if any(b.attempts for b in branches):
        return PendingReason.FAILING
    return PendingReason.NOT_STARTED


_SETTLED = (BranchStatus.SUCCEEDED, BranchStatus.DEAD_LETTERED, BranchStatus.UNKNOWN)


def _settled(branches: list[Branch]) -> bool:
    return any(b.status in _SETTLED or (b.attempts and b.gave_up) for b in branches)


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
    allowed = _allowed(topology, expected)
    deadline = None if published is None else published + allowed
    producer = graph.ref(producers[0]) if producers else None
    return _Event(event_id, event_name, published, deadline, producer), expected


def _allowed(topology: Topology | None, expected: EventExpectation | None) -> int:
    """The time an event's consumers have: declared, else learned, else the default."""
    if expected is not None and expected.deadline_ns is not None:
        return expected.deadline_ns
    if topology is not None and topology.default_deadline_ns is not None:
        return topology.default_deadline_ns
    return DEFAULT_DEADLINE_NS


def _routes(graph: CausalGraph, event_id: EventId) -> dict[str | None, list[int]]:
    """The producer spans of a message by the destination they addressed."""
    routes: dict[str | None, list[int]] = {}
    for producer in graph.producers_of(event_id):
        routes.setdefault(graph.views[producer].destination, []).append(producer)
    return routes


def find_unconsumed(
    graph: CausalGraph, branches: Branches, topology: Topology | None, *, now_ns: int
) -> tuple[Unconsumed, ...]:
    """Messages, and routes of messages, published with no consumer seen and none
    expected, in publish order. A message nobody took is one; so is a republish of a
    message to a destination none of its consumers read (a parking queue, a dead-letter
    topic): it left the flow there."""
    taken = {b.event_id for b in branches.branches}
    found: list[Unconsumed] = []
    for event_id in dict.fromkeys([*graph.origin_producers, *graph.republishers]):
        readers = graph.consumers.get(event_id, ())
        read = {graph.views[c].destination for c in readers}
        consumed = bool(readers) or event_id in taken
        for destination, producers in _routes(graph, event_id).items():
            if consumed and (destination in read or destination is None):
                continue
            origin = any(p in graph.origin_producers.get(event_id, ()) for p in producers)
            if consumed and origin:
                continue  # its consumers read it under another name
            views = [graph.views[p] for p in producers]
            event_name = next((v.event_name for v in views if v.event_name), None)
            expected = topology.expectation(event_name or destination) if topology else None
            if expected is not None and expected.consumers:
                continue  # its expected consumers are pending branches of their own
            published = min(graph.spans[p].end_ns for p in producers)
            deadline = published + _allowed(topology, expected)
            overdue = max(0, now_ns - deadline)
            found.append(
                Unconsumed(
                    event_id=event_id,
                    event_name=event_name,
                    destination=destination,
                    producer=graph.ref(producers[0]),
                    published_ns=published,
                    state=PendingState.LOST if overdue > 0 else PendingState.PENDING,
                    deadline_ns=deadline,
                    overdue_ns=overdue,
                )
            )
    found.sort(key=lambda u: (u.published_ns, u.event_id))
    return tuple(found)


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
