"""Overloaded identities (TB301-TB304): one ID made to mean two things.

DESIGN.md keeps trace, correlation and event IDs apart. These rules find where they
were collapsed: an event ID equal to its span's trace ID (TB301) or correlation ID
(TB302), one event ID used for different event names (TB303), and a correlation ID
that is just a trace ID while the workflow spans several traces (TB304). IDs are
compared case-insensitively and without dashes, so a UUID written two ways still
matches. Each finding points at the step that minted the ID: the event's producer
(or the earliest span carrying it, when its producer is not among the spans).

Example::

    >>> from tracebraid.analysis import analyze
    >>> from tracebraid.analysis.lint.conventions import DEFAULT_CONVENTIONS
    >>> from tracebraid.testing.workflows import order_flow
    >>> analysis = analyze(order_flow().spans)
    >>> [f for rule in (event_id_is_trace_id, event_id_is_correlation_id, event_id_reused,
    ...                 correlation_is_trace_id) for f in rule(analysis, DEFAULT_CONVENTIONS)]
    []
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from tracebraid.analysis.graph import CausalGraph
from tracebraid.analysis.lint.catalog import (
    CORRELATION_IS_TRACE_ID,
    EVENT_ID_IS_CORRELATION_ID,
    EVENT_ID_IS_TRACE_ID,
    EVENT_ID_REUSED,
)
from tracebraid.analysis.lint.conventions import Conventions
from tracebraid.analysis.lint.findings import Finding, RuleSpec
from tracebraid.analysis.lint.rules._where import describe_event, step_of
from tracebraid.analysis.workflow import WorkflowAnalysis
from tracebraid.messaging import MessagingView
from tracebraid.model import EventId, Span

__all__ = [
    "correlation_is_trace_id",
    "event_id_is_correlation_id",
    "event_id_is_trace_id",
    "event_id_reused",
]


def _same(a: str, b: str) -> bool:
    return a.lower().replace("-", "") == b.lower().replace("-", "")


def _anchor(graph: CausalGraph, event_id: EventId, nodes: list[int]) -> int:
    """The span that minted ``event_id``: its first producer here, else its first span."""
    producers = graph.producers_of(event_id)
    return producers[0] if producers else min(nodes)


def _overloaded_events(
    analysis: WorkflowAnalysis,
    spec: RuleSpec,
    collides: Callable[[Span, MessagingView, EventId], str | None],
    what: str,
) -> Iterator[Finding]:
    graph = analysis.graph
    hits: dict[EventId, list[int]] = {}
    collided: dict[EventId, str] = {}
    for node, view in enumerate(graph.views):
        if view.event_id is None:
            continue
        other = collides(graph.spans[node], view, view.event_id)
        if other is not None:
            hits.setdefault(view.event_id, []).append(node)
            collided.setdefault(view.event_id, other)
    groups: dict[tuple[str, str, str], list[tuple[EventId, list[int]]]] = {}
    for event_id, nodes in hits.items():
        anchor = _anchor(graph, event_id, nodes)
        key = (graph.spans[anchor].service, step_of(graph, anchor), describe_event(graph, anchor))
        groups.setdefault(key, []).append((event_id, [anchor, *nodes]))
    for (service, step, event), items in groups.items():
        event_id = items[0][0]
        yield Finding.of(
            spec,
            service=service,
            step=step,
            message=(
                f"{step} publishes {event} with event ID {event_id}, which is also its "
                f"{what} ({collided[event_id]})"
                + (f"; {len(items)} events like it" if len(items) > 1 else "")
            ),
            spans=(graph.ref(n) for _, nodes in items for n in nodes),
            key=event,
            count=len(items),
            details={"event": event, "event_ids": tuple(str(e) for e, _ in items)[:5]},
        )


def event_id_is_trace_id(analysis: WorkflowAnalysis, conventions: Conventions) -> Iterator[Finding]:
    """TB301: events whose ID is the trace ID of a span carrying them."""

    def collides(span: Span, view: MessagingView, event_id: EventId) -> str | None:
        return span.trace_id if _same(event_id, span.trace_id) else None

    return _overloaded_events(analysis, EVENT_ID_IS_TRACE_ID, collides, "trace ID")


def event_id_is_correlation_id(
    analysis: WorkflowAnalysis, conventions: Conventions
) -> Iterator[Finding]:
    """TB302: events whose ID is the correlation ID they travel with."""

    def collides(span: Span, view: MessagingView, event_id: EventId) -> str | None:
        correlation = view.correlation_id
        return correlation if correlation and _same(event_id, correlation) else None

    return _overloaded_events(analysis, EVENT_ID_IS_CORRELATION_ID, collides, "correlation ID")


def event_id_reused(analysis: WorkflowAnalysis, conventions: Conventions) -> Iterator[Finding]:
    """TB303: one event ID that producer and consumer spans give different event names."""
    graph = analysis.graph
    names: dict[EventId, dict[str, list[int]]] = {}
    for node, view in enumerate(graph.views):
        if view.event_id is not None and view.event_name is not None:
            names.setdefault(view.event_id, {}).setdefault(view.event_name, []).append(node)
    groups: dict[tuple[str, str, str], list[tuple[EventId, dict[str, list[int]]]]] = {}
    for event_id, by_name in names.items():
        if len(by_name) < 2:
            continue
        nodes = [n for found in by_name.values() for n in found]
        anchor = _anchor(graph, event_id, nodes)
        where = (graph.spans[anchor].service, step_of(graph, anchor), " / ".join(sorted(by_name)))
        groups.setdefault(where, []).append((event_id, by_name))
    for (service, step, events), items in groups.items():
        event_id, by_name = items[0]
        yield Finding.of(
            EVENT_ID_REUSED,
            service=service,
            step=step,
            message=(
                f"event ID {event_id} names {len(by_name)} different events: "
                f"{', '.join(sorted(by_name))}"
                + (f"; {len(items)} event IDs like it" if len(items) > 1 else "")
            ),
            spans=(graph.ref(found[0]) for _, b in items for found in b.values()),
            key=events,
            count=len(items),
            details={
                "events": tuple(sorted(by_name)),
                "event_ids": tuple(str(e) for e, _ in items)[:5],
            },
        )


def correlation_is_trace_id(
    analysis: WorkflowAnalysis, conventions: Conventions
) -> Iterator[Finding]:
    """TB304: a correlation ID equal to a trace ID, carried in more than one trace."""
    graph = analysis.graph
    traces = {t.lower(): t for t in analysis.trace_ids}
    carriers: dict[str, list[int]] = {}
    for node, view in enumerate(graph.views):
        if view.correlation_id is not None:
            carriers.setdefault(view.correlation_id, []).append(node)
    groups: dict[tuple[str, str], list[tuple[str, list[int]]]] = {}
    for correlation, nodes in carriers.items():
        plain = correlation.lower().replace("-", "")
        if plain not in traces:
            continue
        spread = {graph.spans[n].trace_id for n in nodes}
        if len(spread) < 2:
            continue
        anchor = min(nodes)  # nodes are in start order: the earliest carrier set it
        groups.setdefault((graph.spans[anchor].service, step_of(graph, anchor)), []).append(
            (correlation, nodes)
        )
    for (service, step), items in groups.items():
        correlation, nodes = items[0]
        spread = {graph.spans[n].trace_id for n in nodes}
        elsewhere = [n for n in nodes if graph.spans[n].trace_id.lower() != correlation.lower()]
        yield Finding.of(
            CORRELATION_IS_TRACE_ID,
            service=service,
            step=step,
            message=(
                f"correlation ID {correlation} is the trace ID of {step}'s trace, and the "
                f"workflow spans {len(spread)} traces"
            ),
            spans=map(graph.ref, (nodes[0], *elsewhere)),
            count=len(items),
            details={"correlation_ids": tuple(c for c, _ in items)[:5]},
        )
