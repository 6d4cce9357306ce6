"""Lost correlation (TB201): follow-up events that dropped their workflow's correlation ID.

The cause of a published event is the consumer whose processing published it (its
owner in the causal graph), else the consumer of its causation event. When that cause
carried a correlation ID and the follow-up carries none, or another one, the
follow-up falls out of the workflow. A consumer that lost the correlation ID its
producer sent is the same break, found at the receiving end ("in transit").

Example::

    >>> from tracebraid.analysis import analyze
    >>> from tracebraid.analysis.lint.conventions import DEFAULT_CONVENTIONS
    >>> from tracebraid.testing.workflows import order_flow
    >>> list(lost_correlation(analyze(order_flow().spans), DEFAULT_CONVENTIONS))
    []
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from tracebraid.analysis.graph import NO_NODE, CausalGraph, EdgeKind
from tracebraid.analysis.lint.catalog import LOST_CORRELATION
from tracebraid.analysis.lint.conventions import Conventions
from tracebraid.analysis.lint.findings import Finding
from tracebraid.analysis.lint.rules._where import describe_event, step_of
from tracebraid.analysis.workflow import WorkflowAnalysis
from tracebraid.messaging import Role
from tracebraid.model import CorrelationId

__all__ = ["LostCorrelation", "find_lost_correlations", "lost_correlation"]


@dataclass(frozen=True, slots=True)
class LostCorrelation:
    """A span without the correlation ID its cause carried (``found`` is what it has)."""

    node: int
    expected: CorrelationId
    found: CorrelationId | None
    in_transit: bool


def _cause_correlation(graph: CausalGraph, node: int) -> CorrelationId | None:
    owner = graph.owner[node]
    if owner != NO_NODE:
        return graph.views[owner].correlation_id
    cause = graph.views[node].causation_id
    if cause is None:
        return None
    for consumer in graph.consumers.get(cause, ()):
        found = graph.views[consumer].correlation_id
        if found is not None:
            return found
    return None


def find_lost_correlations(graph: CausalGraph) -> list[LostCorrelation]:
    """Every producer (and receiving consumer) that lost its cause's correlation ID."""
    views = graph.views
    lost: list[LostCorrelation] = []
    for node, view in enumerate(views):
        if view.role is not Role.PRODUCER:
            continue
        expected = _cause_correlation(graph, node)
        if expected is not None and view.correlation_id != expected:
            lost.append(LostCorrelation(node, expected, view.correlation_id, False))
    for edge in graph.edges:
        if edge.kind is not EdgeKind.DELIVERY:
            continue
        sent = views[edge.source].correlation_id
        received = views[edge.target].correlation_id
        if sent is not None and received != sent:
            lost.append(LostCorrelation(edge.target, sent, received, True))
    return lost


def lost_correlation(analysis: WorkflowAnalysis, conventions: Conventions) -> Iterator[Finding]:
    """TB201: one finding per (service, step, event) that loses the correlation ID."""
    graph = analysis.graph
    groups: dict[tuple[str, str, str, bool], list[LostCorrelation]] = {}
    for item in find_lost_correlations(graph):
        key = (
            graph.spans[item.node].service,
            step_of(graph, item.node),
            describe_event(graph, item.node),
            item.in_transit,
        )
        groups.setdefault(key, []).append(item)
    for (service, step, event, in_transit), items in groups.items():
        first = items[0]
        if in_transit:
            what = (
                f"{step} received {event} without the correlation ID {first.expected} "
                "it was sent with"
            )
        elif first.found is None:
            what = (
                f"{step} publishes {event} without the correlation ID {first.expected} "
                "its cause carried"
            )
        else:
            what = (
                f"{step} publishes {event} with correlation ID {first.found} instead of "
                f"{first.expected}, the one its cause carried"
            )
        yield Finding.of(
            LOST_CORRELATION,
            service=service,
            step=step,
            message=what + (f" ({len(items)} times)" if len(items) > 1 else ""),
            spans=(graph.ref(i.node) for i in items),
            key=f"{event} (in transit)" if in_transit else event,
            count=len(items),
            details={"event": event, "expected": str(first.expected)},
        )
