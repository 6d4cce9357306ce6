"""What a sampled workflow can and cannot tell: partial workflows, fleet estimates, and
whether a workflow is worth keeping whole.

``tracebraid.WorkflowSampler`` keeps or drops whole workflows, so a kept workflow is
complete and its analysis is as good as an unsampled one's. With ``keep_retries`` it
also keeps retries and failures of dropped workflows, marked
``tracebraid.sampling.partial``: such a workflow is a fragment on purpose. Its absent
producers are not broken propagation and its absent consumers are not pending work,
so ``account_for_sampling`` removes those false findings and says so (a ``Limitation``).

Fleet figures estimate counts from kept spans: each span stands for ``1 / ratio`` spans
(its *adjusted count*, as in OpenTelemetry's probability sampling), except a failed
first attempt re-recorded for a dropped workflow, which the kept workflows' failures
already stand for (``adjusted_count``, ``estimate``).

``interesting`` is the collector's retention question: the reasons to keep a workflow
whole, from its analysis.

Example::

    >>> from tracebraid.analysis import analyze
    >>> from tracebraid.testing.workflows import order_flow
    >>> interesting(analyze(order_flow().spans))
    ('retry', 'failure', 'lagging')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tracebraid import semconv
from tracebraid.analysis.attempts import AttemptKind, BranchStatus
from tracebraid.analysis.outstanding import PendingReason
from tracebraid.analysis.records import Limitation
from tracebraid.analysis.stitching import Island, IslandCause
from tracebraid.messaging import Role, normalize
from tracebraid.model import Span

if TYPE_CHECKING:  # workflow.py calls this module: no import cycle at run time
    from tracebraid.analysis.workflow import WorkflowAnalysis

__all__ = [
    "FleetEstimate",
    "account_for_sampling",
    "adjusted_count",
    "estimate",
    "interesting",
    "is_partial",
    "sample_ratio",
]


def is_partial(span: Span) -> bool:
    """True for a span kept from a workflow that was otherwise sampled out."""
    return span.attributes.get(semconv.SAMPLING_PARTIAL) is True


def sample_ratio(span: Span) -> float:
    """The probability that ``span`` was recorded (1.0 when it carries no ratio)."""
    ratio = span.attributes.get(semconv.SAMPLING_RATIO)
    if isinstance(ratio, int | float) and not isinstance(ratio, bool) and 0.0 < ratio <= 1.0:
        return float(ratio)
    return 1.0


def adjusted_count(span: Span) -> float:
    """How many spans ``span`` stands for in a fleet estimate (``1 / ratio``; 0 for a
    failed first attempt re-recorded for a dropped workflow, already estimated)."""
    if span.attributes.get(semconv.SAMPLING_KEEP) == "failure" and is_partial(span):
        return 0.0
    return 1.0 / sample_ratio(span)


def account_for_sampling(analysis: WorkflowAnalysis) -> WorkflowAnalysis:
    """``analysis`` without the false findings of a partial workflow, saying it is one.

    In a workflow with spans marked partial, an island rooted in a kept span whose
    producer is absent, and a branch expected but never seen, are what sampling left
    out: they are removed and a ``sampled_partial`` limitation says how many spans are
    kept and what cannot be told. A workflow without such spans is returned unchanged.
    """
    spans = analysis.graph.spans
    partial = sum(1 for span in spans if is_partial(span))
    if not partial:
        return analysis
    islands = tuple(
        island
        for island in analysis.islands
        if not (island.cause is IslandCause.NO_PRODUCER and _partial_ref(analysis, island))
    )
    pending = tuple(p for p in analysis.pending if p.reason is not PendingReason.NOT_STARTED)
    hidden = len(analysis.islands) - len(islands) + len(analysis.pending) - len(pending)
    note = Limitation(
        "sampled_partial",
        f"the workflow was sampled out: only {partial} of its spans were kept (retries and "
        "failures, tracebraid.sampling.partial), so its other branches, producers and "
        "follow-ups are absent by design; absent parents are not broken propagation and "
        f"absent consumers are not pending ({hidden} such findings left out). Its retries "
        "and failures are complete; its latency and critical path are not",
        partial,
    )
    return dataclasses.replace(
        analysis, islands=islands, pending=pending, limitations=(*analysis.limitations, note)
    )


def _partial_ref(analysis: WorkflowAnalysis, island: Island) -> bool:
    root = (island.root.trace_id, island.root.span_id)
    return any(is_partial(span) for span in analysis.graph.spans if span.key == root)


def interesting(analysis: WorkflowAnalysis) -> tuple[str, ...]:
    """Why the workflow is worth keeping whole, most telling first; () if healthy.

    The reasons: ``retry``, ``failure``, ``dead_letter``, ``broken_link`` (a propagation
    break or island), ``lagging``, ``duplicate`` (processed again after success, or
    published twice), ``pending`` (a branch still unfinished as of the analysis' now).
    """
    reasons: list[str] = []
    branches = analysis.branches
    if any(b.retries for b in branches):
        reasons.append("retry")
    if any(
        b.status is BranchStatus.FAILED or any(a.outcome.failed for a in b.attempts)
        for b in branches
    ):
        reasons.append("failure")
    if analysis.dead_letters or any(b.dead_lettered for b in branches):
        reasons.append("dead_letter")
    if analysis.breaks or analysis.islands:
        reasons.append("broken_link")
    if analysis.lagging:
        reasons.append("lagging")
    if analysis.duplicate_publishes or any(
        a.kind is AttemptKind.DUPLICATE for b in branches for a in b.attempts
    ):
        reasons.append("duplicate")
    if analysis.pending:
        reasons.append("pending")
    return tuple(reasons)


@dataclass(frozen=True, slots=True)
class FleetEstimate:
    """Counts over a fleet of sampled spans, scaled back to what ran (see the module).

    ``sampled`` is True when any span carried a ratio below 1: the figures are then
    estimates, with the error of the sample (about ``1 / sqrt(kept)``).
    """

    published: float
    processed: float
    retries: float
    failed_attempts: float
    sampled: bool


def estimate(spans: Iterable[Span]) -> FleetEstimate:
    """Messages published, attempts processed, retries and failed attempts, estimated.

    Example::

        >>> from tracebraid.testing.workflows import order_flow
        >>> estimate(order_flow().spans).retries
        2.0
    """
    published = processed = retries = failed = 0.0
    sampled = False
    for span in spans:
        view = normalize(span)
        weight = adjusted_count(span)
        sampled = sampled or sample_ratio(span) < 1.0
        if view.role is Role.PRODUCER:
            published += weight
        elif view.role is Role.CONSUMER and view.marker_for is None:
            processed += weight
            if view.attempt is not None and view.attempt > 1:
                retries += weight
            if view.outcome.failed:
                failed += weight
    return FleetEstimate(published, processed, retries, failed, sampled)
