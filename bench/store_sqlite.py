"""Embedded store benchmark: write throughput and read latency on a realistic span mix.

Prints, from one run:
- raw write rate (spans/s, batches of 512) with synchronous=NORMAL and FULL;
- the same batches replayed (all duplicates), as an exporter's retry would send them;
- how much of the write cost is encoding spans into rows (the Python side);
- trace / correlation / event fetch latency p50 and p99, recent_traces page latency.

The collector's goal is 20,000 spans/s end to end through HTTP, so the raw write rate
should be several times that.

Usage: .venv/bin/python bench/store_sqlite.py [--spans 200000] [--batch 512]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tracebraid.model import (
    CorrelationId,
    EventId,
    Span,
    SpanEvent,
    SpanId,
    SpanKind,
    SpanLink,
    StatusCode,
    TraceId,
)
from tracebraid.store import SqliteStore, load_workflow
from tracebraid.store._rows import encode_batch

SERVICES = ("checkout-api", "payment", "inventory", "summary", "warehouse")
STEPS = ("authorize-payment", "reserve-inventory", "project-order-summary", "send-webhook")


def make_spans(count: int, seed: int = 7) -> list[Span]:
    """Workflows of 20 spans: an HTTP root, producers, consumers with messaging attributes."""
    rng = random.Random(seed)
    resources = [
        {
            "service.name": name,
            "service.version": "1.4.2",
            "telemetry.sdk.language": "python",
            "telemetry.sdk.name": "opentelemetry",
            "telemetry.sdk.version": "1.27.0",
            "host.name": f"node-{i}",
        }
        for i, name in enumerate(SERVICES)
    ]
    spans: list[Span] = []
    start = 1_700_000_000_000_000_000
    workflow = 0
    while len(spans) < count:
        workflow += 1
        trace_id = TraceId(f"{rng.getrandbits(128):032x}")
        correlation = CorrelationId(f"order_{workflow}")
        root = SpanId(f"{rng.getrandbits(64):016x}")
        start += rng.randrange(1_000_000, 5_000_000)
        spans.append(
            Span(
                trace_id,
                root,
                None,
                "POST /orders",
                SpanKind.SERVER,
                start,
                start + 12_000_000,
                SERVICES[0],
                attributes={"http.request.method": "POST", "http.route": "/orders"},
                resource=resources[0],
                scope="opentelemetry.instrumentation.starlette",
            )
        )
        parent = root
        for i in range(19):
            span_id = SpanId(f"{rng.getrandbits(64):016x}")
            event = EventId(f"evt_{workflow}_{i}")
            producer = i % 2 == 0
            s = start + (i + 1) * 1_000_000
            failed = rng.random() < 0.05
            attributes: dict[str, str | int] = {
                "messaging.system": "rabbitmq",
                "messaging.destination.name": "orders",
                "messaging.operation.type": "send" if producer else "process",
                "messaging.message.id": event,
                "messaging.message.conversation_id": correlation,
                "tracebraid.event_name": "order.placed",
            }
            if not producer:
                attributes["messaging.consumer.group.name"] = STEPS[i % len(STEPS)]
                attributes["tracebraid.attempt"] = 1
                attributes["tracebraid.causation_id"] = f"evt_{workflow}_{i - 1}"
            spans.append(
                Span(
                    trace_id,
                    span_id,
                    parent,
                    "orders publish" if producer else STEPS[i % len(STEPS)],
                    SpanKind.PRODUCER if producer else SpanKind.CONSUMER,
                    s,
                    s + rng.randrange(100_000, 50_000_000),
                    SERVICES[1 + i % 4],
                    status=StatusCode.ERROR if failed else StatusCode.UNSET,
                    status_message="TimeoutError" if failed else "",
                    attributes=attributes,
                    events=(SpanEvent("exception", s + 10, {"exception.type": "TimeoutError"}),)
                    if failed
                    else (),
                    links=(SpanLink(trace_id, parent),) if not producer else (),
                    resource=resources[1 + i % 4],
                    scope="tracebraid",
                )
            )
            parent = span_id
    return spans[:count]


def batches(spans: Sequence[Span], size: int) -> list[Sequence[Span]]:
    return [spans[i : i + size] for i in range(0, len(spans), size)]


def write_rate(path: Path, spans: Sequence[Span], size: int, synchronous: str) -> float:
    store = SqliteStore(path, synchronous="FULL" if synchronous == "FULL" else "NORMAL")
    started = time.perf_counter()
    for batch in batches(spans, size):
        store.write(batch)
    elapsed = time.perf_counter() - started
    store.close()
    return len(spans) / elapsed


def latencies(fetch: Callable[[str], object], keys: Sequence[str]) -> tuple[float, float]:
    times = []
    for key in keys:
        started = time.perf_counter()
        fetch(key)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=512)
    args = parser.parse_args()
    spans = make_spans(args.spans)
    print(f"{len(spans):,} spans in batches of {args.batch}, SQLite via the standard library")

    started = time.perf_counter()
    keys: dict[bytes, int] = {}
    for batch in batches(spans, args.batch):
        encode_batch(batch, keys)
    encode = len(spans) / (time.perf_counter() - started)
    print(f"  encode only (Python side)      {encode:>10,.0f} spans/s")

    with tempfile.TemporaryDirectory() as tmp:
        # Same spans, same fresh file size for both modes; best of two runs each,
        # since other work on the machine adds noise to a single run.
        quarter = spans[: len(spans) // 4]
        rates: dict[str, float] = {"NORMAL": 0.0, "FULL": 0.0}
        for run in range(2):
            for mode in rates:
                path = Path(tmp, f"{mode}-{run}.db")
                rates[mode] = max(rates[mode], write_rate(path, quarter, args.batch, mode))
        print(f"  write {len(quarter):,}, synchronous=NORMAL {rates['NORMAL']:>10,.0f} spans/s")
        print(f"  write {len(quarter):,}, synchronous=FULL   {rates['FULL']:>10,.0f} spans/s")
        print(f"  NORMAL / FULL                  {rates['NORMAL'] / rates['FULL']:>10.2f}x")
        normal = write_rate(Path(tmp, "normal.db"), spans, args.batch, "NORMAL")
        print(f"  write {len(spans):,}, synchronous=NORMAL {normal:>10,.0f} spans/s")

        store = SqliteStore(Path(tmp, "normal.db"))
        started = time.perf_counter()
        for batch in batches(spans, args.batch):
            store.write(batch)
        replay = len(spans) / (time.perf_counter() - started)
        print(f"  replay (all duplicates)        {replay:>10,.0f} spans/s")
        print(f"  goal: collector 20,000 spans/s -> raw write / goal {normal / 20_000:.1f}x")

        rng = random.Random(11)
        sample = rng.sample(spans, 1000)
        p50, p99 = latencies(
            lambda k: store.spans_of_trace(TraceId(k)), [s.trace_id for s in sample]
        )
        print(f"  spans_of_trace (20 spans)      p50 {p50:6.3f} ms  p99 {p99:6.3f} ms")
        correlations = [
            str(s.attributes.get("messaging.message.conversation_id", "")) for s in sample
        ]
        p50, p99 = latencies(
            lambda k: store.spans_of_correlation(CorrelationId(k)), [c for c in correlations if c]
        )
        print(f"  spans_of_correlation (19)      p50 {p50:6.3f} ms  p99 {p99:6.3f} ms")
        events = [str(s.attributes.get("messaging.message.id", "")) for s in sample]
        p50, p99 = latencies(lambda k: store.spans_by_event(EventId(k)), [e for e in events if e])
        print(f"  spans_by_event                 p50 {p50:6.3f} ms  p99 {p99:6.3f} ms")
        p50, p99 = latencies(
            lambda k: load_workflow(store, k), [c for c in correlations if c][:200]
        )
        print(f"  load_workflow (order)          p50 {p50:6.3f} ms  p99 {p99:6.3f} ms")
        starts = [str(s.start_ns) for s in sample]
        p50, p99 = latencies(lambda k: store.recent_traces(50, int(k)), starts)
        print(f"  recent_traces page of 50       p50 {p50:6.3f} ms  p99 {p99:6.3f} ms")
        started = time.perf_counter()
        traces = sum(1 for _ in store.iter_trace_ids())
        print(
            f"  iter_trace_ids                 {traces:,} traces in "
            f"{(time.perf_counter() - started) * 1000:.0f} ms"
        )
        size = Path(tmp, "normal.db").stat().st_size / len(spans)
        print(f"  file size                      {size:.0f} bytes/span")
        store.close()


if __name__ == "__main__":
    main()
