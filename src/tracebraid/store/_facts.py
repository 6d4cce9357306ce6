"""The branch facts of a set of spans, by the analysis' own definitions, without the analysis.

Search lists many traces a page, each with its counts (retries, failed branches,
duplicates, work in flight), and must say what the workflow view says for the same
spans. The store sits below the analysis, so it cannot call it; this module reads
the same ``tracebraid.messaging`` views and applies the rules of
``tracebraid.analysis.graph`` and ``tracebraid.analysis.attempts`` (as they stood
when this was written) to them. It is the default of ``search_traces``; the views
pass the analysis' own counts instead (``tracebraid.views.counts``). The fleet
aggregates' SQL ranks attempts by the same rules, and
``tests/store/test_search_facts.py`` holds the two together:

- a delivery span's **message** comes from structure first (its parent is a producer
  span, or it links to exactly one), then from its strong identities, merged across
  every span that shows them; poll and batch spans whose records are consumer spans
  (``getmany``) are containers, not deliveries;
- a **branch** is one message processed by one consumer name; a consumer span with no
  message of its own took the messages of the producers it links to (a batch); when a
  branch holds ``receive`` and other spans, only the others are attempts;
- a start marker whose span has not arrived is an attempt **in flight**;
- attempts are classified in start order (``classify``): a **retry** follows a failed
  attempt (or is the first one seen, counting itself 2 or more), a **duplicate**
  follows a success, a **redelivery** follows an attempt of unknown outcome;
- a branch **failed** when its last attempt failed, or it gave the message up
  (``dead_letter``: an attempt said so, or its work republished the message to a
  dead-letter destination) and its last attempt did not succeed.

Example::

    >>> from tracebraid.testing.workflows import order_flow
    >>> facts = branch_facts(order_flow().spans)
    >>> (facts.branches, facts.retries, facts.failed, facts.in_flight)
    (4, 2, 0, 0)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import TypeAlias

from tracebraid import messaging, semconv
from tracebraid.messaging import AttemptOutcome, MessagingView, Role
from tracebraid.model import EventId, Span, SpanId, TraceId

__all__ = ["AttemptKind", "BranchFacts", "branch_facts", "classify", "failed_branch"]

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
    previous = AttemptOutcome.OK
    for outcome, number in zip(outcomes, reported, strict=True):
        if not kinds:
            retried = number is not None and number > 1
            kinds.append(AttemptKind.RETRY if retried else AttemptKind.FIRST)
        elif succeeded:
            kinds.append(AttemptKind.DUPLICATE)
        elif previous is AttemptOutcome.UNKNOWN:
            kinds.append(AttemptKind.REDELIVERY)
        else:
            kinds.append(AttemptKind.RETRY)
        succeeded = succeeded or outcome is AttemptOutcome.OK
        previous = outcome
    return kinds


def failed_branch(outcomes: Sequence[AttemptOutcome], dead_lettered: bool) -> bool:
    """Whether a branch with these attempt outcomes (start order) failed: its status,
    the last attempt's, is ``failed`` or ``dead_lettered``.

    >>> failed_branch([AttemptOutcome.OK, AttemptOutcome.ERROR], False)
    True
    """
    last = outcomes[-1]
    if last is AttemptOutcome.IN_FLIGHT or last is AttemptOutcome.OK:
        return False
    return dead_lettered or last is not AttemptOutcome.UNKNOWN


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


def _owners(spans: list[Span], roles: list[Role], parent: list[int]) -> list[int]:
    """The nearest consumer span up each span's parent chain (-1: none, or a loop)."""
    owners: list[int] = []
    for i in range(len(spans)):
        node, seen = i, set()
        while node >= 0 and roles[node] is not Role.CONSUMER and node not in seen:
            seen.add(node)
            node = parent[node]
        owners.append(node if node >= 0 and node not in seen else -1)
    return owners


def _links(spans: list[Span], index: _Index) -> tuple[dict[int, list[int]], dict[int, list[str]]]:
    """Linked spans per holder, in link order; message IDs that links to absent spans say."""
    linked: dict[int, list[int]] = {}
    absent: dict[int, list[str]] = {}
    for i, span in enumerate(spans):
        if not span.links:
            continue
        targets = linked.setdefault(i, [])
        for link in span.links:
            found = index.get((link.trace_id, link.span_id))
            if found is None:
                said = semconv.first_of(link.attributes, semconv.MESSAGE_ID)
                if said is not None and said != "":
                    absent.setdefault(i, []).append(str(said))
            elif found not in targets:
                targets.append(found)
    return linked, absent


def _containers(
    views: list[MessagingView], parent: list[int], linked: dict[int, list[int]]
) -> list[bool]:
    """Poll and batch spans whose records are consumer spans: not deliveries themselves."""
    holds: dict[int, list[int]] = {}
    for node, view in enumerate(views):
        above = parent[node]
        if view.role is Role.CONSUMER and above >= 0 and views[above].role is Role.CONSUMER:
            holds.setdefault(above, []).append(node)
    for node, targets in linked.items():
        if views[node].role is Role.CONSUMER:
            records = [t for t in targets if views[t].role is Role.CONSUMER]
            if records and not any(views[t].role is Role.PRODUCER for t in targets):
                holds.setdefault(node, []).extend(records)
    container = [False] * len(views)
    for node, records in holds.items():
        view, above = views[node], parent[node]
        if view.event_id is None:
            container[node] = above < 0 or views[above].role is not Role.PRODUCER
        elif view.operation == "receive":
            container[node] = any(
                views[r].event_id == view.event_id and views[r].operation != "receive"
                for r in records
            )
    return container


class _Union:
    """Union-find over producer spans and strong identities."""

    def __init__(self) -> None:
        self.up: dict[object, object] = {}

    def find(self, key: object) -> object:
        root = key
        while (above := self.up.get(root, root)) != root:
            root = above
        while key != root:
            key, self.up[key] = self.up.get(key, key), root
        return root

    def union(self, a: object, b: object) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.up[rb] = ra


def _messages(
    spans: list[Span],
    views: list[MessagingView],
    parent: list[int],
    linked: dict[int, list[int]],
    container: list[bool],
) -> tuple[list[EventId | None], Callable[[str], EventId]]:
    """The message of every producer and delivery span, and of a bare identity."""
    union = _Union()
    source = [-1] * len(spans)
    for node, view in enumerate(views):
        if view.role is Role.PRODUCER:
            for identity in view.strong_identities:
                union.union(("span", node), identity)
        elif view.role is Role.CONSUMER and not container[node]:
            above = parent[node]
            if above >= 0 and views[above].role is Role.PRODUCER:
                source[node] = above
            else:
                producers = [t for t in linked.get(node, ()) if views[t].role is Role.PRODUCER]
                if len(producers) == 1:
                    source[node] = producers[0]
            anchor: object = ("span", source[node]) if source[node] >= 0 else None
            for identity in view.strong_identities:
                if anchor is None:
                    anchor = identity
                else:
                    union.union(anchor, identity)
    names: dict[object, EventId] = {}
    for node, view in enumerate(views):
        if view.role is Role.PRODUCER and view.event_id is not None:
            names.setdefault(union.find(("span", node)), view.event_id)
    for view in views:
        if view.event_id is not None and view.role is Role.CONSUMER:
            names.setdefault(union.find(view.event_id), view.event_id)
    result: list[EventId | None] = [None] * len(spans)
    for node, view in enumerate(views):
        if view.role is Role.PRODUCER:
            root = union.find(("span", node))
        elif view.role is Role.CONSUMER and not container[node]:
            if source[node] >= 0:
                root = union.find(("span", source[node]))
            elif view.event_id is not None:
                root = union.find(view.event_id)
            else:
                continue
        else:
            continue
        name = names.get(root)
        if name is None:
            span = spans[source[node] if view.role is Role.CONSUMER else node]
            name = names[root] = EventId(f"{span.trace_id}:{span.span_id}")
        result[node] = name

    def named(said: str) -> EventId:
        return names.get(union.find(said), EventId(said))

    return result, named


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
    parent = [
        -1 if s.parent_span_id is None else index.get((s.trace_id, s.parent_span_id), -1)
        for s in ordered
    ]
    linked, absent = _links(ordered, index)
    container = _containers(views, parent, linked)
    message, named = _messages(ordered, views, parent, linked, container)
    roles = [Role.OTHER if container[n] else view.role for n, view in enumerate(views)]
    owners = _owners(ordered, roles, parent)
    branches: dict[tuple[EventId, str], _Branch] = {}
    for i, view in enumerate(views):
        if view.role is not Role.CONSUMER or container[i] or view.consumer is None:
            continue
        own = message[i]
        if own is not None:
            events: tuple[EventId, ...] = (own,)
        else:
            batch = [message[t] for t in linked.get(i, ()) if views[t].role is Role.PRODUCER]
            batch += [named(said) for said in absent.get(i, ())]
            events = tuple(dict.fromkeys(e for e in batch if e is not None))
        for event in events:
            branches.setdefault((event, view.consumer), _Branch([], [])).nodes.append(i)
    for branch in branches.values():
        operations = {views[n].operation for n in branch.nodes}
        if "receive" in operations and len(operations) > 1:
            branch.nodes = [n for n in branch.nodes if views[n].operation != "receive"]
    open_markers = [m for m in markers if (m.trace_id, messaging.marker_target(m)) not in index]
    marker_views = [messaging.normalize(m) for m in open_markers]
    for position, view in enumerate(marker_views):
        if view.role is Role.CONSUMER and view.event_id and view.consumer:
            key = (view.event_id, view.consumer)
            branches.setdefault(key, _Branch([], [])).markers.append(position)
    # A branch gave its message up when its own work republished it to a dead-letter queue.
    dead_republished = {
        (message[i], owners[i])
        for i, view in enumerate(views)
        if view.role is Role.PRODUCER and message[i] and view.dead_letter and owners[i] >= 0
    }
    retries = failed = duplicates = 0
    for (event, _consumer), branch in branches.items():
        # Start order; at one start, finished spans before work in flight, then by IDs
        # (the order the fleet aggregates' SQL ranks attempts in).
        timeline = [(ordered[n].start_ns, False, ordered[n].key, n) for n in branch.nodes]
        timeline += [
            (open_markers[m].start_ns, True, open_markers[m].key, m) for m in branch.markers
        ]
        timeline.sort()
        outcomes = [
            AttemptOutcome.IN_FLIGHT if open_ else views[i].outcome for _, open_, _, i in timeline
        ]
        said = [(marker_views if open_ else views)[i].attempt for _, open_, _, i in timeline]
        kinds = classify(outcomes, said)
        retries += kinds.count(AttemptKind.RETRY)
        duplicates += kinds.count(AttemptKind.DUPLICATE)
        dead = AttemptOutcome.DEAD_LETTER in outcomes or any(
            (event, n) in dead_republished for n in branch.nodes
        )
        failed += failed_branch(outcomes, dead)
    return BranchFacts(
        branches=len(branches),
        retries=retries,
        failed=failed,
        duplicates=duplicates,
        in_flight=len(open_markers),
        consumers=tuple(sorted({consumer for _, consumer in branches})),
    )
