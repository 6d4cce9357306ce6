"""Testing helpers for users' own suites: capture spans, assert causality.

Example::

    >>> from tracebraid.testing import capture_spans
    >>> with capture_spans() as captured:
    ...     pass
    >>> captured.spans
    []
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracebraid.testing.assertions import (
    assert_no_findings,
    assert_no_islands,
    assert_one_workflow,
)
from tracebraid.testing.capture import SpanCapture, capture_spans

if TYPE_CHECKING:
    from tracebraid.testing.collector import running_collector

__all__ = [
    "SpanCapture",
    "assert_no_findings",
    "assert_no_islands",
    "assert_one_workflow",
    "capture_spans",
    "running_collector",
]


def __getattr__(name: str) -> Any:
    # Lazy: the pytest plugin imports this package in every session, and a collector
    # brings uvicorn, Starlette and the whole API along.
    if name == "running_collector":
        from tracebraid.testing.collector import running_collector

        return running_collector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
