"""Cost of one publish -> consume hop: tracebraid against bare OpenTelemetry, side by side.

Every hop uses the same TracerProvider and BatchSpanProcessor (with an exporter that
drops everything, so only the instrumentation is measured). The hops:

- bare: what bare OpenTelemetry needs for a hop, written the idiomatic way (the way
  OpenTelemetry's own messaging instrumentations do it): a PRODUCER span made current
  with the messaging attributes, W3C TraceContext inject, W3C extract, a CONSUMER span
  made current as the child of the extracted context. Nothing else.
- bare, same data: the bare hop also recording what tracebraid records (event ID,
  correlation ID, event name, step, attempt, outcome, the link to the creation
  context), so the difference to tracebraid is tracebraid's own machinery.
- tracebraid: ``publishing`` + ``headers()`` + ``extract`` + ``consuming`` with
  everything on (event ID, correlation ID in baggage and its own header, causation,
  event name, start markers deferred as configured by default).
- stock instrumentation: the hop as OpenTelemetry's messaging instrumentations write it
  (aio-pika's): a PRODUCER span, the global propagator's inject (W3C trace context and
  baggage), extract, the extracted context attached, a CONSUMER span in it; inside a
  workflow whose correlation ID is in baggage.
- stock + tracebraid.instrument(): the same hop, on a provider with
  ``tracebraid.SpanProcessor`` and with ``tracebraid.propagator`` after the W3C
  propagators: what adopting tracebraid without rewriting costs per hop.

Measurement under load: rounds interleave the hops (the order rotates every round) so
machine noise hits all alike; each round times every hop both in wall-clock time and in
process CPU time (which a busy machine's other processes do not inflate, and which
includes the span processor's export thread). The ratio is the median of the per-round
ratios (paired), with its interquartile range; the goal is judged on both clocks.

Goals: tracebraid <= 1.25x bare (issue 2); stock + tracebraid.instrument() <= 1.15x
stock instrumentation alone (issue 16).

``--pieces`` adds the two halves of ``instrument()`` as hops of their own (the propagator
alone, on the stock provider; the span processor alone, with the W3C propagators), so one
run says which half costs what.

    .venv/bin/python bench/hop.py [--rounds 80] [--hops 300] [--no-markers] [--pieces]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence

from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tracebraid.processor import SpanProcessor
from tracebraid.propagator import TracebraidPropagator
from tracebraid.sdk import configure, consuming, extract, publishing

GOAL = 1.25
ADOPT_GOAL = 1.15
BARE = "bare OpenTelemetry hop"
SAME = "bare hop, same data"
OURS = "tracebraid hop"
STOCK = "stock instrumentation hop"
ADOPTED = "stock + instrument() hop"
PROPAGATOR_ONLY = "stock + propagator only"
PROCESSOR_ONLY = "stock + processor only"


class _Discard(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def _bare_hop(
    tracer: trace.Tracer, propagator: TraceContextTextMapPropagator, *, same_data: bool
) -> Callable[[], None]:
    """The hand-written hop. ``same_data`` records what tracebraid records (event ID,
    correlation, event name, step, attempt, outcome, and the link) so the difference to
    tracebraid is tracebraid's own machinery, not the data."""
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


def _stock_hop(tracer: trace.Tracer, propagator: TextMapPropagator) -> Callable[[], None]:
    """A hop as the stock messaging instrumentations write it (aio-pika's decorators)."""
    producer_attributes = {
        "messaging.system": "rabbitmq",
        "messaging.destination": "orders,",
        "messaging.operation": "publish",
    }
    consumer_attributes = {
        "messaging.system": "rabbitmq",
        "messaging.destination": "orders",
        "messaging.operation": "receive",
    }

    def hop() -> None:
        headers: dict[str, str] = {}
        with tracer.start_as_current_span(
            "orders, send", kind=SpanKind.PRODUCER, attributes=producer_attributes
        ):
            propagator.inject(headers)
        token = otel_context.attach(propagator.extract(headers))
        try:
            with tracer.start_as_current_span(
                "orders receive", kind=SpanKind.CONSUMER, attributes=consumer_attributes
            ):
                pass
        finally:
            otel_context.detach(token)

    return hop


def _tracebraid_hop() -> None:
    with publishing("order.placed", destination="orders") as pub:
        headers = pub.headers()
    with consuming(
        extract(headers), step="reserve-inventory", consumer="inventory", destination="orders"
    ):
        pass


def _time(hop: Callable[[], None], hops: int) -> tuple[float, float]:
    """(wall, CPU) microseconds per hop over ``hops`` hops."""
    wall, cpu = time.perf_counter_ns(), time.process_time_ns()
    for _ in range(hops):
        hop()
    cpu, wall = time.process_time_ns() - cpu, time.perf_counter_ns() - wall
    return wall / hops / 1000.0, cpu / hops / 1000.0


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    q1, median, q3 = statistics.quantiles(values, n=4)
    return q1, median, q3


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=80)
    parser.add_argument("--hops", type=int, default=300)
    parser.add_argument("--no-markers", action="store_true", help="disable start markers")
    parser.add_argument(
        "--pieces", action="store_true", help="also time the propagator and processor alone"
    )
    args = parser.parse_args()

    provider = TracerProvider()
    processor = BatchSpanProcessor(_Discard(), max_queue_size=65536)
    provider.add_span_processor(processor)
    configure(tracer_provider=provider, start_markers=not args.no_markers)
    tracer = provider.get_tracer("bench")
    propagator = TraceContextTextMapPropagator()
    # The stock path: the default global propagators, then tracebraid's added after them,
    # on a provider of its own that has tracebraid's span processor.
    w3c = [TraceContextTextMapPropagator(), W3CBaggagePropagator()]
    adopted_provider = TracerProvider()
    adopted_provider.add_span_processor(BatchSpanProcessor(_Discard(), max_queue_size=65536))
    adopted_provider.add_span_processor(SpanProcessor(adopted_provider))
    hops: dict[str, Callable[[], None]] = {
        BARE: _bare_hop(tracer, propagator, same_data=False),
        SAME: _bare_hop(tracer, propagator, same_data=True),
        OURS: _tracebraid_hop,
        STOCK: _stock_hop(tracer, CompositePropagator(w3c)),
        ADOPTED: _stock_hop(
            adopted_provider.get_tracer("bench"),
            CompositePropagator([*w3c, TracebraidPropagator()]),
        ),
    }
    providers = [provider, adopted_provider]
    if args.pieces:
        processor_only = TracerProvider()
        providers.append(processor_only)
        processor_only.add_span_processor(BatchSpanProcessor(_Discard(), max_queue_size=65536))
        processor_only.add_span_processor(SpanProcessor(processor_only))
        hops[PROPAGATOR_ONLY] = _stock_hop(
            tracer, CompositePropagator([*w3c, TracebraidPropagator()])
        )
        hops[PROCESSOR_ONLY] = _stock_hop(
            processor_only.get_tracer("bench"), CompositePropagator(w3c)
        )
    # Every hop runs inside one workflow: its correlation ID is in baggage.
    workflow = otel_context.attach(baggage.set_baggage("correlation_id", "order_441"))
    for hop in hops.values():  # warm caches, the interpreter's specialisations, the threads
        _time(hop, args.hops)
    wall: dict[str, list[float]] = {name: [] for name in hops}
    cpu: dict[str, list[float]] = {name: [] for name in hops}
    names = list(hops)
    for round_ in range(args.rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            w, c = _time(hops[name], args.hops)
            wall[name].append(w)
            cpu[name].append(c)
    otel_context.detach(workflow)
    for each in providers:
        each.shutdown()

    def paired(clock: dict[str, list[float]], name: str, baseline: str) -> list[float]:
        # Each round times every hop back to back, so a per-round ratio cancels the
        # machine's drift; its median is the figure least moved by noise.
        return [ours / base for ours, base in zip(clock[name], clock[baseline], strict=True)]

    markers = "off" if args.no_markers else "on (deferred, default 100 ms)"
    print(f"{args.rounds} rounds x {args.hops} hops, interleaved; start markers {markers}")
    print(f"{'us per hop':24s}  {'wall median':>11s}  {'wall best':>9s}  {'CPU median':>10s}")
    for name in hops:
        print(
            f"{name:24s}  {statistics.median(wall[name]):11.2f}  {min(wall[name]):9.2f}"
            f"  {statistics.median(cpu[name]):10.2f}"
        )
    verdicts = []
    for label, baseline in (("bare", BARE), ("same data", SAME)):
        for clock_name, clock in (("wall", wall), ("CPU", cpu)):
            q1, median, q3 = _quartiles(paired(clock, OURS, baseline))
            line = (
                f"tracebraid / {label:9s} ({clock_name:4s}): {median:5.2f}x paired median"
                f"  (IQR {q1:.2f}-{q3:.2f})"
            )
            if baseline == BARE:
                verdicts.append(median <= GOAL)
                line += f"  goal <= {GOAL}x: {'met' if median <= GOAL else 'NOT met'}"
            print(line)
    failed = [clock for clock, ok in zip(("wall", "CPU"), verdicts, strict=True) if not ok]
    print("goal met on both clocks" if not failed else f"goal NOT met on {' and '.join(failed)}")
    adopted = []
    for clock_name, clock in (("wall", wall), ("CPU", cpu)):
        q1, median, q3 = _quartiles(paired(clock, ADOPTED, STOCK))
        adopted.append(median <= ADOPT_GOAL)
        print(
            f"stock + instrument() / stock ({clock_name:4s}): {median:5.2f}x paired median"
            f"  (IQR {q1:.2f}-{q3:.2f})  goal <= {ADOPT_GOAL}x:"
            f" {'met' if median <= ADOPT_GOAL else 'NOT met'}"
        )
    for piece in (PROPAGATOR_ONLY, PROCESSOR_ONLY):
        if piece in hops:
            for clock_name, clock in (("wall", wall), ("CPU", cpu)):
                q1, median, q3 = _quartiles(paired(clock, piece, STOCK))
                print(
                    f"{piece} / stock ({clock_name:4s}): {median:5.2f}x paired median"
                    f"  (IQR {q1:.2f}-{q3:.2f})"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
