"""Hidden retries (TB601, TB602): repeated processing the spans do not let anyone count.

A branch (one consumer, one event) that retried after a failure must say which
attempt each span was. TB601 fires when a retry reports no attempt number, or one no
higher than the attempt before it (every attempt says 1: the broker's delivery count
was never passed on). A second *successful* processing is a duplicate, not a retry,
and is left alone. TB602 fires when the reported numbers skip: the first span seen
says attempt 3, or attempt 1 is followed by attempt 3; the failed attempts in between
were never exported.

Example::

    >>> from tracebraid.analysis import analyze
    >>> from tracebraid.analysis.lint.conventions import DEFAULT_CONVENTIONS
    >>> from tracebraid.testing.workflows import order_flow
    >>> [f.step for f in hidden_retries(analyze(order_flow(stock=True).spans),
    ...                                  DEFAULT_CONVENTIONS)]
    ['inventory receive']
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise

from tracebraid.analysis.attempts import Attempt, AttemptKind, Branch
from tracebraid.analysis.lint.catalog import HIDDEN_RETRIES, MISSING_ATTEMPTS
from tracebraid.analysis.lint.conventions import Conventions
from tracebraid.analysis.lint.findings import Finding
from tracebraid.analysis.workflow import WorkflowAnalysis

__all__ = ["hidden_retries", "missing_attempts"]


def _hidden(attempts: tuple[Attempt, ...]) -> list[Attempt]:
    hidden: list[Attempt] = []
    for before, attempt in pairwise(attempts):
        if attempt.kind is not AttemptKind.RETRY:
            continue
        now, then = attempt.reported_number, before.reported_number
        if now is None or then is None or now <= then:
            hidden.append(attempt)
    return hidden


def _reported(attempts: tuple[Attempt, ...]) -> str:
    numbers = [a.reported_number for a in attempts]
    if all(n is None for n in numbers):
        return "none of them reports an attempt number"
    shown = ", ".join("none" if n is None else str(n) for n in numbers)
    return f"their attempt numbers read {shown}"


def hidden_retries(analysis: WorkflowAnalysis, conventions: Conventions) -> Iterator[Finding]:
    """TB601: one finding per (service, consumer) whose retries cannot be told apart."""
    groups: dict[tuple[str, str], list[tuple[Branch, list[Attempt]]]] = {}
    for branch in analysis.branches:
        hidden = _hidden(branch.attempts)
        if hidden:
            groups.setdefault((branch.service, branch.consumer), []).append((branch, hidden))
    for (service, _consumer), items in groups.items():
        branch = items[0][0]
        event = branch.event_name or branch.event_id
        yield Finding.of(
            HIDDEN_RETRIES,
            service=service,
            step=branch.step,
            message=(
                f"{branch.step} processed {event} {len(branch.attempts)} times and "
                f"{_reported(branch.attempts)}"
                + (f"; {len(items)} events like it" if len(items) > 1 else "")
            ),
            spans=(a.span for b, _ in items for a in b.attempts),
            count=len(items),
            details={
                "event_ids": tuple(str(b.event_id) for b, _ in items)[:5],
                "attempts": len(branch.attempts),
            },
        )


def _gaps(attempts: tuple[Attempt, ...]) -> list[tuple[int, int]]:
    """(expected, reported) wherever the reported attempt numbers skip ahead."""
    gaps: list[tuple[int, int]] = []
    expected = 1
    for attempt in attempts:
        reported = attempt.reported_number
        if reported is None:
            continue
        if reported > expected:
            gaps.append((expected, reported))
        expected = max(expected, reported + 1)
    return gaps


def missing_attempts(analysis: WorkflowAnalysis, conventions: Conventions) -> Iterator[Finding]:
    """TB602: one finding per (service, consumer) whose earlier attempts are missing."""
    groups: dict[tuple[str, str], list[tuple[Branch, list[tuple[int, int]]]]] = {}
    for branch in analysis.branches:
        gaps = _gaps(branch.attempts)
        if gaps:
            groups.setdefault((branch.service, branch.consumer), []).append((branch, gaps))
    for (service, _consumer), items in groups.items():
        branch, gaps = items[0]
        expected, reported = gaps[0]
        missing = (
            f"attempt {expected}"
            if reported - expected == 1
            else f"attempts {expected}-{reported - 1}"
        )
        event = branch.event_name or branch.event_id
        yield Finding.of(
            MISSING_ATTEMPTS,
            service=service,
            step=branch.step,
            message=(
                f"{branch.step} reports attempt {reported} for {event} but {missing} "
                "is not among the spans"
                + (f"; {len(items)} events like it" if len(items) > 1 else "")
            ),
            spans=(a.span for b, _ in items for a in b.attempts),
            count=len(items),
            details={"event_ids": tuple(str(b.event_id) for b, _ in items)[:5]},
        )
