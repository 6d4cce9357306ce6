"""Lookups the analysis tests share: find branches and spans by business name."""

from __future__ import annotations

from tracebraid.analysis import Branch, WorkflowAnalysis
from tracebraid.model import Span


def branch_by_step(analysis: WorkflowAnalysis, step: str) -> Branch:
    """The one branch whose consumer step is ``step``."""
    (found,) = [b for b in analysis.branches if b.step == step]
    return found


def branch_by_service(analysis: WorkflowAnalysis, service: str) -> Branch:
    """The one branch whose consumer runs in ``service``."""
    (found,) = [b for b in analysis.branches if b.service == service]
    return found


def spans_named(spans: tuple[Span, ...], name: str) -> list[Span]:
    """Spans called ``name``, in start order."""
    return sorted((s for s in spans if s.name == name), key=lambda s: s.start_ns)
