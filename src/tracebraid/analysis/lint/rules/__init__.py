"""The lint rules: small pure callables, composed in a list (structlog's processors).

A rule takes the analysis of one workflow and the conventions and yields findings::

    Rule = Callable[[WorkflowAnalysis, Conventions], Iterable[Finding]]

``RULES`` runs them all, in rule-ID order; pass your own list to ``lint`` to add a
rule or leave one out. Severity overrides, disabled rules and allowlists are applied
after the rules run (``tracebraid.analysis.lint.run``), so a rule never reads them.

Example::

    >>> from tracebraid.analysis import analyze
    >>> from tracebraid.analysis.lint.conventions import DEFAULT_CONVENTIONS
    >>> from tracebraid.testing.workflows import order_flow
    >>> analysis = analyze(order_flow().spans)
    >>> [f for rule in RULES for f in rule(analysis, DEFAULT_CONVENTIONS)]
    []
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeAlias

from tracebraid.analysis.lint.conventions import Conventions
from tracebraid.analysis.lint.findings import Finding
from tracebraid.analysis.lint.rules.causality import broken_causality, orphan_consumers
from tracebraid.analysis.lint.rules.correlation import lost_correlation
from tracebraid.analysis.lint.rules.fields import required_fields
from tracebraid.analysis.lint.rules.identity import (
    correlation_is_trace_id,
    event_id_is_correlation_id,
    event_id_is_trace_id,
    event_id_reused,
)
from tracebraid.analysis.lint.rules.naming import is_technical, technical_span_names
from tracebraid.analysis.lint.rules.retries import hidden_retries, missing_attempts
from tracebraid.analysis.lint.rules.sync import is_broker_path, sync_only_messaging
from tracebraid.analysis.workflow import WorkflowAnalysis

__all__ = [
    "RULES",
    "Rule",
    "broken_causality",
    "correlation_is_trace_id",
    "event_id_is_correlation_id",
    "event_id_is_trace_id",
    "event_id_reused",
    "hidden_retries",
    "is_broker_path",
    "is_technical",
    "lost_correlation",
    "missing_attempts",
    "orphan_consumers",
    "required_fields",
    "sync_only_messaging",
    "technical_span_names",
]

Rule: TypeAlias = Callable[[WorkflowAnalysis, Conventions], Iterable[Finding]]
"""One lint rule: the analysis of a workflow and the conventions in, findings out."""

RULES: tuple[Rule, ...] = (
    broken_causality,  # TB101
    orphan_consumers,  # TB102
    lost_correlation,  # TB201
    event_id_is_trace_id,  # TB301
    event_id_is_correlation_id,  # TB302
    event_id_reused,  # TB303
    correlation_is_trace_id,  # TB304
    required_fields,  # TB401
    technical_span_names,  # TB501
    hidden_retries,  # TB601
    missing_attempts,  # TB602
    sync_only_messaging,  # TB701
)
"""Every built-in rule, in rule-ID order."""
