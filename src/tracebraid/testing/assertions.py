"""Causality assertions for users' own test suites: keep the trace graph whole in CI.

Each takes the spans a test produced (a list of ``Span``, or the ``SpanCapture``
of ``capture_spans`` / the ``causal_capture`` fixture) and raises ``AssertionError``
with an explanation a reader can act on: which spans, which service, what to fix.

- ``assert_one_workflow``: every span joined into one causal graph by parents,
  links and deliveries that kept their context, under at most one correlation ID;
- ``assert_no_islands``: no trace whose root is a consumer cut off from its cause;
- ``assert_no_findings``: no lint finding at or above a severity.

Example::

    >>> from tracebraid.testing.workflows import islands, order_flow
    >>> _ = assert_no_islands(order_flow().spans)
    >>> _ = assert_no_islands(islands(1).spans)
    Traceback (most recent call last):
    ...
    AssertionError: expected no islands, found 1:
    ...
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import TypeAlias

from tracebraid.analysis.graph import EdgeKind
from tracebraid.analysis.lint import (
    DEFAULT_CONVENTIONS,
    Conventions,
    Finding,
    LintReport,
    Severity,
    lint,
    load_conventions,
)
from tracebraid.analysis.workflow import WorkflowAnalysis, analyze
from tracebraid.model import Span
from tracebraid.testing.capture import SpanCapture

__all__ = ["Spans", "assert_no_findings", "assert_no_islands", "assert_one_workflow"]

Spans: TypeAlias = Iterable[Span] | SpanCapture
"""What the assertions take: spans, or a capture (its spans, start markers included)."""

_SHOWN = 10


def _spans(spans: Spans) -> list[Span]:
    return spans.all_spans if isinstance(spans, SpanCapture) else list(spans)


def _short(trace_id: str) -> str:
    return f"{trace_id[:8]}…"


def _components(analysis: WorkflowAnalysis) -> list[list[int]]:
    """Groups of nodes joined by child, link and unstitched delivery edges."""
    graph = analysis.graph
    parent = list(range(len(graph.spans)))

    def find(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for edge in graph.edges:
        if edge.kind is EdgeKind.DELIVERY and edge.stitched:
            continue  # found by event ID only: the context was lost on the way
        parent[find(edge.source)] = find(edge.target)
    groups: dict[int, list[int]] = {}
    for node in range(len(graph.spans)):
        groups.setdefault(find(node), []).append(node)
    return sorted(groups.values(), key=lambda nodes: nodes[0])


def assert_one_workflow(spans: Spans) -> WorkflowAnalysis:
    """Assert the spans form one connected causal graph under at most one correlation ID.

    Returns the analysis, for further assertions.
    """
    analysis = analyze(_spans(spans))
    problems: list[str] = []
    components = _components(analysis)
    graph = analysis.graph
    if len(components) > 1:
        lines = [f"the spans form {len(components)} separate causal graphs:"]
        for number, nodes in enumerate(components[:_SHOWN], 1):
            root = graph.spans[nodes[0]]
            size = f"{len(nodes)} span{'s' if len(nodes) > 1 else ''}"
            lines.append(
                f"  {number}. starts at {root.name!r} ({root.service}), trace "
                f"{_short(root.trace_id)}: {size}"
            )
        lines.append(
            "  every consumer must continue its message's trace context (child or link); a "
            "publish that drops traceparent, or work started outside the flow, splits it"
        )
        problems.append("\n".join(lines))
    if len(analysis.correlation_ids) > 1:
        shown = ", ".join(analysis.correlation_ids[:_SHOWN])
        problems.append(
            f"the spans carry {len(analysis.correlation_ids)} correlation IDs ({shown}); one "
            "workflow has one: a follow-up event minted a new one instead of carrying its "
            "cause's"
        )
    if problems:
        raise AssertionError("expected one workflow, but " + "\n".join(problems))
    return analysis


def assert_no_islands(spans: Spans) -> WorkflowAnalysis:
    """Assert no trace is an island: a consumer-rooted trace cut off from its cause."""
    analysis = analyze(_spans(spans))
    if not analysis.islands:
        return analysis
    lines = [f"expected no islands, found {len(analysis.islands)}:"]
    for island in analysis.islands[:_SHOWN]:
        root = island.root
        if island.producer is not None:
            cause = (
                f"its event {island.event_id} was published by {island.producer.name!r} "
                f"({island.producer.service}) in another trace, without trace context"
            )
        elif island.event_id is not None:
            cause = f"its event {island.event_id} was published nowhere in these spans"
        else:
            cause = "it has neither parent nor link, and no event ID"
        lines.append(
            f"  {root.name!r} ({root.service}) started trace {_short(island.trace_id)}: {cause}"
        )
    lines.append(
        "  fix: inject traceparent when publishing, start consumer spans from the extracted "
        "context (tracebraid.sdk.publishing / consuming do both)"
    )
    raise AssertionError("\n".join(lines))


def _findings_text(findings: Sequence[Finding]) -> list[str]:
    lines: list[str] = []
    for f in findings[:_SHOWN]:
        times = f" (x{f.count})" if f.count > 1 else ""
        lines.append(f"  {f.severity.value} {f.rule} {f.name} at {f.service} › {f.step}{times}")
        lines.append(f"    {f.message}")
        lines.append(f"    fix: {f.fix}")
    if len(findings) > _SHOWN:
        lines.append(f"  ... and {len(findings) - _SHOWN} more")
    return lines


def assert_no_findings(
    spans: Spans,
    *,
    at_or_above: str | Severity = Severity.ERROR,
    conventions: Conventions | str | os.PathLike[str] | None = None,
) -> LintReport:
    """Assert the lint finds nothing at or above ``at_or_above`` (default ``error``).

    ``conventions`` is a ``Conventions``, a path to a conventions file, or ``None``
    for the seed's. Returns the full report (findings below the threshold included).
    """
    threshold = at_or_above if isinstance(at_or_above, Severity) else Severity.parse(at_or_above)
    if conventions is None:
        rules = DEFAULT_CONVENTIONS
    elif isinstance(conventions, Conventions):
        rules = conventions
    else:
        rules = load_conventions(conventions)
    report = lint(_spans(spans), rules)
    failing = report.at_or_above(threshold)
    if failing:
        head = f"expected no lint findings at or above {threshold.value}, found {len(failing)}:"
        raise AssertionError("\n".join([head, *_findings_text(failing)]))
    return report
