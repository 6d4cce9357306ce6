"""Cost of one publish -> consume hop: tracebraid against bare OpenTelemetry, side by side.

Both hops use the same TracerProvider and BatchSpanProcessor (with an exporter that
drops everything, so only the instrumentation is measured). The bare hop is what a
careful hand-written instrumentation does: a PRODUCER span with messaging attributes,
W3C inject, W3C extract, a CONSUMER span as its child. The tracebraid hop is
``publishing`` + ``headers()`` + ``extract`` + ``consuming`` with everything on (event
ID, correlation in baggage and header, causation, start marker). Rounds interleave the
two so machine noise hits both alike; the figure is the median per-hop time.

Goal (issue 2): tracebraid <= 1.25x bare.

    .venv/bin/python bench/hop.py [--rounds 60] [--hops 500] [--no-markers]
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


def _bare_hop(
    tracer: trace.Tracer, propagator: TraceContextTextMapPropagator, *, same_data: bool
) -> Callable[[], None]:
    """The hand-written hop. ``same_data`` records what tracebraid records (event ID,
    correlation, event name, causation-free root, step, attempt, outcome, and the link)
    so the difference to tracebraid is tracebraid's own machinery, not the data."""
    producer_attributes: dict[str, str | int] = {
        "messaging.system": "tracebraid",
        "messaging.destination.name": "orders",
        "messaging.operation.type": "send",
    }
    consumer_attributes: dict[str, str | int] = {
        "messaging.system": "tracebraid",
        "messaging.destination.name": "orders",
        "messaging.operation.type": "process",
        "messaging.consumer.group.name": "inventory",
    }
    if same_data:
        identity = {
            "messaging.message.id": "evt_" + "0" * 32,
            "messaging.message.conversation_id": "corr_" + "0" * 32,
            "tracebraid.event_name": "order.placed",
        }
        producer_attributes.update(identity)
        consumer_attributes.update(identity)
        consumer_attributes.update(
            {"tracebraid.step": "reserve-inventory", "tracebraid.attempt": 1}
        )

    def hop() -> None:
        headers: dict[str, str] = {}
        with tracer.start_as_current_span(
            "send orders", kind=SpanKind.PRODUCER, attributes=producer_attributes
        ):
            propagator.inject(headers)
        ctx = propagator.extract(headers)
        links = None
        if same_data:
            links = [trace.Link(trace.get_current_span(ctx).get_span_context())]
        with tracer.start_as_current_span(
            "process orders",
            context=ctx,
            kind=SpanKind.CONSUMER,
            attributes=consumer_attributes,
            links=links,
        ) as span:
            if same_data:
                span.set_attribute("tracebraid.outcome", "ok")

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
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--hops", type=int, default=500)
    parser.add_argument("--no-markers", action="store_true", help="disable start markers")
    args = parser.parse_args()

    provider = TracerProvider()
    processor = BatchSpanProcessor(_Discard(), max_queue_size=65536)
    provider.add_span_processor(processor)
    configure(tracer_provider=provider, start_markers=not args.no_markers)
    tracer = provider.get_tracer("bench")
    propagator = TraceContextTextMapPropagator()
    hops: dict[str, Callable[[], None]] = {
        "bare OpenTelemetry hop": _bare_hop(tracer, propagator, same_data=False),
        "bare hop, same data": _bare_hop(tracer, propagator, same_data=True),
        "tracebraid hop": _tracebraid_hop,
    }
    for hop in hops.values():  # warm caches and the processor's thread
        _time(hop, args.hops)
    timings: dict[str, list[float]] = {name: [] for name in hops}
    names = list(hops)
    for round_ in range(args.rounds):
        rotated = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in rotated:
            timings[name].append(_time(hops[name], args.hops))
    provider.shutdown()

    medians = {name: statistics.median(values) for name, values in timings.items()}
    best = {name: min(values) for name, values in timings.items()}

    def paired(name: str, baseline: str) -> float:
        # Each round times every hop back to back, so a per-round ratio cancels the
        # machine's drift; its median is the figure least moved by noise.
        return statistics.median(
            ours / base for ours, base in zip(timings[name], timings[baseline], strict=True)
        )

    markers = "off" if args.no_markers else "on (deferred 100 ms)"
    print(f"{args.rounds} rounds x {args.hops} hops, interleaved; start markers {markers}")
    print(f"{'':24s}  {'median':>8s}  {'best':>8s}   (us per hop)")
    for name in hops:
        print(f"{name:24s}: {medians[name]:8.2f}  {best[name]:8.2f}")
    ratio = paired("tracebraid hop", "bare OpenTelemetry hop")
    verdict = "met" if ratio <= 1.25 else "NOT met"
    print(
        f"ratio tracebraid / bare : {ratio:6.2f}x paired median, "
        f"{best['tracebraid hop'] / best['bare OpenTelemetry hop']:.2f}x best "
        f"(goal <= 1.25x: {verdict})"
    )
    print(
        f"ratio tracebraid / same : {paired('tracebraid hop', 'bare hop, same data'):6.2f}x "
        "paired median (tracebraid's own machinery, same recorded data)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
