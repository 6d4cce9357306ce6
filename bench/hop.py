"""Cost of one publish -> consume hop: tracebraid against bare OpenTelemetry, side by side.

Both hops use the same TracerProvider and BatchSpanProcessor (with an exporter that
drops everything, so only the instrumentation is measured). The bare hop is what a
careful hand-written instrumentation does: a PRODUCER span with messaging attributes,
W3C inject, W3C extract, a CONSUMER span as its child. The tracebraid hop is
``publishing`` + ``headers()`` + ``extract`` + ``consuming`` with everything on (event
ID, correlation in baggage and header, causation, start marker). Rounds interleave the
two so machine noise hits both alike; the figure is the median per-hop time.

Goal (issue 2): tracebraid <= 1.25x bare.

    .venv/bin/python bench/hop.py [--rounds 40] [--hops 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tracebraid.sdk import configure, consuming, extract, publishing


class _Discard(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def _bare_hop(tracer: trace.Tracer, propagator: TraceContextTextMapPropagator) -> Callable[[], None]:
    producer_attributes = {
        "messaging.system": "tracebraid",
        "messaging.destination.name": "orders",
        "messaging.operation.type": "send",
    }
    consumer_attributes = {
        "messaging.system": "tracebraid",
        "messaging.destination.name": "orders",
        "messaging.operation.type": "process",
        "messaging.consumer.group.name": "inventory",
    }

    def hop() -> None:
        headers: dict[str, str] = {}
        with tracer.start_as_current_span(
            "send orders", kind=SpanKind.PRODUCER, attributes=producer_attributes
        ):
            propagator.inject(headers)
        ctx = propagator.extract(headers)
        with tracer.start_as_current_span(
            "process orders", context=ctx, kind=SpanKind.CONSUMER, attributes=consumer_attributes
        ):
            pass

    return hop


def _tracebraid_hop() -> None:
    with publishing("order.placed", destination="orders") as pub:
        headers = pub.headers()
    with consuming(
        extract(headers), step="reserve-inventory", consumer="inventory", destination="orders"
    ):
        pass


def _time(hop: Callable[[], None], hops: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(hops):
        hop()
    return (time.perf_counter_ns() - start) / hops / 1000.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--hops", type=int, default=2000)
    parser.add_argument("--no-markers", action="store_true", help="disable start markers")
    args = parser.parse_args()

    provider = TracerProvider()
    processor = BatchSpanProcessor(_Discard(), max_queue_size=65536)
    provider.add_span_processor(processor)
    configure(tracer_provider=provider, start_markers=not args.no_markers)
    bare = _bare_hop(provider.get_tracer("bench"), TraceContextTextMapPropagator())

    for hop in (bare, _tracebraid_hop):  # warm caches and the processor's thread
        _time(hop, args.hops)
    bare_us: list[float] = []
    tb_us: list[float] = []
    for round_ in range(args.rounds):
        order = [(bare, bare_us), (_tracebraid_hop, tb_us)]
        for hop, sink in order if round_ % 2 == 0 else reversed(order):
            sink.append(_time(hop, args.hops))
    provider.shutdown()

    bare_median = statistics.median(bare_us)
    tb_median = statistics.median(tb_us)
    ratio = tb_median / bare_median
    print(f"rounds {args.rounds} x {args.hops} hops, start markers {'off' if args.no_markers else 'on'}")
    print(f"bare OpenTelemetry hop : {bare_median:8.2f} us (median per hop)")
    print(f"tracebraid hop         : {tb_median:8.2f} us (median per hop)")
    print(f"ratio                  : {ratio:8.2f}x  (goal <= 1.25x: {'met' if ratio <= 1.25 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
