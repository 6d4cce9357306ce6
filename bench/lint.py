"""Benchmark: ``lint_store`` over 1,000,000 stored spans, streaming one workflow at a time.

Order workflows of 20 to 2,000 spans each (``tracebraid.testing.workflows.synthetic``:
fan-out, retries with back-off, follow-up events, 2% of hand-offs dropping
trace context, a few in flight) go into a fresh SQLite store until it holds the
wanted number of spans. Then each store is linted in a fresh process, so its peak
resident memory (``VmHWM``, else ``ru_maxrss``) is the lint's own.

Goal (issue 4): at most 60 s for 1,000,000 spans, with memory bounded: the peak for
1,000,000 spans stays close to the peak for a quarter of that (no store loaded). The
lint runs in one process, then with worker processes (``lint_store_url``), side by
side; the main process's CPU time is printed beside the wall time, as other load on
the machine stretches the latter.

Run: ``.venv/bin/python bench/lint.py [--sizes 250000 1000000] [--workers 1 2] [--dir DIR]``
(``--dir`` keeps the stores for another run).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tracebraid.analysis.lint import lint_store, lint_store_url
from tracebraid.model import Span
from tracebraid.store import open_store
from tracebraid.testing.workflows import DEFAULT_START_NS, synthetic

GOAL_S = 60.0
SIZES = (250_000, 1_000_000)
WORKFLOW_SIZES = (20, 50, 100, 200, 500, 2_000)


def workflow(number: int, size: int) -> list[Span]:
    """One order workflow of about ``size`` spans with its own IDs and start time."""
    flow = synthetic(
        size,
        seed=number,
        in_flight_rate=0.002,
        first_event=number * 100_000,
        start_ns=DEFAULT_START_NS + number * 10_000_000_000,
    )
    return list(flow.spans)


def generate(path: Path, spans: int) -> tuple[int, int, float]:
    """Fill a new store at ``path``; (spans, workflows, seconds)."""
    store = open_store(f"sqlite:///{path}")
    rng = random.Random(spans)
    written = count = 0
    started = time.perf_counter()
    batch: list[Span] = []
    while written < spans:
        batch += workflow(count, rng.choice(WORKFLOW_SIZES))
        count += 1
        if len(batch) >= 20_000:
            written += store.write(batch).inserted
            batch = []
    if batch:
        written += store.write(batch).inserted
    store.close()
    # Reopen once so the write-ahead log is checkpointed before the measured run.
    open_store(f"sqlite:///{path}").close()
    return written, count, time.perf_counter() - started


def _peak_kib() -> int:
    """This process's peak resident memory. ``VmHWM`` where Linux has it: ``ru_maxrss``
    survives ``execve``, so a child would report its parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def lint_only(path: str, workers: int) -> None:
    """The measured part, in its own process: lint the store, print figures as JSON."""
    started, cpu = time.perf_counter(), time.process_time()
    if workers > 1:
        report = lint_store_url(f"sqlite:///{path}", workers=workers)
    else:
        store = open_store(f"sqlite:///{path}")
        report = lint_store(store)
        store.close()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu,
                "peak_mib": _peak_kib() / 1024,
                "worker_peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                "workflows": report.workflows,
                "traces": report.traces,
                "spans": report.spans,
                "findings": len(report.findings),
                "occurrences": sum(f.count for f in report.findings),
                "rules": sorted({f.rule for f in report.findings}),
            }
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--dir", help="keep the stores here (reused when present)")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="process counts to compare"
    )
    parser.add_argument("--lint-only", metavar="DB", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.lint_only:
        lint_only(options.lint_only, options.workers[0])
        return 0
    scratch = tempfile.TemporaryDirectory(prefix="tracebraid-bench-lint-")
    where = Path(options.dir or scratch.name)
    where.mkdir(parents=True, exist_ok=True)
    results: dict[tuple[int, int], dict[str, float]] = {}
    for size in options.sizes:
        path = where / f"lint-{size}.db"
        if not path.exists():
            written, workflows, seconds = generate(path, size)
            print(f"generated {written:,} spans in {workflows:,} workflows in {seconds:.1f} s")
        for workers in options.workers:
            run = subprocess.run(
                [sys.executable, __file__, "--lint-only", str(path), "--workers", str(workers)],
                check=True,
                capture_output=True,
                text=True,
            )
            figures = json.loads(run.stdout.strip().splitlines()[-1])
            results[size, workers] = figures
            print(
                f"{figures['spans']:>9,} spans  {figures['workflows']:>5,} workflows  "
                f"{figures['traces']:>6,} traces  {workers} process(es): lint "
                f"{figures['seconds']:6.1f} s ({figures['spans'] / figures['seconds']:,.0f} "
                f"spans/s, main CPU {figures['cpu_seconds']:5.1f} s)  peak RSS "
                f"{figures['peak_mib']:4.0f} MiB"
                + (f", workers {figures['worker_peak_mib']:.0f} MiB" if workers > 1 else "")
                + f"  {figures['findings']} findings "
                f"({figures['occurrences']:,} occurrences: {', '.join(figures['rules'])})"
            )
    largest = max(options.sizes)
    best = min(results[largest, w]["seconds"] for w in options.workers)
    ok = best <= GOAL_S
    print(f"goal: {largest:,} spans in <= {GOAL_S:.0f} s: {best:.1f} s  {'ok' if ok else 'MISSED'}")
    if len(options.workers) > 1:
        one, many = min(options.workers), max(options.workers)
        ratio = results[largest, one]["seconds"] / results[largest, many]["seconds"]
        print(f"{many} processes vs {one}: {ratio:.2f}x faster at {largest:,} spans")
    if len(options.sizes) > 1:
        smallest, one = min(options.sizes), min(options.workers)
        ratio = results[largest, one]["peak_mib"] / results[smallest, one]["peak_mib"]
        print(
            f"memory ({one} process): peak RSS at {largest:,} spans is {ratio:.2f}x the peak "
            f"at {smallest:,} ({largest / smallest:.0f}x the spans)"
        )
    scratch.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
