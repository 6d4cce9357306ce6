"""Run the lint: over one workflow's spans, or over a whole store, one workflow at a time.

``lint(spans)`` analyses the spans as one workflow and runs every rule.
``lint_store(store)`` streams the store's workflows (``stream``), runs the rules on
each, and folds the findings: one finding per problem and place, with how often it
happened, and coverage summed per service. Memory holds one workflow's spans at a
time plus trace IDs, never the store.

After the rules, the conventions settle each finding: a per-service or project
severity replaces the rule's default, ``off`` drops it, and an ``allow:`` entry
accepts it (counted in ``LintReport.suppressed``).

Example::

    >>> from tracebraid.testing.workflows import islands, order_flow
    >>> lint(order_flow().spans).findings
    ()
    >>> [(f.rule, f.service, f.count) for f in lint(islands(2).spans).findings]
    [('TB101', 'checkout-api', 2)]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from tracebraid.analysis.lint.conventions import DEFAULT_CONVENTIONS, Conventions
from tracebraid.analysis.lint.coverage import CoverageTally, ServiceCoverage
from tracebraid.analysis.lint.findings import Finding, Severity
from tracebraid.analysis.lint.rules import RULES, Rule
from tracebraid.analysis.lint.stream import (
    DEFAULT_MAX_TRACES,
    StoredWorkflow,
    iter_stored_workflows,
)
from tracebraid.analysis.workflow import WorkflowAnalysis, analyze
from tracebraid.model import Span
from tracebraid.store.base import SpanStore

__all__ = ["LintReport", "LintTally", "lint", "lint_store", "lint_stored_workflow", "run_rules"]


@dataclass(frozen=True, slots=True)
class LintReport:
    """What the lint found: findings (most severe first), coverage, and what was read."""

    findings: tuple[Finding, ...]
    coverage: tuple[ServiceCoverage, ...]
    workflows: int
    traces: int
    spans: int
    suppressed: int = 0
    truncated: int = 0
    """Workflows that stopped growing at ``max_traces``."""

    def at_or_above(self, threshold: Severity) -> tuple[Finding, ...]:
        """The findings whose severity reaches ``threshold``."""
        return tuple(f for f in self.findings if f.severity.reaches(threshold))

    @property
    def worst(self) -> Severity | None:
        """The highest severity found, ``None`` when clean."""
        return max((f.severity for f in self.findings), key=lambda s: s.rank, default=None)

    def count(self, severity: Severity) -> int:
        """How many findings have exactly ``severity``."""
        return sum(1 for f in self.findings if f.severity is severity)


def _settle(findings: Iterable[Finding], conventions: Conventions) -> tuple[list[Finding], int]:
    """Apply severity overrides, disabled rules and allowlists; (kept, suppressed)."""
    kept: list[Finding] = []
    suppressed = 0
    for finding in findings:
        severity = conventions.for_service(finding.service).severity(finding.rule, finding.severity)
        if severity is None:
            continue
        if severity is not finding.severity:
            finding = replace(finding, severity=severity)
        if conventions.allowed_by(finding) is not None:
            suppressed += finding.count
            continue
        kept.append(finding)
    return kept, suppressed


def run_rules(
    analysis: WorkflowAnalysis,
    conventions: Conventions = DEFAULT_CONVENTIONS,
    *,
    rules: Sequence[Rule] = RULES,
) -> tuple[list[Finding], int]:
    """Every rule over one analysed workflow, settled by the conventions: (kept, suppressed)."""
    return _settle((f for rule in rules for f in rule(analysis, conventions)), conventions)


class LintTally:
    """Folds the findings and coverage of many workflows into one ``LintReport``."""

    def __init__(self) -> None:
        self._findings: dict[tuple[str, str, str, str], Finding] = {}
        self._coverage = CoverageTally()
        self.workflows = 0
        self.traces = 0
        self.spans = 0
        self.suppressed = 0
        self.truncated = 0

    def merge(self, other: LintTally) -> None:
        """Fold another tally in (one kept by another process)."""
        self.add_findings(other._findings.values())
        self._coverage.merge(other._coverage)
        self.workflows += other.workflows
        self.traces += other.traces
        self.spans += other.spans
        self.suppressed += other.suppressed
        self.truncated += other.truncated

    def add_findings(self, findings: Iterable[Finding]) -> None:
        """Fold ``findings`` in: one per identity, counts added."""
        for finding in findings:
            known = self._findings.get(finding.identity)
            self._findings[finding.identity] = known.merged(finding) if known else finding

    def add(
        self,
        analysis: WorkflowAnalysis,
        findings: Iterable[Finding],
        *,
        spans: int,
        suppressed: int = 0,
    ) -> None:
        """Fold one workflow in (``spans``: how many were read, start markers included)."""
        self.add_findings(findings)
        self._coverage.add(analysis)
        self.workflows += 1
        self.traces += len(analysis.trace_ids)
        self.spans += spans
        self.suppressed += suppressed

    def add_news(
        self,
        analysis: WorkflowAnalysis,
        findings: Iterable[Finding],
        before: WorkflowAnalysis,
        findings_before: Iterable[Finding],
        *,
        spans: int,
        suppressed: int = 0,
    ) -> None:
        """Fold in what a workflow adds to a part of it (``before``) counted already."""
        old = {f.identity: f.count for f in findings_before}
        news = []
        for finding in findings:
            extra = finding.count - old.get(finding.identity, 0)
            if extra > 0:
                news.append(replace(finding, count=extra))
        self.add_findings(news)
        self._coverage.add(analysis)
        self._coverage.add(before, sign=-1)
        self.traces += len(analysis.trace_ids) - len(before.trace_ids)
        self.spans += spans
        self.suppressed += suppressed

    def report(self) -> LintReport:
        """The report so far: most severe first, then rule ID, service and step."""
        findings = sorted(
            self._findings.values(),
            key=lambda f: (-f.severity.rank, f.rule, f.service, f.step, f.key),
        )
        return LintReport(
            findings=tuple(findings),
            coverage=self._coverage.result(),
            workflows=self.workflows,
            traces=self.traces,
            spans=self.spans,
            suppressed=self.suppressed,
            truncated=self.truncated,
        )


def lint(
    spans: Iterable[Span] | WorkflowAnalysis,
    conventions: Conventions = DEFAULT_CONVENTIONS,
    *,
    rules: Sequence[Rule] = RULES,
) -> LintReport:
    """Lint the spans of one workflow (or its analysis): every rule, one report.

    Example::

        >>> from tracebraid.testing.workflows import order_flow
        >>> report = lint(order_flow(stock=True).spans)
        >>> sorted({f.rule for f in report.findings})
        ['TB401', 'TB501', 'TB601']
    """
    if isinstance(spans, WorkflowAnalysis):
        analysis, read = spans, spans.span_count
    else:
        given = list(spans)
        analysis, read = analyze(given), len(given)
    findings, suppressed = run_rules(analysis, conventions, rules=rules)
    tally = LintTally()
    tally.add(analysis, findings, spans=read, suppressed=suppressed)
    return tally.report()


def lint_stored_workflow(
    workflow: StoredWorkflow, conventions: Conventions, rules: Sequence[Rule], tally: LintTally
) -> None:
    """Lint one stored workflow into ``tally``; of traces already seen, only what is new."""
    findings, suppressed = run_rules(workflow.analysis, conventions, rules=rules)
    if not workflow.seen:
        tally.add(workflow.analysis, findings, spans=len(workflow.spans), suppressed=suppressed)
    else:
        earlier = [s for s in workflow.spans if s.trace_id in workflow.seen]
        before = analyze(earlier)
        findings_before, suppressed_before = run_rules(before, conventions, rules=rules)
        tally.add_news(
            workflow.analysis,
            findings,
            before,
            findings_before,
            spans=len(workflow.spans) - len(earlier),
            suppressed=max(0, suppressed - suppressed_before),
        )
    if workflow.truncated:
        tally.truncated += 1


def lint_store(
    store: SpanStore,
    conventions: Conventions = DEFAULT_CONVENTIONS,
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    rules: Sequence[Rule] = RULES,
    max_traces: int = DEFAULT_MAX_TRACES,
    progress: Callable[[LintTally], None] | None = None,
) -> LintReport:
    """Lint every workflow with a trace starting in [``since_ns``, ``until_ns``).

    Streams one workflow at a time (see ``tracebraid.analysis.lint.stream``);
    ``progress`` is called after each. Raises ``StoreError`` if the store cannot be read.
    """
    tally = LintTally()
    for workflow in iter_stored_workflows(
        store, since_ns=since_ns, until_ns=until_ns, max_traces=max_traces
    ):
        lint_stored_workflow(workflow, conventions, rules, tally)
        if progress is not None:
            progress(tally)
    return tally.report()
