"""Crash test: 200,000 spans through the real OTLP exporter while serve is SIGKILLed twice.

Afterwards the store must hold every span exactly once: nothing acknowledged is lost
(a 200 is sent only after the commit), and nothing replayed is duplicated (the store is
idempotent on trace and span ID).

Who retries what: the exporter itself retries connection failures and 429/502/503/504
with back-off, but gives up after its timeout and returns FAILURE, and the SDK's batch
processor would then drop the batch. A sender that wants no loss keeps a failed batch
and exports it again until it succeeds, which is what each sender thread here does;
the collector's idempotency is what makes that safe.

``TRACEBRAID_CRASH_SPANS`` scales the run down for a quick local check (default 200000).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from collector_serve import ServeProcess
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags

from tracebraid.model import TraceId
from tracebraid.store import open_store

TOTAL = int(os.environ.get("TRACEBRAID_CRASH_SPANS", "200000"))
BATCH = 512
SPANS_PER_TRACE = 100
SENDERS = 4

pytestmark = pytest.mark.slow


def _batches() -> Iterator[list[ReadableSpan]]:
    resource = Resource.create({"service.name": "crash-test"})
    scope = InstrumentationScope("tracebraid.crash")
    batch: list[ReadableSpan] = []
    for n in range(TOTAL):
        trace_id = n // SPANS_PER_TRACE + 1
        root = trace_id << 20
        context = SpanContext(trace_id, root + n % SPANS_PER_TRACE, False, TraceFlags(1))
        parent = None
        if n % SPANS_PER_TRACE:
            parent = SpanContext(trace_id, root, False, TraceFlags(1))
        start = 1_700_000_000_000_000_000 + n * 1000
        batch.append(
            ReadableSpan(
                name="reserve-inventory",
                context=context,
                parent=parent,
                resource=resource,
                attributes={"messaging.message.id": f"evt_{n}", "tracebraid.attempt": 1},
                events=(Event("tracebraid.started", {"n": n}, start),),
                links=(Link(SpanContext(trace_id + 1, 7, False), {"k": "v"}),),
                kind=SpanKind.CONSUMER,
                start_time=start,
                end_time=start + 500,
                instrumentation_scope=scope,
            )
        )
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def test_no_span_lost_or_duplicated_across_two_sigkills(
    serve: Callable[..., ServeProcess], caplog: pytest.LogCaptureFixture
) -> None:
    # The exporter logs each retry; thousands of warnings would only slow the run down.
    caplog.set_level(logging.CRITICAL, logger="opentelemetry")
    process = serve()
    work: queue.Queue[list[ReadableSpan] | None] = queue.Queue(maxsize=SENDERS * 4)
    acked = [0]
    in_flight = [0]
    failed_exports = [0]
    lock = threading.Lock()

    def sender() -> None:
        exporter = OTLPSpanExporter(endpoint=f"{process.url}/v1/traces", timeout=30)
        while (batch := work.get()) is not None:
            with lock:
                in_flight[0] += 1
            while exporter.export(batch) is not SpanExportResult.SUCCESS:
                with lock:
                    failed_exports[0] += 1  # given up by the exporter: export it again
                time.sleep(0.2)
            with lock:
                acked[0] += len(batch)
                in_flight[0] -= 1
        exporter.shutdown()

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()

    def producer() -> None:
        for batch in _batches():
            work.put(batch)
        for _ in threads:
            work.put(None)

    started = time.monotonic()
    threading.Thread(target=producer, daemon=True).start()
    kills = 0
    unacknowledged_at_kill = 0
    for threshold in (int(TOTAL * 0.3), int(TOTAL * 0.65)):
        while acked[0] < threshold:
            time.sleep(0.005)
        unacknowledged_at_kill += in_flight[0]
        process.kill()  # mid-stream: requests are in flight on every sender
        kills += 1
        time.sleep(0.3)
        process.start()
    for thread in threads:
        thread.join(timeout=300)
    assert kills == 2
    assert unacknowledged_at_kill > 0, "no batch was in flight when the server died"
    assert acked[0] == TOTAL
    elapsed = time.monotonic() - started

    process.stop()
    store = open_store(process.store_url)
    try:
        assert store.span_count() == TOTAL, f"lost {TOTAL - store.span_count()} spans"
        traces = sorted(store.iter_trace_ids())
        expected_traces = sorted(
            TraceId(f"{t:032x}") for t in range(1, (TOTAL - 1) // SPANS_PER_TRACE + 2)
        )
        assert traces == expected_traces
        for trace_id in traces[:: max(1, len(traces) // 50)]:  # 50 traces in full
            spans = store.spans_of_trace(trace_id)
            ids = [s.span_id for s in spans]
            assert (
                len(ids)
                == len(set(ids))
                == min(SPANS_PER_TRACE, TOTAL - (int(trace_id, 16) - 1) * SPANS_PER_TRACE)
            )
            assert all(s.links and s.events for s in spans)
    finally:
        store.close()
    print(
        f"{TOTAL} spans, 2 SIGKILLs with {unacknowledged_at_kill} batches in flight, "
        f"{elapsed:.1f} s, {failed_exports[0]} re-exports after the exporter gave up"
    )
