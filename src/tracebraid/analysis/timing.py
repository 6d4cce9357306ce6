"""Where time went along each hand-off: queue wait, processing, back-off; lagging consumers.

Per delivery (a ``delivery`` edge, or a batch consumer's ``link`` to a producer):

- queue wait = consumer start - producer end, for the first attempt of each message
  only (retries and redeliveries waited for back-off, not for the queue; a duplicate
  publish's message waited for its own publish);
- processing = the consumer span's duration;
- back-off = the gap between the previous attempt's end and this attempt's start.

A consumer that starts before its producer ended gets a queue wait of 0 (never
negative) and a ``ClockSkew`` record. Between services that is clock skew; within
one service (``same_service``) it is more likely that the consumer started before
the producer's span was closed.

**Lagging consumer**: a branch whose queue wait is at least ``LAG_MIN_NS`` (100 ms)
and more than ``LAG_FACTOR`` (3) times the median queue wait of its siblings (the
other consumers of the same event). An event with a single consumer has no
siblings; its consumer is compared with the median of every other branch in the
workflow instead (``compared_with="workflow"``). A wait clamped by clock skew is
unknown, so it is neither judged nor part of any baseline.

Example::

    >>> from tracebraid.analysis.attempts import find_branches
    >>> from tracebraid.analysis.graph import build_graph
    >>> from tracebraid.testing.workflows import order_flow
    >>> graph = build_graph(order_flow().spans)
    >>> timing = measure(graph, find_branches(graph))
    >>> [(lag.consumer, lag.queue_wait_ns // 1_000_000) for lag in timing.lagging]
    [('summary', 812)]
"""

from __future__ import annotations

from dataclasses import dataclass

from tracebraid.analysis.attempts import Branch, Branches
from tracebraid.analysis.graph import CausalGraph, EdgeKind
from tracebraid.analysis.records import SpanRef
from tracebraid.model import EventId

__all__ = [
    "LAG_FACTOR",
    "LAG_MIN_NS",
    "BranchLatency",
    "ClockSkew",
    "DeliveryLatency",
    "LaggingConsumer",
    "Timing",
    "measure",
]

LAG_FACTOR = 3.0
"""A lagging consumer waited more than this many times its siblings' median wait..."""
LAG_MIN_NS = 100_000_000
"""...and at least this long (100 ms), so microsecond jitter is never called lag."""


@dataclass(frozen=True, slots=True)
class DeliveryLatency:
    """The timing of one delivery: producer -> one consumer attempt.

    ``queue_wait_ns`` is ``None`` for attempts after the first (see
    ``backoff_before_ns``). ``clock_skew_ns`` is how much earlier than its producer's
    end the consumer started (0 when it did not); the wait is clamped to 0 then.
    """

    event_id: EventId
    event_name: str | None
    consumer: str
    producer: SpanRef
    consumer_span: SpanRef
    via: EdgeKind
    attempt: int | None
    queue_wait_ns: int | None
    processing_ns: int
    backoff_before_ns: int | None
    clock_skew_ns: int
    stitched: bool


@dataclass(frozen=True, slots=True)
class BranchLatency:
    """A branch's time from publish to its last finished attempt, split by cause.

    ``processing_ns`` is the successful attempt's duration (the last attempt's when
    none succeeded); ``failed_attempts_ns`` the time spent in attempts before it.
    ``queue_wait_ns`` is ``None`` when the producer is not among the spans.
    """

    event_id: EventId
    event_name: str | None
    consumer: str
    queue_wait_ns: int | None
    processing_ns: int
    failed_attempts_ns: int
    backoff_ns: int
    total_ns: int | None
    clock_skewed: bool
    lagging: bool


@dataclass(frozen=True, slots=True)
class LaggingConsumer:
    """A consumer whose queue wait was well above its siblings' (rule in the module doc)."""

    event_id: EventId
    event_name: str | None
    consumer: str
    queue_wait_ns: int
    baseline_ns: int
    compared_with: str
    ratio: float | None


@dataclass(frozen=True, slots=True)
class ClockSkew:
    """A consumer that started before its producer ended; its wait was clamped to 0."""

    producer: SpanRef
    consumer: SpanRef
    skew_ns: int
    via: EdgeKind
    same_service: bool


@dataclass(frozen=True, slots=True)
class Timing:
    """The latency pass's answer."""

    deliveries: tuple[DeliveryLatency, ...]
    branches: tuple[BranchLatency, ...]
    lagging: tuple[LaggingConsumer, ...]
    clock_skews: tuple[ClockSkew, ...]


def _median_without(ordered: list[int], position: int) -> float:
    """Median of ``ordered`` (sorted) with the element at ``position`` left out, in O(1)."""
    size = len(ordered) - 1

    def at(k: int) -> int:
        return ordered[k] if k < position else ordered[k + 1]

    middle = size // 2
    return float(at(middle)) if size % 2 else (at(middle - 1) + at(middle)) / 2


def _lagging(branches: list[Branch], waits: list[int | None]) -> dict[int, LaggingConsumer]:
    by_event: dict[EventId, list[int]] = {}
    for number, branch in enumerate(branches):
        if waits[number] is not None:
            by_event.setdefault(branch.event_id, []).append(number)
    everyone = sorted((w, n) for n, w in enumerate(waits) if w is not None)
    everyone_rank = {n: rank for rank, (_, n) in enumerate(everyone)}
    everyone_waits = [w for w, _ in everyone]
    found: dict[int, LaggingConsumer] = {}
    for members in by_event.values():
        siblings = sorted((waits[n] or 0, n) for n in members)
        sibling_waits = [w for w, _ in siblings]
        for rank, (wait, number) in enumerate(siblings):
            if wait < LAG_MIN_NS:
                continue
            if len(siblings) > 1:
                baseline, compared_with = _median_without(sibling_waits, rank), "siblings"
            elif len(everyone) > 1:
                baseline = _median_without(everyone_waits, everyone_rank[number])
                compared_with = "workflow"
            else:
                continue
            if wait > LAG_FACTOR * baseline:
                branch = branches[number]
                found[number] = LaggingConsumer(
                    branch.event_id,
                    branch.event_name,
                    branch.consumer,
                    wait,
                    round(baseline),
                    compared_with,
                    round(wait / baseline, 1) if baseline else None,
                )
    return found


def measure(graph: CausalGraph, branches: Branches) -> Timing:
    """Latency of every delivery and branch, lagging consumers and clock skew."""
    spans, views = graph.spans, graph.views
    deliveries: list[DeliveryLatency] = []
    skews: list[ClockSkew] = []
    first_wait: dict[tuple[int, EventId], tuple[int, bool]] = {}  # (first attempt, event)
    for edge in graph.edges:
        if edge.kind is EdgeKind.CHILD:
            continue
        producer, consumer = spans[edge.source], spans[edge.target]
        events = graph.delivered[edge.target]
        if edge.kind is EdgeKind.LINK:
            event_id = graph.message[edge.source]
            if event_id is None or event_id not in events or graph.message[edge.target]:
                continue  # only a batch consumer's links are deliveries
        else:
            assert edge.event_id is not None
            event_id = edge.event_id
        number = branches.attempt_number.get(edge.target)
        raw = consumer.start_ns - producer.end_ns
        skew = max(0, -raw)
        if skew:
            skews.append(
                ClockSkew(
                    graph.ref(edge.source),
                    graph.ref(edge.target),
                    skew,
                    edge.kind,
                    producer.service == consumer.service,
                )
            )
        first = edge.target not in branches.previous_attempt
        if first:
            first_wait[edge.target, event_id] = (max(0, raw), bool(skew))
        backoff = None
        previous = branches.previous_attempt.get(edge.target)
        if previous is not None:
            backoff = max(0, consumer.start_ns - spans[previous].end_ns)
        deliveries.append(
            DeliveryLatency(
                event_id=event_id,
                event_name=views[edge.target].event_name or views[edge.source].event_name,
                consumer=views[edge.target].consumer or "",
                producer=graph.ref(edge.source),
                consumer_span=graph.ref(edge.target),
                via=edge.kind,
                attempt=number,
                queue_wait_ns=max(0, raw) if first else None,
                processing_ns=consumer.duration_ns,
                backoff_before_ns=backoff,
                clock_skew_ns=skew,
                stitched=edge.stitched,
            )
        )

    all_branches = list(branches.branches)
    waits: list[int | None] = []
    skewed: list[bool] = []
    for branch, nodes in zip(all_branches, branches.nodes, strict=True):
        wait, was_skewed = (
            first_wait.get((nodes[0], branch.event_id), (None, False)) if nodes else (None, False)
        )
        waits.append(wait)
        skewed.append(was_skewed)
    # A clamped wait is unknown, not short: it must not pull a baseline down.
    measured = [None if off else wait for wait, off in zip(waits, skewed, strict=True)]
    lagging = _lagging(all_branches, measured)
    latencies = [
        _branch_latency(branch, waits[n], skewed[n], n in lagging)
        for n, branch in enumerate(all_branches)
    ]
    return Timing(
        deliveries=tuple(deliveries),
        branches=tuple(latencies),
        lagging=tuple(lagging[n] for n in sorted(lagging)),
        clock_skews=tuple(skews),
    )


def _branch_latency(branch: Branch, wait: int | None, skewed: bool, lagging: bool) -> BranchLatency:
    finished = [a for a in branch.attempts if a.end_ns is not None]
    decisive = next((a for a in finished if not a.outcome.failed), None)
    if decisive is None and finished:
        decisive = finished[-1]
    last = decisive.number if decisive is not None else 0
    failed_ns = sum(a.duration_ns or 0 for a in finished if a.number < last)
    backoff_ns = sum(a.backoff_before_ns or 0 for a in finished if a.number <= last)
    processing_ns = (decisive.duration_ns or 0) if decisive is not None else 0
    total = None
    if decisive is not None and wait is not None:
        total = wait + failed_ns + backoff_ns + processing_ns
    return BranchLatency(
        event_id=branch.event_id,
        event_name=branch.event_name,
        consumer=branch.consumer,
        queue_wait_ns=wait,
        processing_ns=processing_ns,
        failed_attempts_ns=failed_ns,
        backoff_ns=backoff_ns,
        total_ns=total,
        clock_skewed=skewed,
        lagging=lagging,
    )
