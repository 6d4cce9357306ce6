"""Benchmark: ``load_workflow`` on a store, store calls and SQL statements per workflow.

``load_workflow`` takes the closure of a workflow over traces (correlation IDs, event
IDs, links). What it costs is mostly how often it asks the store, so this prints, per
workflow shape: spans and traces found, store method calls, SQL statements (SQLite),
and the time of one load (median of ``--repeats``), with a background of other
workflows in the same file so indexes are not trivially small.

Shapes: the seed's order (the UI's everyday case), a 2,000-span synthetic order over
many traces, 50 traces stitched by event ID (with and without correlation IDs: the
latter can only be found hop by hop, one round per hop), and a 1,000-way fan-out.

``--chdb`` runs the same shapes on chDB after ``tracebraid migrate`` (ClickHouse
in-process, where each query costs milliseconds); needs the ``clickhouse`` extra.

Usage: .venv/bin/python bench/workflow_load.py [--repeats 7] [--background 40] [--chdb]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from tracebraid import semconv
from tracebraid.model import Span
from tracebraid.store import SpanStore, SqliteStore, fetch_workflow
from tracebraid.testing.workflows import (
    fan_out,
    order_flow,
    spread_over_traces,
    synthetic,
)


class CountingStore:
    """A store whose method calls are counted (``calls``), answers unchanged."""

    def __init__(self, store: SpanStore) -> None:
        self._store = store
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return method(*args, **kwargs)

        return counted


_EVENT_KEYS = {
    key
    for canonical in (semconv.MESSAGE_ID, semconv.CAUSATION_ID)
    for key in semconv.ALIASES.get(canonical, (canonical,))
}


def own_events(spans: Sequence[Span], prefix: str) -> list[Span]:
    """``spans`` with event and causation IDs prefixed: the builders count events from
    ``evt_1`` in every workflow, which would join unrelated workflows in one store."""
    return [
        replace(
            span,
            attributes={
                key: f"{prefix}{value}" if key in _EVENT_KEYS else value
                for key, value in span.attributes.items()
            },
        )
        for span in spans
    ]


def shapes() -> dict[str, tuple[list[Span], str]]:
    """Workflow shapes by label, each with the key the UI would load it by."""
    chosen = {
        "order (seed)": order_flow(seed=441),
        "synthetic 2,000 spans": synthetic(2000, seed=2000),
        "50 traces by event": spread_over_traces(50, propagate=False, seed=50),
        "50 traces, no correlation": spread_over_traces(50, propagate=False, stock=True, seed=51),
        "fan-out 1,000": fan_out(1000, seed=1000),
    }
    return {
        label: (own_events(flow.spans, f"w{i}_"), flow.spans[0].trace_id)
        for i, (label, flow) in enumerate(chosen.items())
    }


def background(count: int) -> Iterator[list[Span]]:
    for i in range(count):
        yield own_events(synthetic(500, seed=10_000 + i).spans, f"b{i}_")


@contextmanager
def counting_sql(store: SpanStore) -> Iterator[Callable[[], int]]:
    """Count SQL statements a ``SqliteStore`` runs (its one read hook), 0 for others."""
    hook = next((n for n in ("query", "_query") if hasattr(store, n)), None)
    if not isinstance(store, SqliteStore) or hook is None:
        yield lambda: 0
        return
    statements = [0]
    original = getattr(store, hook)

    def counted(*args: Any, **kwargs: Any) -> Any:
        statements[0] += 1
        return original(*args, **kwargs)

    setattr(store, hook, counted)
    try:
        yield lambda: statements[0]
    finally:
        delattr(store, hook)


def measure(store: SpanStore, label: str, spans: list[Span], key: str, repeats: int) -> None:
    counting = CountingStore(store)
    with counting_sql(store) as statements:
        found = fetch_workflow(cast(SpanStore, counting), key)
        sql = statements()
    assert len(found.spans) == len(spans), (label, len(found.spans), len(spans))
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fetch_workflow(store, key)
        times.append((time.perf_counter() - started) * 1000)
    calls = sum(counting.calls.values())
    detail = ", ".join(f"{name} {n}" for name, n in sorted(counting.calls.items()))
    print(
        f"  {label:<26} {len(found.spans):>5} spans {len(found.trace_ids):>4} traces  "
        f"{calls:>5} calls {sql:>5} SQL  {statistics.median(times):8.1f} ms"
    )
    print(f"  {'':<26} ({detail})")


def run(store: SpanStore, title: str, args: argparse.Namespace) -> None:
    print(title)
    for spans in background(args.background):
        store.write(spans)
    chosen = shapes()
    for spans, _ in chosen.values():
        store.write(spans)
    print(f"  {store.span_count():,} spans stored")
    for label, (spans, key) in chosen.items():
        measure(store, label, spans, key, args.repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--background", type=int, default=40, help="other 500-span workflows")
    parser.add_argument("--chdb", action="store_true", help="also on chDB (migrated)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with SqliteStore(Path(tmp, "spans.db")) as store:
            run(store, "SQLite (file, WAL)", args)
        if args.chdb:
            from tracebraid.store.clickhouse import (
                ChdbBackend,
                TableNames,
                migrate,
                open_clickhouse,
            )

            path = str(Path(tmp, "chdb"))
            keeper = ChdbBackend.open(path)
            keeper.command("CREATE DATABASE IF NOT EXISTS bench")
            migrate(keeper, TableNames("bench"))
            chdb = open_clickhouse(f"chdb://{path}?database=bench")
            try:
                run(chdb, "chDB (migrated)", argparse.Namespace(**{**vars(args), "repeats": 1}))
            finally:
                chdb.close()
                keeper.close()


if __name__ == "__main__":
    main()
