"""The branch counts search shows per trace, from the analysis itself.

``tracebraid.store.search`` lists traces with their retries, failed branches,
duplicates and work in flight; the store cannot run the analysis (it sits below
it), so the views, which join the two, hand it ``analysed_counts``: the same
``analyze`` the workflow page runs, so the list and the page never disagree.

Example::

    >>> from tracebraid.testing.workflows import order_flow
    >>> counts = analysed_counts(order_flow().spans)
    >>> (counts.retries, counts.failed, counts.in_flight)
    (2, 0, 0)
"""

from __future__ import annotations

from collections.abc import Sequence

from tracebraid.analysis import BranchStatus, analyze
from tracebraid.model import Span
from tracebraid.store.search import BranchFacts

__all__ = ["analysed_counts"]

_FAILED = frozenset({BranchStatus.FAILED, BranchStatus.DEAD_LETTERED})


def analysed_counts(spans: Sequence[Span]) -> BranchFacts:
    """The branch counts of one trace's ``spans``, as the analysis answers them."""
    analysis = analyze(spans)
    branches = analysis.branches
    return BranchFacts(
        branches=len(branches),
        retries=sum(b.retries for b in branches),
        failed=sum(b.status in _FAILED for b in branches),
        duplicates=sum(b.duplicates for b in branches),
        in_flight=len(analysis.in_flight),
        consumers=tuple(sorted({b.consumer for b in branches})),
    )
