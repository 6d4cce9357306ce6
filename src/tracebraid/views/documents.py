"""Whole JSON documents, one per command, each naming its schema (``tracebraid.<kind>/v1``).

``workflow_document`` (``show``), ``why_document``, ``latency_document``,
``mermaid_document`` and ``demo_document`` are built here from the records of
``tracebraid.views.serialize``; ``pending_document`` and ``retries_document`` fold
many workflows and live in ``tracebraid.views.recent``. ``to_json`` writes any of
them. The CLI's ``--json`` and the web API answer with these same documents.

Example::

    >>> from tracebraid.analysis import analyze
    >>> from tracebraid.testing.workflows import order_flow
    >>> document = workflow_document(analyze(order_flow().spans), key="order_441")
    >>> document["schema"], document["summary"]["retries"]
    ('tracebraid.workflow/v1', 2)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from tracebraid.analysis import CausalChain, LatencyReport, PendingState, WorkflowAnalysis
from tracebraid.views.layout import ActionNode, BranchNode, EventNode, WorkflowTree, build_tree
from tracebraid.views.schema import (
    SCHEMAS,
    ActionNodeJson,
    BranchNodeJson,
    DemoDocument,
    DemoOrderJson,
    EventNodeJson,
    LatencyDocument,
    MermaidDocument,
    SummaryJson,
    TreeJson,
    WhyDocument,
    WorkflowDocument,
)
from tracebraid.views.serialize import (
    branch,
    branch_latency,
    chain_step,
    clock_skew,
    critical_path,
    cycle,
    dead_letter,
    delivery_latency,
    duplicate_publish,
    in_flight,
    island,
    lagging_consumer,
    limitation,
    pending_branch,
    propagation_break,
    span_ref,
    span_ref_or_none,
    unconsumed,
)

__all__ = [
    "demo_document",
    "latency_document",
    "mermaid_document",
    "summary",
    "to_json",
    "tree",
    "why_document",
    "workflow_document",
]


def to_json(document: Mapping[str, object]) -> str:
    """A document as indented UTF-8 JSON text, keys in schema order."""
    return json.dumps(document, indent=2, ensure_ascii=False)


def _branch_node(node: BranchNode) -> BranchNodeJson:
    return {
        "event_id": node.event_id,
        "consumer": node.consumer,
        "step": node.step,
        "service": node.service,
        "state": node.state.value,
        "pending_reason": None if node.pending is None else node.pending.reason.value,
        "queue_wait_ns": None if node.latency is None else node.latency.queue_wait_ns,
        "lagging": node.lagging is not None,
        "stitched": node.stitched,
        "on_critical_path": node.on_critical_path,
        "attempt_count": 0 if node.branch is None else len(node.branch.attempts),
        "events": [_event_node(e) for e in node.events],
    }


def _event_node(node: EventNode) -> EventNodeJson:
    return {
        "event_id": node.event_id,
        "event_name": node.event_name,
        "destination": node.destination,
        "producer": span_ref_or_none(node.producer),
        "causation_id": node.causation_id,
        "published_ns": node.published_ns,
        "on_critical_path": node.on_critical_path,
        "branches": [_branch_node(b) for b in node.branches],
    }


def _action_node(node: ActionNode) -> ActionNodeJson:
    return {
        "span": span_ref(node.span),
        "start_ns": node.start_ns,
        "duration_ns": node.duration_ns,
        "on_critical_path": node.on_critical_path,
        "events": [_event_node(e) for e in node.events],
    }


def tree(workflow_tree: WorkflowTree) -> TreeJson:
    """The causal tree (``tracebraid.views.layout``) as nested nodes."""
    return {
        "roots": [_action_node(r) for r in workflow_tree.roots],
        "orphans": [_event_node(e) for e in workflow_tree.orphans],
    }


def summary(analysis: WorkflowAnalysis) -> SummaryJson:
    """The header line's figures: ``tree.header_line`` prints these too."""
    lost = sum(1 for p in analysis.pending if p.state is PendingState.LOST)
    return {
        "correlation_ids": list(analysis.correlation_ids),
        "trace_ids": list(analysis.trace_ids),
        "span_count": analysis.span_count,
        "start_ns": analysis.start_ns,
        "end_ns": analysis.end_ns,
        "duration_ns": analysis.duration_ns,
        "now_ns": analysis.now_ns,
        "retries": sum(b.retries for b in analysis.branches),
        "pending": len(analysis.pending) - lost,
        "lost": lost,
        "in_flight": len(analysis.in_flight),
        "broken_links": sum(b.count for b in analysis.breaks),
        "dead_letters": len(analysis.dead_letters),
        "duplicates": sum(b.duplicates for b in analysis.branches),
    }


def workflow_document(analysis: WorkflowAnalysis, *, key: str | None) -> WorkflowDocument:
    """``tracebraid.workflow/v1``: everything ``show`` prints, and the tree to draw it."""
    return {
        "schema": SCHEMAS["workflow"],
        "key": key,
        "summary": summary(analysis),
        "roots": [span_ref(r) for r in analysis.roots],
        "branches": [branch(b) for b in analysis.branches],
        "pending": [pending_branch(p) for p in analysis.pending],
        "unconsumed": [unconsumed(u) for u in analysis.unconsumed],
        "in_flight": [in_flight(i) for i in analysis.in_flight],
        "duplicate_publishes": [duplicate_publish(d) for d in analysis.duplicate_publishes],
        "dead_letters": [dead_letter(d) for d in analysis.dead_letters],
        "critical_path": critical_path(analysis.critical_path),
        "lagging": [lagging_consumer(lag) for lag in analysis.lagging],
        "breaks": [propagation_break(b) for b in analysis.breaks],
        "islands": [island(i) for i in analysis.islands],
        "cycles": [cycle(c) for c in analysis.cycles],
        "clock_skews": [clock_skew(s) for s in analysis.clock_skews],
        "limitations": [limitation(item) for item in analysis.limitations],
        "tree": tree(build_tree(analysis)),
    }


def why_document(chain: CausalChain, *, key: str | None) -> WhyDocument:
    """``tracebraid.why/v1``: the causal chain from the user action to the target."""
    return {
        "schema": SCHEMAS["why"],
        "key": key,
        "target": chain.target,
        "complete": chain.complete,
        "gap": chain.gap,
        "stitched_hops": chain.stitched_hops,
        "steps": [chain_step(s) for s in chain.steps],
        "also_caused_by": [span_ref(ref) for ref in chain.also_caused_by],
    }


def latency_document(report: LatencyReport, *, key: str | None) -> LatencyDocument:
    """``tracebraid.latency/v1``: the critical path, lagging consumers, every hand-off."""
    return {
        "schema": SCHEMAS["latency"],
        "key": key,
        "critical_path": critical_path(report.critical_path),
        "lagging": [lagging_consumer(lag) for lag in report.lagging],
        "branches": [branch_latency(b) for b in report.branches],
        "deliveries": [delivery_latency(d) for d in report.deliveries],
        "clock_skews": [clock_skew(s) for s in report.clock_skews],
    }


def mermaid_document(text: str, *, key: str | None) -> MermaidDocument:
    """``tracebraid.mermaid/v1``: the flowchart text."""
    return {"schema": SCHEMAS["mermaid"], "key": key, "mermaid": text}


def demo_document(
    workflow: WorkflowDocument, *, store: str, orders: Sequence[DemoOrderJson]
) -> DemoDocument:
    """``tracebraid.demo/v1``: where the demo stored its spans, its orders, the first one's
    workflow."""
    return {"schema": SCHEMAS["demo"], "store": store, "orders": list(orders), "workflow": workflow}
