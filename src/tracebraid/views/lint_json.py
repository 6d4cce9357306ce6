"""``tracebraid.lint/v1``: a lint report as JSON, for ``lint --json`` and ``GET /api/lint``.

Kept apart from the ``lint`` command, so the API builds the same document without
loading the command (and the span-file readers it brings).

Example::

    >>> from tracebraid.analysis.lint import DEFAULT_CONVENTIONS, lint
    >>> from tracebraid.testing.workflows import islands
    >>> report = lint(islands(1).spans, DEFAULT_CONVENTIONS)
    >>> document = lint_document(report, source="example", conventions=DEFAULT_CONVENTIONS,
    ...                          fail_on="never", exit_code=0)
    >>> document["schema"], document["counts"]["error"] > 0
    ('tracebraid.lint/v1', True)
"""

from __future__ import annotations

from typing import Any

from tracebraid.analysis.lint import Conventions, LintReport, Severity
from tracebraid.views.serialize import span_ref

__all__ = ["LINT_SCHEMA", "lint_document"]

LINT_SCHEMA = "tracebraid.lint/v1"


def lint_document(
    report: LintReport, *, source: str, conventions: Conventions, fail_on: str, exit_code: int
) -> dict[str, Any]:
    """The ``--json`` document (schema ``tracebraid.lint/v1``)."""
    return {
        "schema": LINT_SCHEMA,
        "source": source,
        "conventions": conventions.source,
        "fail_on": fail_on,
        "exit_code": exit_code,
        "workflows": report.workflows,
        "traces": report.traces,
        "spans": report.spans,
        "suppressed": report.suppressed,
        "truncated": report.truncated,
        "counts": {s.value: report.count(s) for s in Severity},
        "findings": [
            {
                "rule": f.rule,
                "name": f.name,
                "severity": f.severity.value,
                "service": f.service,
                "step": f.step,
                "message": f.message,
                "why": f.why,
                "fix": f.fix,
                "count": f.count,
                "key": f.key,
                "services": list(f.services),
                "spans": [span_ref(ref) for ref in f.spans],
                "details": {
                    k: list(v) if isinstance(v, tuple) else v for k, v in f.details.items()
                },
            }
            for f in report.findings
        ],
        "coverage": [
            {
                "service": c.service,
                "sent": c.sent,
                "sent_intact": c.sent_intact,
                "received": c.received,
                "received_intact": c.received_intact,
                "ratio": c.ratio,
            }
            for c in report.coverage
        ],
    }
