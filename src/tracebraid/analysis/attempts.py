"""Branches and their attempts: every processing of an event by a consumer, grouped, never merged.

A ``Branch`` is the work one consumer did for one delivered message: its attempts
(the delivery spans of the same message, ``CausalGraph.message``, by the same consumer
name, in start order) and the events published downstream of them. The consumer name
never includes the destination, so a redelivery that comes back through another
exchange (a dead-letter exchange with a TTL retry queue) stays in its branch. Each
attempt is classified:

- ``first``: the first attempt;
- ``retry``: an attempt after a failed one (or the first one seen, when it reports
  itself as attempt 2 or later: the attempts before it left no span);
- ``duplicate``: an attempt after a success of the same copy: the message was
  processed again, an idempotency hazard (whatever this attempt's own outcome). The
  copies of a duplicate publish are judged apart: each copy's first processing is a
  ``first`` attempt (the duplicate publish is its own finding);
- ``redelivery``: an attempt after one whose outcome is unknown (a receive-only span):
  the message came again, and the spans cannot tell whether it was a retry.

The branch's status is its *last* attempt's: a final failure is never "succeeded",
an unknown last outcome is ``unknown``.

A branch is dead-lettered when one of its attempts has outcome ``dead_letter`` or
republished the event to a dead-letter destination (``tracebraid.analysis.hazards``).
Work announced by a start marker but never finished is an ``in_flight`` attempt.

When a group holds both ``receive`` and ``process`` spans (stock instrumentation
that traces the poll and the handler), only the ``process`` spans are attempts.

Example::

    >>> from tracebraid.analysis.graph import build_graph
    >>> from tracebraid.testing.workflows import order_flow
    >>> found = find_branches(build_graph(order_flow().spans))
    >>> webhook = next(b for b in found.branches if b.step == "send-warehouse-webhook")
    >>> [(a.number, a.kind.value, a.outcome.value) for a in webhook.attempts]
    [(1, 'first', 'error'), (2, 'retry', 'error'), (3, 'retry', 'ok')]
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from tracebraid.analysis.graph import NO_NODE, CausalGraph, EdgeKind
from tracebraid.analysis.hazards import (
    DeadLetter,
    DuplicatePublish,
    InFlight,
    find_duplicate_publishes,
    find_in_flight,
    marker_ref,
    unattributed_dead_letters,
)
from tracebraid.analysis.records import SpanRef
from tracebraid.messaging import AttemptOutcome, ConsumerIdentity, MessagingView, Role
from tracebraid.model import EventId

__all__ = [
    "Attempt",
    "AttemptKind",
    "Branch",
    "BranchId",
    "BranchStatus",
    "Branches",
    "find_branches",
]


class AttemptKind(enum.StrEnum):
    """Why an attempt happened, judged from the attempts before it."""

    FIRST = "first"
    RETRY = "retry"
    DUPLICATE = "duplicate"
    REDELIVERY = "redelivery"


class BranchStatus(enum.StrEnum):
    """Where a branch stands, from its last attempt: ``failed`` means the last finished
    attempt failed (so far); ``unknown`` that its spans cannot show how it ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEAD_LETTERED = "dead_lettered"
    IN_FLIGHT = "in_flight"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, order=True)
class BranchId:
    """A branch's identity: (event ID, consumer name)."""

    event_id: EventId
    consumer: str


@dataclass(frozen=True, slots=True)
class Attempt:
    """One processing of an event by a consumer.

    ``number`` is the position in start order (1-based); ``reported_number`` what the
    span itself says (``tracebraid.attempt``, ``celery.retries + 1``), ``None`` when it
    does not. ``end_ns``/``duration_ns`` are ``None`` while in flight.
    ``backoff_before_ns`` is the gap since the previous attempt of the same message ended
    (never negative; ``None`` for a message delivered anew, e.g. by a duplicate publish).
    ``final`` is true for a failure after which no attempt will come (Celery's
    ``FAILURE``, a dead letter): the branch is failed for good, not waiting for a retry.
    """

    number: int
    reported_number: int | None
    kind: AttemptKind
    span: SpanRef
    start_ns: int
    end_ns: int | None
    duration_ns: int | None
    outcome: AttemptOutcome
    error: str | None
    backoff_before_ns: int | None
    final: bool = False


@dataclass(frozen=True, slots=True)
class Branch:
    """The work one consumer did for one delivered event, with every attempt.

    ``producer`` is the span that published the event (``None`` when it is not among
    the spans); ``caused_by`` the branch whose work published it (``None`` for the
    user action, or when unknown); ``downstream_events`` what this branch's attempts
    published. ``batch`` is true when the consumer took the event in a batch (found
    through its links); ``stitched`` when the delivery had to be found by event ID.
    ``retries``, ``duplicates`` and ``redeliveries`` count the attempts of each kind.
    """

    event_id: EventId
    event_name: str | None
    consumer: str
    consumer_identified_by: ConsumerIdentity
    service: str
    step: str
    destination: str | None
    producer: SpanRef | None
    attempts: tuple[Attempt, ...]
    status: BranchStatus
    retries: int
    duplicates: int
    dead_lettered: bool
    stitched: bool
    batch: bool
    caused_by: BranchId | None
    downstream_events: tuple[EventId, ...]
    redeliveries: int = 0

    @property
    def id(self) -> BranchId:
        """(event ID, consumer name)."""
        return BranchId(self.event_id, self.consumer)

    @property
    def succeeded(self) -> bool:
        """True when the last attempt finished successfully."""
        return self.status is BranchStatus.SUCCEEDED

    @property
    def gave_up(self) -> bool:
        """True when the last attempt failed for good: no retry will come."""
        last = self.attempts[-1]
        return last.final and last.outcome.failed

    @property
    def first_start_ns(self) -> int:
        """When the first attempt started."""
        return self.attempts[0].start_ns


@dataclass(frozen=True, slots=True)
class Branches:
    """The attempts pass's answer; ``nodes`` (graph nodes per branch) and
    ``previous_attempt`` (node -> the attempt node before it) serve the later passes."""

    branches: tuple[Branch, ...]
    duplicate_publishes: tuple[DuplicatePublish, ...]
    dead_letters: tuple[DeadLetter, ...]
    in_flight: tuple[InFlight, ...]
    nodes: tuple[tuple[int, ...], ...]
    previous_attempt: Mapping[int, int]
    attempt_number: Mapping[int, int]


@dataclass(slots=True)
class _Draft:
    """The spans (nodes, in start order) and open markers of one branch, being gathered."""

    nodes: list[int]
    markers: list[int]

    def first_start(self, graph: CausalGraph) -> int:
        starts = [graph.spans[n].start_ns for n in self.nodes[:1]]
        return min(starts + [graph.open_markers[m].start_ns for m in self.markers])


def _classify(
    outcomes: list[AttemptOutcome], reported: list[int | None], copies: list[int]
) -> list[AttemptKind]:
    """Each attempt's kind, judged within its copy of the message: the copies of a
    duplicate publish are delivered anew (the duplicate publish is reported as such),
    so a copy's first processing is a first attempt, not a duplicate delivery."""
    kinds: list[AttemptKind] = []
    succeeded: set[int] = set()
    previous: dict[int, AttemptOutcome] = {}
    for outcome, number, copy in zip(outcomes, reported, copies, strict=True):
        if copy not in previous:
            # An attempt that counts itself 2 or more is a retry even when the attempts
            # before it left no span (a process killed mid-processing exports none).
            retried = number is not None and number > 1
            kinds.append(AttemptKind.RETRY if retried else AttemptKind.FIRST)
        elif copy in succeeded:
            kinds.append(AttemptKind.DUPLICATE)
        elif previous[copy] is AttemptOutcome.UNKNOWN:
            kinds.append(AttemptKind.REDELIVERY)
        else:
            kinds.append(AttemptKind.RETRY)
        if outcome is AttemptOutcome.OK:
            succeeded.add(copy)
        previous[copy] = outcome
    return kinds


def _drafts(graph: CausalGraph) -> dict[BranchId, _Draft]:
    views = graph.views
    drafts: dict[BranchId, _Draft] = {}
    for event_id, readers in graph.consumers.items():
        for node in readers:
            consumer = views[node].consumer
            assert consumer is not None  # every consumer view has a name
            key = BranchId(event_id, consumer)
            drafts.setdefault(key, _Draft([], [])).nodes.append(node)
    for draft in drafts.values():
        operations = {views[n].operation for n in draft.nodes}
        if "receive" in operations and len(operations) > 1:
            draft.nodes = [n for n in draft.nodes if views[n].operation != "receive"]
    for position, view in enumerate(graph.open_marker_views):
        if view.role is Role.CONSUMER and view.event_id and view.consumer:
            key = BranchId(view.event_id, view.consumer)
            drafts.setdefault(key, _Draft([], [])).markers.append(position)
    return drafts


def _attempts(
    graph: CausalGraph,
    draft: _Draft,
    origins: frozenset[int],
    delivered_by: Mapping[int, tuple[int, bool]],
    previous: dict[int, int],
    numbers: dict[int, int],
) -> list[Attempt]:
    """The attempts of one branch in start order; records each node's predecessor: the
    attempt before it of the same message (same delivering producer, when known)."""
    spans, views = graph.spans, graph.views
    timeline = [(spans[n].start_ns, n, False) for n in draft.nodes]
    if draft.markers:
        timeline += [(graph.open_markers[m].start_ns, m, True) for m in draft.markers]
        timeline.sort()
    marker_views = graph.open_marker_views
    outcomes = [AttemptOutcome.IN_FLIGHT if open_ else views[i].outcome for _, i, open_ in timeline]
    said = [(marker_views if open_ else views)[i].attempt for _, i, open_ in timeline]
    copies: list[int] = []  # the origin producer that published the copy each attempt took
    for _, i, open_ in timeline:
        source = NO_NODE if open_ else delivered_by.get(i, (NO_NODE, False))[0]
        climbed: set[int] = set()  # parent IDs can form a cycle in malformed input
        while source != NO_NODE and source not in origins and source not in climbed:
            climbed.add(source)
            above = graph.parent[source]  # a producer span nested in its publish's own
            fits = above != NO_NODE and graph.message[above] == graph.message[source]
            source = above if fits and graph.views[above].role is Role.PRODUCER else NO_NODE
        if source in climbed and source not in origins:
            source = NO_NODE
        if source == NO_NODE:
            source = copies[-1] if copies else NO_NODE  # a retry re-sends the same copy
        copies.append(source)
    attempts: list[Attempt] = []
    previous_end: int | None = None
    previous_node = NO_NODE
    latest: dict[int, int] = {}  # delivering producer -> the latest attempt it delivered
    for number, ((start, i, open_), kind) in enumerate(
        zip(timeline, _classify(outcomes, said, copies), strict=True), 1
    ):
        final = False
        if open_:
            ref, end, duration = marker_ref(graph, i), None, None
            reported, error = graph.open_marker_views[i].attempt, None
            backoff = None if previous_end is None else max(0, start - previous_end)
        else:
            ref, end, duration = graph.ref(i), spans[i].end_ns, spans[i].duration_ns
            reported, error, final = views[i].attempt, views[i].error, views[i].final
            # A retry or redelivery processes the same message again, after its previous
            # attempt; a message from another producer (a duplicate publish) waited in
            # the queue for its own publish, not in back-off.
            source = delivered_by.get(i, (NO_NODE, False))[0]
            before = latest.get(source, NO_NODE) if source != NO_NODE else previous_node
            backoff = None
            if before != NO_NODE:
                previous[i] = before
                backoff = max(0, start - spans[before].end_ns)
            latest[source] = previous_node = i
            numbers[i] = number
        attempts.append(
            Attempt(number, reported, kind, ref, start, end, duration, outcomes[number - 1],
                    error, backoff, final)
        )  # fmt: skip
        if end is not None:
            previous_end = end
    return attempts


def _own_dead_letters(
    graph: CausalGraph, key: BranchId, first: MessagingView, draft: _Draft, attempts: list[Attempt]
) -> list[DeadLetter]:
    nodes = set(draft.nodes)
    found = [
        DeadLetter(key.event_id, first.event_name, key.consumer, graph.ref(producer),
                   graph.views[producer].destination)
        for producer in graph.republishers.get(key.event_id, ())
        if graph.views[producer].dead_letter and graph.owner[producer] in nodes
    ]  # fmt: skip
    found += [
        DeadLetter(key.event_id, first.event_name, key.consumer, a.span, first.destination)
        for a in attempts
        if a.outcome is AttemptOutcome.DEAD_LETTER
    ]
    return found


def _status(attempts: list[Attempt], dead_lettered: bool) -> BranchStatus:
    """The last attempt's standing: a final failure is never "succeeded"."""
    last = attempts[-1].outcome
    if last is AttemptOutcome.IN_FLIGHT:
        return BranchStatus.IN_FLIGHT
    if last is AttemptOutcome.OK:
        return BranchStatus.SUCCEEDED
    if dead_lettered:
        return BranchStatus.DEAD_LETTERED
    if last is AttemptOutcome.UNKNOWN:
        return BranchStatus.UNKNOWN
    return BranchStatus.FAILED


def _caused_by(graph: CausalGraph, producer: int) -> BranchId | None:
    """The branch whose work published from ``producer`` (``None``: the user action)."""
    if producer == NO_NODE or graph.owner[producer] == NO_NODE:
        return None
    boss = graph.owner[producer]
    events, consumer = graph.delivered[boss], graph.views[boss].consumer
    return BranchId(events[0], consumer) if events and consumer else None


def find_branches(graph: CausalGraph) -> Branches:
    """Group consumer spans into branches and classify every attempt."""
    views = graph.views
    owned_events: dict[int, list[EventId]] = {}
    for event_id, producers in graph.origin_producers.items():
        for producer in producers:
            if graph.owner[producer] != NO_NODE:
                owned_events.setdefault(graph.owner[producer], []).append(event_id)
    delivered_by: dict[int, tuple[int, bool]] = {
        e.target: (e.source, e.stitched) for e in graph.edges if e.kind is EdgeKind.DELIVERY
    }
    branches: list[Branch] = []
    branch_nodes: list[tuple[int, ...]] = []
    previous: dict[int, int] = {}
    numbers: dict[int, int] = {}
    dead_letters: list[DeadLetter] = []
    drafts = sorted(_drafts(graph).items(), key=lambda item: item[1].first_start(graph))
    for key, draft in drafts:
        first = views[draft.nodes[0]] if draft.nodes else graph.open_marker_views[draft.markers[0]]
        origins = frozenset(graph.origin_producers.get(key.event_id, ()))
        attempts = _attempts(graph, draft, origins, delivered_by, previous, numbers)
        own_dead = _own_dead_letters(graph, key, first, draft, attempts)
        dead_letters += own_dead
        sources = [delivered_by[n] for n in draft.nodes if n in delivered_by]
        source = sources[0][0] if sources else NO_NODE
        if source == NO_NODE:
            producers = graph.producers_of(key.event_id)
            source = producers[0] if producers else NO_NODE
        kinds = [a.kind for a in attempts]
        branches.append(
            Branch(
                event_id=key.event_id,
                event_name=first.event_name
                or (views[source].event_name if source != NO_NODE else None),
                consumer=key.consumer,
                consumer_identified_by=first.consumer_identified_by or ConsumerIdentity.SERVICE,
                service=attempts[0].span.service,
                step=first.step,
                destination=first.destination,
                producer=graph.ref(source) if source != NO_NODE else None,
                attempts=tuple(attempts),
                status=_status(attempts, bool(own_dead)),
                retries=kinds.count(AttemptKind.RETRY),
                duplicates=kinds.count(AttemptKind.DUPLICATE),
                dead_lettered=bool(own_dead),
                stitched=any(stitched for _, stitched in sources),
                batch=bool(draft.nodes) and graph.message[draft.nodes[0]] is None,
                caused_by=_caused_by(graph, source),
                downstream_events=tuple(
                    dict.fromkeys(e for n in draft.nodes for e in owned_events.get(n, ()))
                ),
                redeliveries=kinds.count(AttemptKind.REDELIVERY),
            )
        )
        branch_nodes.append(tuple(draft.nodes))
    return Branches(
        branches=tuple(branches),
        duplicate_publishes=find_duplicate_publishes(graph),
        dead_letters=tuple(dead_letters) + unattributed_dead_letters(graph, dead_letters),
        in_flight=find_in_flight(graph),
        nodes=tuple(branch_nodes),
        previous_attempt=previous,
        attempt_number=numbers,
    )
