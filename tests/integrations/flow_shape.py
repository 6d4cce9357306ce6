"""The order flow's shape by business step, so a flow on tracebraid's ``EventBus`` and the
same flow on a framework compare even where the framework names its messages otherwise
(a Celery task message is named by its task, one message per consumer).

Example::

    assert step_shape(analyze(framework_spans)) == step_shape(analyze(event_bus_spans))
"""

from __future__ import annotations

from dataclasses import dataclass

from tracebraid.analysis import WorkflowAnalysis
from tracebraid.demo.order_flow import SETTLED_STEPS, STALLED_STEP

ORDER = 441
SCALE = 0.1  # the flow's delays, as the adopt branch's stock-instrumentation tests run it
FLOW_STEPS = frozenset({*SETTLED_STEPS, STALLED_STEP})


@dataclass(frozen=True, slots=True)
class StepShape:
    """Per branch: its step, how it ended, how each attempt ended, the step whose work
    caused it and the steps its work caused; the correlation IDs; the causation chain
    as (causing step, caused step) pairs."""

    branches: tuple[tuple[object, ...], ...]
    correlations: tuple[str, ...]
    causation: tuple[tuple[str, str], ...]


def _ended(outcome: str) -> str:
    # tracebraid's EventBus knows a failed attempt will be retried ("retry"); a stock
    # consumer may only know that it failed ("error"). Either way the attempt failed.
    return outcome if outcome in ("ok", "in_flight") else "failed"


def step_shape(analysis: WorkflowAnalysis, *, steps: frozenset[str] = FLOW_STEPS) -> StepShape:
    """The shape of the branches whose step is one of ``steps`` (the order flow's)."""
    mine = [b for b in analysis.branches if b.step in steps]
    step_of = {b.id: b.step for b in mine}
    consumers: dict[str, list[str]] = {}
    for b in mine:
        consumers.setdefault(b.event_id, []).append(b.step)
    branches = sorted(
        (
            b.step,
            b.status.value,
            tuple(_ended(a.outcome.value) for a in b.attempts),
            step_of.get(b.caused_by) if b.caused_by else None,
            tuple(sorted(s for e in b.downstream_events for s in consumers.get(e, []))),
        )
        for b in mine
    )
    causation = sorted(
        {(b.step, s) for b in mine for e in b.downstream_events for s in consumers.get(e, [])}
    )
    return StepShape(tuple(branches), tuple(analysis.correlation_ids), tuple(causation))
