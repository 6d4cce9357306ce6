"""Benchmark: ``load_workflow`` by rounds of batch look-ups against one look-up per key.

``load_workflow`` takes the closure of a workflow over traces (correlation IDs, event
IDs, links); what it costs is mostly how often it asks the store. Per workflow shape
this prints, side by side in one run, the closure as ``tracebraid.store.workflow`` runs
it (two store calls a round: ``spans_of_traces`` and ``trace_ids_with``) and the
closure as it was before (``per_key_workflow`` below: one look-up per correlation ID,
per event ID and per span, kept here as the baseline): spans and traces found (both
must agree), store calls, SQL statements (queries on ClickHouse) and the time of one
load (median of ``--repeats``), with other workflows in the same store so indexes are
not trivially small.

Shapes: the seed's order (the UI's everyday case), a 2,000-span synthetic order over
many traces, 50 traces stitched by event ID (with and without correlation IDs: the
latter can only be found hop by hop, one round per hop), and a 1,000-way fan-out.

``--chdb`` runs the same on chDB after ``tracebraid migrate`` (ClickHouse in-process,
where every query costs milliseconds; one timed load each); needs the ``clickhouse``
extra.

Usage: .venv/bin/python bench/workflow_load.py [--repeats 11] [--background 40] [--chdb]
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
from tracebraid.model import CorrelationId, EventId, Span, TraceId, is_valid_trace_id
from tracebraid.store import SpanStore, SqliteStore, WorkflowSpans, fetch_workflow
from tracebraid.store.workflow import WorkflowClosure
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
    ``evt_8821`` in every workflow (``DEFAULT_FIRST_EVENT``), which would join unrelated
    workflows in one store."""
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
    """Count the SQL statements a store runs: ``SqliteStore.query`` (its one read hook)
    or a ClickHouse store's ``backend.rows`` (every query); 0 for other stores."""
    owner: object = store
    name = "query"
    if not isinstance(store, SqliteStore):
        backend = getattr(store, "backend", None)
        if backend is None:
            yield lambda: 0
            return
        owner, name = backend, "rows"
    statements = [0]
    original = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        statements[0] += 1
        return original(*args, **kwargs)

    setattr(owner, name, counted)
    try:
        yield lambda: statements[0]
    finally:
        delattr(owner, name)


def per_key_workflow(store: SpanStore, key: str) -> WorkflowSpans:
    """The closure before batch look-ups: the same decisions, one store call per key."""
    seeds: list[Span] = []
    if is_valid_trace_id(key):
        seeds += store.spans_of_trace(TraceId(key))
    by_correlation = store.spans_of_correlation(CorrelationId(key))
    seeds += by_correlation + store.spans_by_event(EventId(key))
    named = frozenset({CorrelationId(key)}) if by_correlation else frozenset()
    closure = WorkflowClosure(correlation_ids=named)
    to_fetch = closure.to_fetch(span.trace_id for span in seeds)
    while to_fetch:
        fetched: dict[TraceId, list[Span]] = {trace_id: [] for trace_id in to_fetch}
        for span in store.spans_of_traces(to_fetch):
            fetched[span.trace_id].append(span)
        keys = closure.admit(fetched)
        found = set(keys.trace_ids)
        for correlation in sorted(keys.correlation_ids):
            found.update(s.trace_id for s in store.spans_of_correlation(correlation))
        for event in sorted(keys.event_ids):
            found.update(s.trace_id for s in store.spans_by_event(event))
        for trace_id, span_id in sorted(keys.link_targets):
            found.update(s.trace_id for s in store.spans_linking_to(trace_id, span_id))
        to_fetch = closure.to_fetch(found) if keys else []
    spans = sorted(
        (span for spans in closure.members.values() for span in spans),
        key=lambda s: (s.start_ns, s.trace_id, s.span_id),
    )
    return WorkflowSpans(tuple(spans), tuple(sorted(closure.members)), (), closure.truncated)


Load = Callable[[SpanStore, str], WorkflowSpans]


def timed(
    store: SpanStore, load: Load, key: str, repeats: int
) -> tuple[WorkflowSpans, Counter[str], int, float]:
    """What ``load`` found, its store calls and SQL statements, and its median time in ms."""
    times = []
    for _ in range(repeats):
        counting = CountingStore(store)
        with counting_sql(store) as statements:
            started = time.perf_counter()
            found = load(cast(SpanStore, counting), key)
            times.append((time.perf_counter() - started) * 1000)
            sql = statements()
    return found, counting.calls, sql, statistics.median(times)


def measure(store: SpanStore, label: str, spans: list[Span], key: str, repeats: int) -> None:
    old, old_calls, old_sql, old_ms = timed(store, per_key_workflow, key, repeats)
    new, new_calls, new_sql, new_ms = timed(store, fetch_workflow, key, repeats)
    assert new.spans == old.spans, label
    assert len(new.spans) == len(spans), (label, len(new.spans), len(spans))
    print(
        f"  {label:<26} {len(new.spans):>5} spans {len(new.trace_ids):>3} traces | "
        f"per key {sum(old_calls.values()):>5} calls {old_sql:>5} SQL {old_ms:8.1f} ms | "
        f"rounds {sum(new_calls.values()):>3} calls {new_sql:>3} SQL {new_ms:7.1f} ms | "
        f"{old_ms / new_ms:5.1f}x"
    )


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
    parser.add_argument("--repeats", type=int, default=11)
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
