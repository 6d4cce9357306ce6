"""Benchmark: SQLite and chDB side by side, so the README can say when to switch.

For each size (default 1M spans; ``--sizes 1000000 10000000`` for both), the same
synthetic order workflows go into a fresh SQLite store and a fresh chDB store
(migrated: the exporter's tables plus tracebraid's identity table), in batches as
the collector writes them. Then, per store:

* ingest: spans stored per second, de-duplication check included;
* trace fetch: ``spans_of_trace`` for random traces, p50 and p99;
* correlation fetch: ``spans_of_correlation`` for random workflows, p50 and p99;
* fleet aggregate: ``retry_counts`` over every span (median of 3);
* disk: bytes on disk after ingest.

Run: ``.venv/bin/python bench/stores.py [--sizes N ...] [--batch 2000] [--lookups 200]``.
chDB needs the ``clickhouse`` extra; the directory is a temporary one.
"""

from __future__ import annotations

import argparse
import gc
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tracebraid.model import CorrelationId, Span, SpanId, SpanKind, StatusCode, TraceId
from tracebraid.store.aggregates import FleetAggregates
from tracebraid.store.aggregates_sqlite import SqliteAggregates
from tracebraid.store.base import SpanStore
from tracebraid.store.clickhouse import ChdbBackend, TableNames, migrate, open_clickhouse
from tracebraid.store.sqlite import SqliteStore

T0 = 1_760_000_000_000_000_000
MS = 1_000_000
SPANS_PER_WORKFLOW = 9
CONSUMERS = ("authorize-payment", "reserve-inventory", "project-order-summary")


def _hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(digits * 4) | 1:0{digits}x}"


def workflow(index: int) -> list[Span]:
    """One order workflow: an HTTP root, a publish, three consumers (one retried), steps."""
    rng = random.Random(index)
    trace = TraceId(_hex(rng, 32))
    start = T0 + index * 20 * MS
    correlation = f"order_{index}"
    event = f"evt_{index}"

    def span(
        parent: str | None,
        name: str,
        kind: SpanKind,
        at: int,
        ms: int,
        service: str,
        status: StatusCode = StatusCode.UNSET,
        **attributes: object,
    ) -> Span:
        return Span(
            trace_id=trace, span_id=SpanId(_hex(rng, 16)),
            parent_span_id=SpanId(parent) if parent else None, name=name, kind=kind,
            start_ns=start + at * MS, end_ns=start + (at + ms) * MS, service=service,
            status=status,
            attributes={"messaging.message.conversation_id": correlation, **attributes},  # type: ignore[dict-item]
        )  # fmt: skip

    root = span(None, "POST /orders", SpanKind.SERVER, 0, 12, "checkout-api")
    message = {"messaging.message.id": event, "messaging.destination.name": "orders"}
    publish = span(root.span_id, "order.placed", SpanKind.PRODUCER, 8, 1, "checkout-api", **message)
    spans = [root, publish]
    for n, consumer in enumerate(CONSUMERS):
        attempts = 2 if n == 1 and index % 4 == 0 else 1
        for attempt in range(1, attempts + 1):
            failed = attempt < attempts
            work = span(
                publish.span_id, consumer, SpanKind.CONSUMER, 10 + n + rng.randrange(20)
                + (attempt - 1) * 300, 30, consumer.split("-")[-1],
                StatusCode.ERROR if failed else StatusCode.OK,
                **{"messaging.message.id": event, "messaging.destination.name": "orders",
                   "messaging.consumer.group.name": consumer, "tracebraid.attempt": attempt},
            )  # fmt: skip
            spans.append(work)
            spans.append(span(work.span_id, "db query", SpanKind.CLIENT,
                              (work.start_ns - start) // MS + 1, 5, work.service))  # fmt: skip
    return spans[:SPANS_PER_WORKFLOW] if len(spans) > SPANS_PER_WORKFLOW else spans


def batches(total: int, size: int) -> Iterator[list[Span]]:
    """``total`` spans (whole workflows) in batches of about ``size``."""
    pending: list[Span] = []
    produced, index = 0, 0
    while produced < total:
        spans = workflow(index)
        index += 1
        pending.extend(spans)
        produced += len(spans)
        if len(pending) >= size:
            yield pending
            pending = []
    if pending:
        yield pending


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def timed(calls: list[Callable[[], object]]) -> list[float]:
    times = []
    for call in calls:
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def disk_bytes(path: Path) -> int:
    if path.is_file():
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure(name: str, store: SpanStore, aggregates: FleetAggregates, total: int,
            batch: int, lookups: int, where: Path) -> dict[str, float]:  # fmt: skip
    gc.collect()
    written = 0
    started = time.perf_counter()
    for spans in batches(total, batch):
        written += store.write(spans).inserted
    ingest_s = time.perf_counter() - started
    workflows = written // SPANS_PER_WORKFLOW + 1
    rng = random.Random(7)
    picks = [rng.randrange(workflows) for _ in range(lookups)]
    trace_ids = [workflow(i)[0].trace_id for i in picks]
    trace_ms = timed([lambda t=t: store.spans_of_trace(t) for t in trace_ids])
    correlation_ms = timed(
        [lambda i=i: store.spans_of_correlation(CorrelationId(f"order_{i}")) for i in picks]
    )
    assert all(store.spans_of_trace(t) for t in trace_ids), f"{name}: a trace was not found"
    aggregate_ms = statistics.median(timed([aggregates.retry_counts for _ in range(3)]))
    return {
        "spans": written,
        "ingest_rate": written / ingest_s,
        "ingest_s": ingest_s,
        "trace_p50": percentile(trace_ms, 0.5),
        "trace_p99": percentile(trace_ms, 0.99),
        "corr_p50": percentile(correlation_ms, 0.5),
        "corr_p99": percentile(correlation_ms, 0.99),
        "retry_counts": aggregate_ms,
        "disk_mb": disk_bytes(where) / 1e6,
    }


ROWS = (
    ("spans stored", "spans", "{:,.0f}"),
    ("ingest, spans/s", "ingest_rate", "{:,.0f}"),
    ("trace fetch p50, ms", "trace_p50", "{:.2f}"),
    ("trace fetch p99, ms", "trace_p99", "{:.2f}"),
    ("correlation fetch p50, ms", "corr_p50", "{:.2f}"),
    ("correlation fetch p99, ms", "corr_p99", "{:.2f}"),
    ("retry_counts (fleet), ms", "retry_counts", "{:,.0f}"),
    ("disk, MB", "disk_mb", "{:,.0f}"),
)


def run(total: int, batch: int, lookups: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="tracebraid-bench-"))
    try:
        sqlite_path = root / "spans.db"
        sqlite = SqliteStore(sqlite_path)
        lite = measure("sqlite", sqlite, SqliteAggregates(sqlite), total, batch, lookups,
                       sqlite_path)  # fmt: skip
        sqlite.close()
        chdb_path = root / "chdb"
        keeper = ChdbBackend.open(str(chdb_path))
        migrate(keeper, TableNames("bench"))
        clickhouse = open_clickhouse(f"chdb://{chdb_path}?database=bench")
        ch = measure("chdb", clickhouse, clickhouse, total, batch, lookups, chdb_path)
        clickhouse.close()
        keeper.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\n{total:,} spans, batches of {batch}, {lookups} look-ups each")
    print(f"| {'':<27} | {'SQLite':>12} | {'chDB':>12} | chDB/SQLite |")
    print(f"|{'-' * 29}|{'-' * 14}|{'-' * 14}|-------------|")
    for label, key, fmt in ROWS:
        ratio = ch[key] / lite[key] if lite[key] else float("nan")
        print(f"| {label:<27} | {fmt.format(lite[key]):>12} | {fmt.format(ch[key]):>12} "
              f"| {ratio:>10.2f}x |")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--batch", type=int, default=2_000, help="spans per write (default 2000)")
    parser.add_argument("--lookups", type=int, default=200, help="fetches timed per kind")
    options = parser.parse_args()
    for total in options.sizes:
        run(total, options.batch, options.lookups)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
