"""The conventions and propagation lint: the seed's common mistakes, found in spans.

Each rule (``rules``) is a small pure callable over one workflow's analysis and the
project's conventions (``conventions``: the seed's YAML file), yielding ``Finding``
records with a stable rule ID (``catalog``), the service and step to fix, why it
matters and how to fix it. ``lint`` runs them over spans; ``lint_store`` over a whole
store, one workflow at a time; ``coverage`` says, per service, how many deliveries
kept their trace context.

Example::

    >>> from tracebraid.analysis.lint import lint
    >>> from tracebraid.testing.workflows import spread_over_traces
    >>> report = lint(spread_over_traces(4, propagate=False).spans)
    >>> [(f.rule, f.severity.value, f.step) for f in report.findings]
    [('TB101', 'error', 'POST /orders'), ('TB101', 'error', 'hop-1'), ('TB101', 'error', 'hop-2')]
"""

from __future__ import annotations

from tracebraid.analysis.lint.catalog import CATALOG, RULES_BY_ID
from tracebraid.analysis.lint.conventions import (
    DEFAULT_CONVENTIONS,
    SEED_REQUIRED_FIELDS,
    Allow,
    Conventions,
    IdentityField,
    NamingStyle,
    ServiceConventions,
    ServiceOverride,
    load_conventions,
    parse_conventions,
)
from tracebraid.analysis.lint.coverage import CoverageTally, ServiceCoverage, coverage
from tracebraid.analysis.lint.findings import EXAMPLE_SPANS, Finding, RuleSpec, Severity
from tracebraid.analysis.lint.parallel import lint_store_url
from tracebraid.analysis.lint.rules import RULES, Rule
from tracebraid.analysis.lint.run import (
    LintReport,
    LintTally,
    lint,
    lint_store,
    lint_stored_workflow,
    run_rules,
)
from tracebraid.analysis.lint.stream import StoredWorkflow, iter_stored_workflows

__all__ = [
    "CATALOG",
    "DEFAULT_CONVENTIONS",
    "EXAMPLE_SPANS",
    "RULES",
    "RULES_BY_ID",
    "SEED_REQUIRED_FIELDS",
    "Allow",
    "Conventions",
    "CoverageTally",
    "Finding",
    "IdentityField",
    "LintReport",
    "LintTally",
    "NamingStyle",
    "Rule",
    "RuleSpec",
    "ServiceConventions",
    "ServiceCoverage",
    "ServiceOverride",
    "Severity",
    "StoredWorkflow",
    "coverage",
    "iter_stored_workflows",
    "lint",
    "lint_store",
    "lint_store_url",
    "lint_stored_workflow",
    "load_conventions",
    "parse_conventions",
    "run_rules",
]
