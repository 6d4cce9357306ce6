"""Branches and their attempts: every processing of an event by a consumer, grouped, never merged.

A ``Branch`` is the work one consumer did for one delivered event: its attempts
(consumer spans with the same event ID and consumer name, in start order) and the
events published downstream of them. Each attempt is classified:

- ``first``: the first attempt;
- ``retry``: an attempt after failed ones;
- ``duplicate``: a second *successful* processing: an idempotency hazard;
- ``redelivery``: a further attempt after a success that did not succeed itself.

Alongside: ``DuplicatePublish`` (two producer spans that are origins of one event
ID) and ``DeadLetter`` (an attempt with outcome ``dead_letter`` or
``tracebraid.dead_letter``, a republish to a dead-letter destination such as
``orders.dlq``, or a consumer reading one). Work announced by a start marker but
never finished is an ``in_flight`` attempt.

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
from tracebraid.analysis.normalize import ConsumerIdentity, MessagingView, Outcome, Role
from tracebraid.analysis.records import SpanRef
from tracebraid.model import EventId, SpanId, TraceId

__all__ = [
    "Attempt",
    "AttemptKind",
    "Branch",
    "BranchId",
    "BranchStatus",
    "Branches",
    "DeadLetter",
    "DuplicatePublish",
    "InFlight",
    "find_branches",
]


class AttemptKind(enum.StrEnum):
    """Why an attempt happened, judged from the attempts before it."""

    FIRST = "first"
    RETRY = "retry"
    DUPLICATE = "duplicate"
    REDELIVERY = "redelivery"


class BranchStatus(enum.StrEnum):
    """Where a branch stands: ``failed`` means every finished attempt failed (so far)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEAD_LETTERED = "dead_lettered"
    IN_FLIGHT = "in_flight"


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
    ``backoff_before_ns`` is the gap since the previous attempt ended (never negative).
    """

    number: int
    reported_number: int | None
    kind: AttemptKind
    span: SpanRef
    start_ns: int
    end_ns: int | None
    duration_ns: int | None
    outcome: Outcome
    error: str | None
    backoff_before_ns: int | None


@dataclass(frozen=True, slots=True)
class Branch:
    """The work one consumer did for one delivered event, with every attempt.

    ``producer`` is the span that published the event (``None`` when it is not among
    the spans); ``caused_by`` the branch whose work published it (``None`` for the
    user action, or when unknown); ``downstream_events`` what this branch's attempts
    published. ``batch`` is true when the consumer took the event in a batch (found
    through its links); ``stitched`` when the delivery had to be found by event ID.
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

    @property
    def id(self) -> BranchId:
        """(event ID, consumer name)."""
        return BranchId(self.event_id, self.consumer)

    @property
    def succeeded(self) -> bool:
        """True when some attempt finished successfully."""
        return self.status is BranchStatus.SUCCEEDED

    @property
    def first_start_ns(self) -> int:
        """When the first attempt started."""
        return self.attempts[0].start_ns


@dataclass(frozen=True, slots=True)
class DuplicatePublish:
    """One event ID published by more than one producer span (not counting retries/DLQ)."""

    event_id: EventId
    event_name: str | None
    producers: tuple[SpanRef, ...]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Evidence that an event was dead-lettered; ``consumer`` is ``None`` when unknown."""

    event_id: EventId
    event_name: str | None
    consumer: str | None
    span: SpanRef
    destination: str | None


@dataclass(frozen=True, slots=True)
class InFlight:
    """Work a start marker announced that has no finished span: running, or stuck."""

    span: SpanRef
    started_ns: int
    event_id: EventId | None
    consumer: str | None


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
    nodes: list[int]
    markers: list[int]


def _classify(outcomes: list[Outcome]) -> list[AttemptKind]:
    kinds: list[AttemptKind] = []
    succeeded = False
    for outcome in outcomes:
        if not kinds:
            kinds.append(AttemptKind.FIRST)
        elif succeeded:
            kinds.append(AttemptKind.DUPLICATE if outcome is Outcome.OK else AttemptKind.REDELIVERY)
        else:
            kinds.append(AttemptKind.RETRY)
        succeeded = succeeded or outcome is Outcome.OK
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


def find_branches(graph: CausalGraph) -> Branches:
    """Group consumer spans into branches and classify every attempt."""
    spans, views = graph.spans, graph.views
    owned_events: dict[int, list[EventId]] = {}
    for event_id, producers in graph.origin_producers.items():
        for producer in producers:
            if graph.owner[producer] != NO_NODE:
                owned_events.setdefault(graph.owner[producer], []).append(event_id)
    delivery_source: dict[int, tuple[int, bool]] = {}
    for edge in graph.edges:
        if edge.kind is EdgeKind.DELIVERY:
            delivery_source[edge.target] = (edge.source, edge.stitched)

    drafts = _drafts(graph)
    in_flight = tuple(
        InFlight(
            SpanRef(TraceId(m.trace_id), SpanId(v.marker_for or m.span_id), m.name, m.service),
            m.start_ns,
            v.event_id,
            v.consumer,
        )
        for m, v in zip(graph.open_markers, graph.open_marker_views, strict=True)
    )
    ordered = sorted(
        drafts.items(),
        key=lambda item: min(
            [spans[n].start_ns for n in item[1].nodes]
            + [graph.open_markers[m].start_ns for m in item[1].markers]
        ),
    )
    branches: list[Branch] = []
    branch_nodes: list[tuple[int, ...]] = []
    previous_attempt: dict[int, int] = {}
    attempt_number: dict[int, int] = {}
    dead_letters: list[DeadLetter] = []
    for key, draft in ordered:
        # Finished attempts and in-flight markers, in start order.
        timeline: list[tuple[int, int, int]] = [(spans[n].start_ns, n, 0) for n in draft.nodes]
        timeline += [(graph.open_markers[m].start_ns, m, 1) for m in draft.markers]
        timeline.sort()
        first_view: MessagingView = (
            views[draft.nodes[0]] if draft.nodes else graph.open_marker_views[draft.markers[0]]
        )
        outcomes = [
            views[i].outcome if marker == 0 else Outcome.IN_FLIGHT for _, i, marker in timeline
        ]
        kinds = _classify(outcomes)
        attempts: list[Attempt] = []
        previous_end: int | None = None
        previous_node = NO_NODE
        for number, ((start, i, marker), kind) in enumerate(zip(timeline, kinds, strict=True), 1):
            if marker:
                m, v = graph.open_markers[i], graph.open_marker_views[i]
                ref = SpanRef(m.trace_id, v.marker_for or m.span_id, m.name, m.service)
                end = duration = None
                reported, error = v.attempt, None
            else:
                span, view = spans[i], views[i]
                ref = graph.ref(i)
                end, duration = span.end_ns, span.duration_ns
                reported, error = view.attempt, view.error
                if previous_node != NO_NODE:
                    previous_attempt[i] = previous_node
                previous_node = i
                attempt_number[i] = number
            backoff = None if previous_end is None else max(0, start - previous_end)
            attempts.append(
                Attempt(
                    number, reported, kind, ref, start, end, duration, outcomes[number - 1],
                    error, backoff,
                )
            )  # fmt: skip
            previous_end = end if end is not None else previous_end

        own_dead_letters = [
            DeadLetter(key.event_id, first_view.event_name, key.consumer, graph.ref(producer),
                       views[producer].destination)
            for producer in graph.republishers.get(key.event_id, ())
            if views[producer].dead_letter and graph.owner[producer] in draft.nodes
        ] + [
            DeadLetter(key.event_id, first_view.event_name, key.consumer, attempt.span,
                       first_view.destination)
            for attempt in attempts
            if attempt.outcome is Outcome.DEAD_LETTER
        ]  # fmt: skip
        dead_letters += own_dead_letters
        dead_lettered = bool(own_dead_letters)
        if any(o is Outcome.OK for o in outcomes):
            status = BranchStatus.SUCCEEDED
        elif dead_lettered:
            status = BranchStatus.DEAD_LETTERED
        elif outcomes[-1] is Outcome.IN_FLIGHT:
            status = BranchStatus.IN_FLIGHT
        else:
            status = BranchStatus.FAILED

        source = NO_NODE
        stitched = False
        for node in draft.nodes:
            if node in delivery_source:
                found, edge_stitched = delivery_source[node]
                source = found if source == NO_NODE else source
                stitched = stitched or edge_stitched
        if source == NO_NODE:
            producers = graph.producers_of(key.event_id)
            source = producers[0] if producers else NO_NODE
        caused_by = None
        if source != NO_NODE and graph.owner[source] != NO_NODE:
            boss = graph.owner[source]
            boss_events = graph.delivered[boss]
            boss_consumer = views[boss].consumer
            if boss_events and boss_consumer:
                caused_by = BranchId(boss_events[0], boss_consumer)
        downstream = dict.fromkeys(e for n in draft.nodes for e in owned_events.get(n, ()))
        identity = first_view.consumer_identified_by or ConsumerIdentity.SERVICE_NAME
        branches.append(
            Branch(
                event_id=key.event_id,
                event_name=first_view.event_name
                or (views[source].event_name if source != NO_NODE else None),
                consumer=key.consumer,
                consumer_identified_by=identity,
                service=attempts[0].span.service,
                step=first_view.step,
                destination=first_view.destination,
                producer=graph.ref(source) if source != NO_NODE else None,
                attempts=tuple(attempts),
                status=status,
                retries=kinds.count(AttemptKind.RETRY),
                duplicates=kinds.count(AttemptKind.DUPLICATE),
                dead_lettered=dead_lettered,
                stitched=stitched,
                batch=bool(draft.nodes) and views[draft.nodes[0]].event_id is None,
                caused_by=caused_by,
                downstream_events=tuple(downstream),
            )
        )
        branch_nodes.append(tuple(draft.nodes))

    return Branches(
        branches=tuple(branches),
        duplicate_publishes=_duplicate_publishes(graph),
        dead_letters=tuple(dead_letters) + _unattributed_dead_letters(graph, dead_letters),
        in_flight=in_flight,
        nodes=tuple(branch_nodes),
        previous_attempt=previous_attempt,
        attempt_number=attempt_number,
    )


def _duplicate_publishes(graph: CausalGraph) -> tuple[DuplicatePublish, ...]:
    return tuple(
        DuplicatePublish(
            event_id, graph.views[producers[0]].event_name, tuple(map(graph.ref, producers))
        )
        for event_id, producers in graph.origin_producers.items()
        if len(producers) > 1
    )


def _unattributed_dead_letters(
    graph: CausalGraph, known: list[DeadLetter]
) -> tuple[DeadLetter, ...]:
    """Dead-letter evidence no branch accounts for: DLQ republishes outside any branch,
    and consumers reading a dead-letter destination."""
    seen = {(d.event_id, d.span.span_id) for d in known}
    covered = {d.event_id for d in known}
    extra: list[DeadLetter] = []
    for event_id, producers in graph.republishers.items():
        for producer in producers:
            view = graph.views[producer]
            if view.dead_letter and (event_id, graph.spans[producer].span_id) not in seen:
                extra.append(
                    DeadLetter(event_id, view.event_name, None, graph.ref(producer),
                               view.destination)
                )  # fmt: skip
                covered.add(event_id)
    for event_id, readers in graph.consumers.items():
        if event_id in covered:
            continue
        for reader in readers:
            view = graph.views[reader]
            if view.dead_letter and view.outcome is not Outcome.DEAD_LETTER:
                extra.append(
                    DeadLetter(event_id, view.event_name, None, graph.ref(reader),
                               view.destination)
                )  # fmt: skip
                break
    return tuple(extra)
