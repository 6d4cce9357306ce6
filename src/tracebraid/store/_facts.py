"""The branch facts of a set of spans, by the analysis' own definitions, without the analysis.

Search lists many traces a page, each with its counts (retries, failed branches,
duplicates, work in flight), and must say what the workflow view says for the same
spans. The store sits below the analysis, so it cannot call it; this module reads
the same ``tracebraid.messaging`` views and applies the same rules to them, and
``tests/store/test_search_facts.py`` checks, over generated workflows of every
convention generation, that both agree:

- a **branch** is one message processed by one consumer: consumer spans with the
  same event ID and consumer name; a consumer span without an event ID took the
  events of the producer spans it links to (a batch), or the message IDs its links
  carry; when a branch holds ``receive`` and other spans, only the others are attempts;
- a start marker whose span has not arrived is an attempt **in flight**;
- attempts are classified in start order (``classify``): a **retry** follows failed
  attempts only (or is the first one seen, when it counts itself 2 or more), a
  **duplicate** is a success after a success;
- a branch **failed** when no attempt succeeded and its last attempt is not in
  flight, or when it gave the message up (``dead_letter``): an attempt said so, or
  its work republished the message to a dead-letter destination.

Example::

    >>> from tracebraid.testing.workflows import order_flow
    >>> facts = branch_facts(order_flow().spans)
    >>> (facts.branches, facts.retries, facts.failed, facts.in_flight)
    (4, 2, 0, 0)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import TypeAlias

from tracebraid import messaging, semconv
from tracebraid.messaging import AttemptOutcome, MessagingView, Role
from tracebraid.model import EventId, Span, SpanId, TraceId

__all__ = ["AttemptKind", "BranchFacts", "branch_facts", "classify"]

_ORDER = attrgetter("start_ns", "trace_id", "span_id")
_Index: TypeAlias = dict[tuple[TraceId, SpanId], int]


class AttemptKind:
    """Why an attempt happened (the values of ``tracebraid.analysis.AttemptKind``)."""

    FIRST = "first"
    RETRY = "retry"
    DUPLICATE = "duplicate"
    REDELIVERY = "redelivery"


def classify(outcomes: Sequence[AttemptOutcome], reported: Sequence[int | None]) -> list[str]:
    """The kind of each attempt of one branch, in start order (``AttemptKind`` values).

    >>> classify([AttemptOutcome.ERROR, AttemptOutcome.OK, AttemptOutcome.OK], [None] * 3)
    ['first', 'retry', 'duplicate']
    """
    kinds: list[str] = []
    succeeded = False
    for outcome, number in zip(outcomes, reported, strict=True):
        if not kinds:
            retried = number is not None and number > 1
            kinds.append(AttemptKind.RETRY if retried else AttemptKind.FIRST)
        elif succeeded:
            ok = outcome is AttemptOutcome.OK
            kinds.append(AttemptKind.DUPLICATE if ok else AttemptKind.REDELIVERY)
        else:
            kinds.append(AttemptKind.RETRY)
        succeeded = succeeded or outcome is AttemptOutcome.OK
    return kinds


@dataclass(frozen=True, slots=True)
class BranchFacts:
    """Counts over the branches of a set of spans (definitions in the module docstring)."""

    branches: int
    retries: int
    failed: int
    duplicates: int
    in_flight: int
    consumers: tuple[str, ...]


@dataclass(slots=True)
class _Branch:
    nodes: list[int]
    markers: list[int]


def _unique(spans: Iterable[Span]) -> list[Span]:
    kept: dict[tuple[TraceId, SpanId], Span] = {}
    for span in spans:
        old = kept.setdefault(span.key, span)
        if old is not span and (span.end_ns, repr(span)) > (old.end_ns, repr(old)):
            kept[span.key] = span  # the analysis keeps the longest copy of a replay
    return sorted(kept.values(), key=_ORDER)


def _owners(spans: list[Span], views: list[MessagingView], index: _Index) -> list[int]:
    """The nearest consumer span up each span's parent chain (-1: none, or a loop)."""
    owners: list[int] = []
    for i in range(len(spans)):
        node, seen = i, set()
        while node >= 0 and views[node].role is not Role.CONSUMER and node not in seen:
            seen.add(node)
            parent = spans[node].parent_span_id
            node = -1 if parent is None else index.get((spans[node].trace_id, parent), -1)
        owners.append(node if node >= 0 and node not in seen else -1)
    return owners


def _batch_events(
    spans: list[Span], views: list[MessagingView], index: _Index, at: int
) -> list[EventId]:
    """The events a consumer span without an event ID took through its links."""
    events: list[EventId] = []
    for link in spans[at].links:
        found = index.get((link.trace_id, link.span_id))
        event: object = None
        if found is None:
            event = semconv.first_of(link.attributes, semconv.MESSAGE_ID)
        elif views[found].role is Role.PRODUCER:
            event = views[found].event_id
        if event is not None:
            events.append(EventId(str(event)))
    return list(dict.fromkeys(events))


def branch_facts(spans: Iterable[Span]) -> BranchFacts:
    """The branch counts of ``spans`` (one trace, or a workflow's traces)."""
    nodes: list[Span] = []
    marker_spans: list[Span] = []
    for span in spans:
        (marker_spans if messaging.is_start_marker(span) else nodes).append(span)
    ordered = _unique(nodes)
    markers = _unique(marker_spans)
    views = [messaging.normalize(span) for span in ordered]
    index: _Index = {span.key: i for i, span in enumerate(ordered)}
    open_markers = [m for m in markers if (m.trace_id, messaging.marker_target(m)) not in index]
    branches: dict[tuple[EventId, str], _Branch] = {}
    for i, view in enumerate(views):
        if view.role is not Role.CONSUMER or view.consumer is None:
            continue
        events = (
            (view.event_id,) if view.event_id else tuple(_batch_events(ordered, views, index, i))
        )
        for event in events:
            branches.setdefault((event, view.consumer), _Branch([], [])).nodes.append(i)
    for branch in branches.values():
        operations = {views[n].operation for n in branch.nodes}
        if "receive" in operations and len(operations) > 1:
            branch.nodes = [n for n in branch.nodes if views[n].operation != "receive"]
    marker_views = [messaging.normalize(m) for m in open_markers]
    for position, view in enumerate(marker_views):
        if view.role is Role.CONSUMER and view.event_id and view.consumer:
            key = (view.event_id, view.consumer)
            branches.setdefault(key, _Branch([], [])).markers.append(position)
    # A branch gave its message up when its own work republished it to a dead-letter queue.
    owners = _owners(ordered, views, index)
    dead_republished = {
        (view.event_id, owners[i])
        for i, view in enumerate(views)
        if view.role is Role.PRODUCER and view.event_id and view.dead_letter and owners[i] >= 0
    }
    retries = failed = duplicates = 0
    for (event, _consumer), branch in branches.items():
        timeline = [(ordered[n].start_ns, n, False) for n in branch.nodes]
        if branch.markers:
            timeline += [(open_markers[m].start_ns, m, True) for m in branch.markers]
            timeline.sort()
        outcomes = [
            AttemptOutcome.IN_FLIGHT if open_ else views[i].outcome for _, i, open_ in timeline
        ]
        said = [(marker_views if open_ else views)[i].attempt for _, i, open_ in timeline]
        kinds = classify(outcomes, said)
        retries += kinds.count(AttemptKind.RETRY)
        duplicates += kinds.count(AttemptKind.DUPLICATE)
        dead = AttemptOutcome.DEAD_LETTER in outcomes or any(
            (event, n) in dead_republished for n in branch.nodes
        )
        if AttemptOutcome.OK not in outcomes and (
            dead or outcomes[-1] is not AttemptOutcome.IN_FLIGHT
        ):
            failed += 1
    return BranchFacts(
        branches=len(branches),
        retries=retries,
        failed=failed,
        duplicates=duplicates,
        in_flight=len(open_markers),
        consumers=tuple(sorted({consumer for _, consumer in branches})),
    )
