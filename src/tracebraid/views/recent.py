"""Answers across recent workflows: pending branches, and retries summarised per consumer.

``tracebraid pending`` and ``tracebraid retries`` look at many workflows at once;
these pure functions fold their analyses (``LoadedWorkflow``) into one answer and
into the ``tracebraid.pending/v1`` and ``tracebraid.retries/v1`` documents.

Example::

    >>> from tracebraid.analysis import analyze
    >>> from tracebraid.testing.workflows import order_flow
    >>> from tracebraid.views.source import LoadedWorkflow
    >>> loaded = [LoadedWorkflow("order_441", analyze(order_flow().spans), False)]
    >>> [(c.step, c.retries, dict(c.errors)) for c in consumer_retries(loaded) if c.retries]
    [('send-warehouse-webhook', 2, {'TimeoutError': 2})]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from tracebraid.analysis import (
    Branch,
    BranchStatus,
    PendingState,
    retries,
)
from tracebraid.views.schema import (
    SCHEMAS,
    ConsumerRetriesJson,
    PendingDocument,
    RetriesDocument,
    RetryWorkflowJson,
)
from tracebraid.views.serialize import (
    branch,
    dead_letter,
    duplicate_publish,
    pending_branch,
    unconsumed,
)
from tracebraid.views.source import LoadedWorkflow

__all__ = [
    "ConsumerRetries",
    "consumer_retries",
    "error_type",
    "needs_attention",
    "pending_document",
    "retries_document",
]


@dataclass(frozen=True, slots=True)
class ConsumerRetries:
    """One consumer's record across the workflows looked at.

    ``branches``: events it took; ``retried_branches``: of those, how many needed
    more than one attempt; ``failing``: branches with no success (not dead-lettered);
    ``errors``: error type -> failed attempts with it.
    """

    consumer: str
    service: str
    step: str
    branches: int
    retried_branches: int
    retries: int
    duplicates: int
    dead_letters: int
    failing: int
    errors: tuple[tuple[str, int], ...]


def error_type(error: str | None) -> str:
    """``"TimeoutError: took 500 ms"`` -> ``"TimeoutError"`` (the part before the colon)."""
    if not error:
        return "unknown error"
    return error.split(":", 1)[0].strip() or error


def consumer_retries(loaded: Sequence[LoadedWorkflow]) -> tuple[ConsumerRetries, ...]:
    """Per consumer, every branch of every workflow folded; most retries first."""
    by_consumer: dict[str, list[Branch]] = {}
    for workflow in loaded:
        for item in workflow.analysis.branches:
            by_consumer.setdefault(item.consumer, []).append(item)
    found = [_consumer_record(consumer, branches) for consumer, branches in by_consumer.items()]
    found.sort(key=lambda c: (-c.retries, -c.dead_letters, -c.failing, c.consumer))
    return tuple(found)


def _consumer_record(consumer: str, branches: Sequence[Branch]) -> ConsumerRetries:
    errors = Counter(error_type(a.error) for b in branches for a in b.attempts if a.outcome.failed)
    return ConsumerRetries(
        consumer=consumer,
        service=branches[0].service,
        step=branches[0].step,
        branches=len(branches),
        retried_branches=sum(len(b.attempts) > 1 for b in branches),
        retries=sum(b.retries for b in branches),
        duplicates=sum(b.duplicates for b in branches),
        dead_letters=sum(b.dead_lettered for b in branches),
        failing=sum(b.status is BranchStatus.FAILED for b in branches),
        errors=tuple(errors.most_common()),
    )


def needs_attention(loaded: Sequence[LoadedWorkflow]) -> bool:
    """True when a workflow has a dead letter or a branch that has not succeeded."""
    return any(
        w.analysis.dead_letters or any(b.status is BranchStatus.FAILED for b in w.analysis.branches)
        for w in loaded
    )


def pending_document(
    loaded: Sequence[LoadedWorkflow], *, now_ns: int, since_ns: int | None
) -> PendingDocument:
    """``tracebraid.pending/v1``: per workflow its pending and lost branches."""
    everything = [p for w in loaded for p in w.analysis.pending]
    lost = sum(1 for p in everything if p.state is PendingState.LOST)
    return {
        "schema": SCHEMAS["pending"],
        "now_ns": now_ns,
        "since_ns": since_ns,
        "totals": {
            "pending": len(everything) - lost,
            "lost": lost,
            "in_flight": sum(len(w.analysis.in_flight) for w in loaded),
            "unconsumed": sum(len(w.analysis.unconsumed) for w in loaded),
        },
        "workflows": [
            {
                "key": w.key,
                "correlation_ids": list(w.analysis.correlation_ids),
                "trace_ids": list(w.analysis.trace_ids),
                "pending": [pending_branch(p) for p in w.analysis.pending],
                "unconsumed": [unconsumed(u) for u in w.analysis.unconsumed],
            }
            for w in loaded
            if w.analysis.pending or w.analysis.unconsumed
        ],
    }


def _consumer_json(row: ConsumerRetries) -> ConsumerRetriesJson:
    return {
        "consumer": row.consumer,
        "service": row.service,
        "step": row.step,
        "branches": row.branches,
        "retried_branches": row.retried_branches,
        "retries": row.retries,
        "duplicates": row.duplicates,
        "dead_letters": row.dead_letters,
        "failing": row.failing,
        "errors": dict(row.errors),
    }


def retries_document(loaded: Sequence[LoadedWorkflow]) -> RetriesDocument:
    """``tracebraid.retries/v1``: per workflow the troubled branches; per consumer totals."""
    workflows: list[RetryWorkflowJson] = []
    for w in loaded:
        report = retries(w.analysis)
        if not (report.branches or report.duplicate_publishes or report.dead_letters):
            continue
        workflows.append(
            {
                "key": w.key,
                "correlation_ids": list(w.analysis.correlation_ids),
                "trace_ids": list(w.analysis.trace_ids),
                "total_retries": report.total_retries,
                "branches": [branch(b) for b in report.branches],
                "duplicate_publishes": [duplicate_publish(d) for d in report.duplicate_publishes],
                "dead_letters": [dead_letter(d) for d in report.dead_letters],
            }
        )
    return {
        "schema": SCHEMAS["retries"],
        "workflows": workflows,
        "consumers": [_consumer_json(row) for row in consumer_retries(loaded)],
    }
