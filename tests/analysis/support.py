"""Lookups the analysis tests share: find branches and spans by business name."""

from __future__ import annotations

import itertools

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


def assert_path_partitions_its_time(analysis: WorkflowAnalysis) -> None:
    """Segments in order, non-overlapping, adding up to a path no longer than the workflow."""
    path = analysis.critical_path
    segments = path.segments
    assert path.duration_ns == path.end_ns - path.start_ns
    assert sum(s.duration_ns for s in segments) == path.duration_ns
    assert path.duration_ns <= path.workflow_duration_ns == analysis.duration_ns
    assert all(s.duration_ns == s.end_ns - s.start_ns >= 0 for s in segments)
    assert all(a.end_ns <= b.start_ns for a, b in itertools.pairwise(segments))
    if segments:
        assert (segments[0].start_ns, segments[-1].end_ns) == (path.start_ns, path.end_ns)
