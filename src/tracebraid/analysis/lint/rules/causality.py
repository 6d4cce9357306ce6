"""Broken causality (TB101, TB102): consumers cut off from the work that caused them.

The seed's design-review case: a producer did not carry the trace context forward,
so its consumer started a new trace. When the event was published in another trace,
the analysis stitched the delivery back by event ID (``EdgeKind.DELIVERY``,
``stitched``): TB101 points at the publishing step, where the fix goes. When nothing
ties the consumer to a producer (no parent, no link, its producer nowhere in the
spans), TB102 points at the consumer.

Example::

    >>> from tracebraid.analysis import analyze
    >>> from tracebraid.analysis.lint.conventions import DEFAULT_CONVENTIONS
    >>> from tracebraid.testing.workflows import islands
    >>> [(f.rule, f.service, f.step, f.count)
    ...  for f in broken_causality(analyze(islands(3).spans), DEFAULT_CONVENTIONS)]
    [('TB101', 'checkout-api', 'POST /orders', 3)]
"""

from __future__ import annotations

from collections.abc import Iterator

from tracebraid.analysis.graph import CausalGraph, EdgeKind
from tracebraid.analysis.lint.catalog import BROKEN_CAUSALITY, ORPHAN_CONSUMER
from tracebraid.analysis.lint.conventions import Conventions
from tracebraid.analysis.lint.findings import Finding
from tracebraid.analysis.lint.rules._where import describe_event, step_of
from tracebraid.analysis.stitching import IslandCause
from tracebraid.analysis.workflow import WorkflowAnalysis

__all__ = ["broken_causality", "is_unjoined", "orphan_consumers", "plural"]


def plural(count: int, noun: str) -> str:
    """``1 trace``, ``2 traces``, ``2 deliveries``."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {noun[:-1]}ies" if noun.endswith("y") else f"{count} {noun}s"


def is_unjoined(graph: CausalGraph, node: int) -> bool:
    """True for a span with neither a parent span ID nor a link: nothing joins it to a cause.

    (A consumer whose parent is merely absent from the spans did propagate; its
    producer was not exported or not fetched.)
    """
    span = graph.spans[node]
    return span.parent_span_id is None and not span.links


def broken_causality(analysis: WorkflowAnalysis, conventions: Conventions) -> Iterator[Finding]:
    """TB101: one finding per publishing step whose deliveries had to be stitched."""
    graph = analysis.graph
    groups: dict[tuple[str, str, str], list[tuple[int, int]]] = {}
    for edge in graph.edges:
        if edge.kind is EdgeKind.DELIVERY and edge.stitched:
            producer = edge.source
            key = (
                graph.spans[producer].service,
                step_of(graph, producer),
                describe_event(graph, producer),
            )
            groups.setdefault(key, []).append((producer, edge.target))
    for (service, step, event), pairs in groups.items():
        consumers = tuple(sorted({graph.views[c].step for _, c in pairs}))
        producers = tuple(dict.fromkeys(p for p, _ in pairs))
        traces = {graph.spans[c].trace_id for _, c in pairs}
        yield Finding.of(
            BROKEN_CAUSALITY,
            service=service,
            step=step,
            message=(
                f"{step} publishes {event} without trace context: "
                f"{plural(len(pairs), 'delivery')} to {', '.join(consumers)} started "
                f"{plural(len(traces), 'new trace')}"
            ),
            spans=map(graph.ref, (producers[0], *(c for _, c in pairs))),
            services=[graph.spans[c].service for _, c in pairs],
            key=event,
            count=len(pairs),
            details={
                "event": event,
                "consumers": consumers,
                "event_ids": tuple(dict.fromkeys(str(graph.views[p].event_id) for p in producers))[
                    :5
                ],
            },
        )


def orphan_consumers(analysis: WorkflowAnalysis, conventions: Conventions) -> Iterator[Finding]:
    """TB102: consumer-rooted traces that neither a parent, a link nor an event ID join."""
    graph = analysis.graph
    groups: dict[tuple[str, str], list[int]] = {}
    for island in analysis.islands:
        if island.cause not in (IslandCause.NO_PRODUCER, IslandCause.NO_EVENT_ID):
            continue
        node = graph.node(island.root.trace_id, island.root.span_id)
        if node is None or not is_unjoined(graph, node):
            continue
        groups.setdefault((island.root.service, graph.views[node].step), []).append(node)
    for (service, step), nodes in groups.items():
        events = [graph.views[n].event_id for n in nodes]
        known = [e for e in events if e is not None]
        if known:
            said = f"its event ({known[0]}) was published nowhere in these spans"
        else:
            said = "and it carries no event ID to join it by"
        yield Finding.of(
            ORPHAN_CONSUMER,
            service=service,
            step=step,
            message=(
                f"{step} started {plural(len(nodes), 'trace')} with neither parent nor link; {said}"
            ),
            spans=(graph.ref(n) for n in nodes),
            count=len(nodes),
            details={"event_ids": tuple(dict.fromkeys(str(e) for e in known))[:5]},
        )
