"""Benchmark: full analysis of synthetic workflows of 1,000, 10,000 and 100,000 spans.

Full analysis = ``tracebraid.analysis.analyze``: graph, stitching, attempts, pending
(with a topology learned from history), latency and the critical path.

Goals (issue 3): at most 0.3 s for 10,000 spans, and near-linear growth: the
100,000-span time at most 15x the 10,000-span time. Each size is measured as the
best of a few runs, the sizes taking turns round by round in one process, so a load
spike from other processes hits every size alike instead of skewing the ratio; the
load average is printed beside the figures.

Run: ``.venv/bin/python bench/analysis.py`` (``--profile`` prints a cProfile of the
100,000-span run).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import time
from collections.abc import Sequence

from tracebraid.analysis import Topology, analyze, learn_topology
from tracebraid.model import Span
from tracebraid.testing.workflows import synthetic

SIZES = (1_000, 10_000, 100_000)
GOAL_10K_S = 0.3
GOAL_GROWTH = 15.0
ROUNDS = 4


def _once(spans: Sequence[Span], topology: Topology) -> float:
    gc.collect()
    started = time.perf_counter()
    analyze(spans, topology=topology, now_ns=0)
    return time.perf_counter() - started


def _best_interleaved(
    workflows: dict[int, Sequence[Span]], topology: Topology, rounds: int
) -> dict[int, float]:
    best = dict.fromkeys(workflows, float("inf"))
    for _ in range(rounds):
        for size, spans in workflows.items():
            best[size] = min(best[size], _once(spans, topology))
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", action="store_true", help="cProfile the largest run")
    options = parser.parse_args()
    history = synthetic(2_000, seed=99).spans
    topology = learn_topology(history)
    workflows = {size: synthetic(size, seed=size).spans for size in SIZES}
    load_before = os.getloadavg()[0]
    times = _best_interleaved(workflows, topology, ROUNDS)
    print(f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    for size, spans in workflows.items():
        analysis = analyze(spans, topology=topology, now_ns=0)
        print(
            f"{len(spans):>7} spans  {times[size]:7.3f} s  "
            f"({len(analysis.branches)} branches, {len(analysis.graph.edges)} edges, "
            f"{len(analysis.pending)} pending, {len(analysis.islands)} islands, "
            f"critical path {len(analysis.critical_path.steps)} steps)"
        )
    growth = times[100_000] / times[10_000]
    ok_10k = times[10_000] <= GOAL_10K_S
    ok_growth = growth <= GOAL_GROWTH
    print(f"10k goal  <= {GOAL_10K_S} s: {times[10_000]:.3f} s  {'ok' if ok_10k else 'MISSED'}")
    print(f"growth 100k/10k <= {GOAL_GROWTH}x: {growth:.1f}x  {'ok' if ok_growth else 'MISSED'}")
    if options.profile:
        workflow = synthetic(100_000, seed=100_000)
        profiler = cProfile.Profile()
        profiler.enable()
        analyze(workflow.spans, topology=topology, now_ns=0)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    return 0 if ok_10k and ok_growth else 1


if __name__ == "__main__":
    raise SystemExit(main())
