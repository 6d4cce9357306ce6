"""What the lint reports: ``Finding`` records with a stable rule ID, a severity and the fix.

A finding names the service and business step where the fix goes, the spans that show
the problem (a few examples, never thousands), every service involved, why it matters
and what to change. Findings of one rule at one place merge: linting a thousand
workflows with the same broken publish yields one finding with ``count=1000``.

Example::

    >>> from tracebraid.analysis.lint.catalog import RULES_BY_ID
    >>> spec = RULES_BY_ID["TB501"]
    >>> one = Finding.of(spec, service="inventory", step="reserve-inventory",
    ...                  message="consumer span named 'process'", key="process")
    >>> two = one.merged(one)
    >>> (two.rule, two.severity.value, two.count)
    ('TB501', 'warning', 2)
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TypeAlias

from tracebraid.analysis.records import SpanRef
from tracebraid.errors import ConfigurationError

__all__ = [
    "EXAMPLE_SPANS",
    "Detail",
    "Finding",
    "RuleSpec",
    "Severity",
]

EXAMPLE_SPANS = 5
"""How many example spans a finding keeps, however often it happened."""

Detail: TypeAlias = str | int | tuple[str, ...]
"""A value in ``Finding.details``: text, a count, or a list of names."""


class Severity(enum.StrEnum):
    """How bad a finding is; ``--fail-on`` compares against this order."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        """0 for info, 1 for warning, 2 for error."""
        return _RANKS[self]

    def reaches(self, threshold: Severity) -> bool:
        """True when this severity is at or above ``threshold``."""
        return self.rank >= threshold.rank

    @classmethod
    def parse(cls, text: str) -> Severity:
        """The severity named ``text`` (case-insensitive); ``ConfigurationError`` otherwise."""
        try:
            return cls(text.strip().lower())
        except ValueError:
            choices = ", ".join(s.value for s in cls)
            raise ConfigurationError(
                f"unknown severity {text!r}; expected one of {choices}"
            ) from None


_RANKS = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One lint rule's identity and documentation: what the catalog lists and docs show."""

    id: str
    """Stable ID, e.g. ``TB101``: the hundreds group the seed's mistakes."""
    name: str
    """Stable slug, e.g. ``broken-causality``."""
    severity: Severity
    """Default severity; a conventions file may change it per rule and service."""
    title: str
    why: str
    fix: str


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem the lint found, where to fix it, and how.

    ``service`` and ``step`` say where the fix goes (for a publish that drops trace
    context, the publishing service and the step that publishes). ``key`` tells apart
    findings of one rule at one step (a field name, an event name); findings with the
    same ``identity`` merge, adding their ``count``. ``spans`` are examples, at most
    ``EXAMPLE_SPANS``; ``details`` hold the specifics (names seen, a suggestion, counts).
    """

    rule: str
    name: str
    severity: Severity
    service: str
    step: str
    message: str
    why: str
    fix: str
    spans: tuple[SpanRef, ...] = ()
    services: tuple[str, ...] = ()
    key: str = ""
    count: int = 1
    details: Mapping[str, Detail] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        spec: RuleSpec,
        *,
        service: str,
        step: str,
        message: str,
        spans: Iterable[SpanRef] = (),
        services: Iterable[str] = (),
        key: str = "",
        count: int = 1,
        fix: str | None = None,
        details: Mapping[str, Detail] | None = None,
    ) -> Finding:
        """A finding of rule ``spec`` (its default severity, why and fix).

        ``spans`` is read only until ``EXAMPLE_SPANS`` distinct ones are found: pass a
        generator, so a finding over many spans makes references for its examples only.
        """
        distinct: dict[SpanRef, None] = {}
        for ref in spans:
            distinct[ref] = None
            if len(distinct) == EXAMPLE_SPANS:
                break
        examples = tuple(distinct)
        involved = tuple(sorted({service, *services, *(s.service for s in examples)}))
        return cls(
            rule=spec.id,
            name=spec.name,
            severity=spec.severity,
            service=service,
            step=step,
            message=message,
            why=spec.why,
            fix=fix or spec.fix,
            spans=examples,
            services=involved,
            key=key,
            count=count,
            details=dict(details or {}),
        )

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """(rule, service, step, key): findings with one identity are one problem."""
        return (self.rule, self.service, self.step, self.key)

    def merged(self, other: Finding) -> Finding:
        """This finding with ``other`` (same identity) folded in: counts add, examples join."""
        return replace(
            self,
            count=self.count + other.count,
            spans=tuple(dict.fromkeys(self.spans + other.spans))[:EXAMPLE_SPANS],
            services=tuple(sorted({*self.services, *other.services})),
        )
