"""Testing helpers for users' own suites: capture spans, assert causality.

Example::

    >>> from tracebraid.testing import capture_spans
    >>> with capture_spans() as captured:
    ...     pass
    >>> captured.spans
    []
"""

from __future__ import annotations

from tracebraid.testing.assertions import (
    assert_no_findings,
    assert_no_islands,
    assert_one_workflow,
)
from tracebraid.testing.capture import SpanCapture, capture_spans

__all__ = [
    "SpanCapture",
    "assert_no_findings",
    "assert_no_islands",
    "assert_one_workflow",
    "capture_spans",
]
