"""Retention in process: workflows held, judged, kept whole or at the ratio, durably."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from retention_fleet import Planned, fleet

from tracebraid.analysis import analyze
from tracebraid.analysis.sampling import interesting
from tracebraid.collector.holding import HoldingFile
from tracebraid.collector.retention import RetainingStore, RetentionPolicy
from tracebraid.errors import ConfigurationError
from tracebraid.model import Span
from tracebraid.sampling import keeps
from tracebraid.store import SqliteStore


def judge(spans: Sequence[Span], now_ns: int) -> tuple[str, ...]:
    return interesting(analyze(spans, now_ns=now_ns))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _retaining(store: SqliteStore, holding: str, clock: Clock) -> RetainingStore:
    policy = RetentionPolicy(ratio=0.1, window_s=5.0, max_window_s=60.0)
    return RetainingStore(store, HoldingFile(holding), policy, judge, clock=clock)


def _feed(retaining: RetainingStore, planned: list[Planned], seed: int = 3) -> None:
    """Every span, shuffled across requests: a workflow's spans arrive in pieces and out
    of order (the span without a correlation ID often before its workflow is known)."""
    spans = [s for p in planned for s in p.spans]
    random.Random(seed).shuffle(spans)
    for start in range(0, len(spans), 97):
        retaining.write(spans[start : start + 97])


def _decide_all(retaining: RetainingStore, clock: Clock) -> None:
    clock.now += 10
    while retaining.decide_due():
        pass


def _stored_whole(store: SqliteStore, planned: Planned) -> int:
    """How many of the workflow's spans are stored (all of them, or none, if whole)."""
    traces = {s.trace_id for s in planned.spans}
    return len(store.spans_of_traces(traces))


def test_trouble_is_kept_whole_and_healthy_workflows_at_the_ratio(tmp_path: Path) -> None:
    store = SqliteStore(":memory:")
    clock = Clock()
    retaining = _retaining(store, str(tmp_path / "hold.db"), clock)
    planned = fleet(600)
    _feed(retaining, planned)
    assert store.span_count() == 0  # all held until their window closes
    assert retaining.retention_stats().held_workflows == 600
    _decide_all(retaining, clock)
    for p in planned:
        expected = len(p.spans) if p.interesting or keeps(p.correlation_id, 0.1) else 0
        assert _stored_whole(store, p) == expected, p
    stats = retaining.retention_stats()
    interesting_count = sum(p.interesting for p in planned)
    healthy = [p for p in planned if not p.interesting]
    assert stats.kept_interesting == interesting_count
    assert stats.kept_sampled == sum(keeps(p.correlation_id, 0.1) for p in healthy)
    assert 0.05 < stats.kept_sampled / len(healthy) < 0.15
    assert stats.held_workflows == stats.held_spans == 0
    assert set(stats.reasons) == {"retry", "failure", "dead_letter", "duplicate", "pending"}
    retaining.stop()


def test_late_spans_follow_the_decision(tmp_path: Path) -> None:
    store = SqliteStore(":memory:")
    clock = Clock()
    retaining = _retaining(store, str(tmp_path / "hold.db"), clock)
    planned = fleet(60)
    kept = next(p for p in planned if p.interesting)
    dropped = next(p for p in planned if not p.interesting and not keeps(p.correlation_id, 0.1))
    for p in (kept, dropped):
        retaining.write(p.spans)
    _decide_all(retaining, clock)
    # An exporter's retry after the decision: the spans follow their workflow's fate.
    retaining.write([kept.spans[0], dropped.spans[0]])
    assert _stored_whole(store, kept) == len(kept.spans)
    assert _stored_whole(store, dropped) == 0
    stats = retaining.retention_stats()
    assert (stats.late_spans_kept, stats.late_spans_dropped) == (1, 1)
    retaining.stop()


def test_held_spans_survive_a_restart_and_are_decided_after_it(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "spans.db"))
    clock = Clock()
    holding = str(tmp_path / "hold.db")
    planned = fleet(200)
    first = _retaining(store, holding, clock)
    _feed(first, planned)
    first.stop()  # as a crash would leave it: nothing decided, everything held
    second = _retaining(store, holding, clock)
    assert second.retention_stats().held_workflows == 200
    _decide_all(second, clock)
    for p in planned:
        expected = len(p.spans) if p.interesting or keeps(p.correlation_id, 0.1) else 0
        assert _stored_whole(store, p) == expected
    second.stop()
    store.close()


def test_the_decider_thread_decides_on_its_own(tmp_path: Path) -> None:
    store = SqliteStore(":memory:")
    policy = RetentionPolicy(ratio=1.0, window_s=0.2, max_window_s=1.0)
    retaining = RetainingStore(store, HoldingFile(str(tmp_path / "h.db")), policy, judge)
    planned = fleet(20)
    _feed(retaining, planned)
    deadline = time.monotonic() + 20
    while retaining.retention_stats().held_workflows and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.span_count() == sum(len(p.spans) for p in planned)
    retaining.stop()


@pytest.mark.parametrize(
    ("ratio", "window", "message"), [(1.5, 30.0, "--retain"), (0.1, 0.0, "window")]
)
def test_a_bad_policy_is_refused_naming_it(ratio: float, window: float, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RetentionPolicy(ratio=ratio, window_s=window)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--retain", "2"], "--retain must be in [0, 1]"),
        (["--retain", "0.1", "--retain-window", "-1"], "retention window must be positive"),
    ],
)
def test_serve_refuses_a_bad_retention_option_naming_it(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from tracebraid.views.cli import main

    store = f"sqlite:///{tmp_path / 's.db'}"
    assert main(["serve", "--port", "0", "--store", store, "--no-ui", *argv]) == 2
    assert message in capsys.readouterr().err
