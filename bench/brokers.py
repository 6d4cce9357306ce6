"""Messages per second through RabbitMQ, Redis Streams and NATS JetStream, bare and traced.

For each broker (on loopback) the same adapter carries ``--messages`` messages
three times, in one process: bare (``broker.publish`` and a plain handler); with
hand-written bare OpenTelemetry (a PRODUCER span and W3C ``traceparent`` out, a
CONSUMER span child of it in: the least any tracing costs); and through
tracebraid's ``EventBus`` (PRODUCER span, context headers, CONSUMER span with a
start marker, correlation, causation and attempt per message). Spans go to a
``BatchSpanProcessor`` with an exporter that drops everything. A run is timed from
the first publish until the last message was processed; publishes keep
``--window`` messages in flight, the consumer processes up to ``--concurrency`` at
once. A short warm-up per broker is not counted; ``--rounds`` rounds (bare, OpenTelemetry,
tracebraid, interleaved so load from elsewhere hits all three) give medians. Each
destination is new and deleted afterwards.

Goal (issue 5): instrumentation costs at most 15% of throughput.

    .venv/bin/python bench/brokers.py [--messages 5000] [--rounds 3] [--window 64]
                                      [--brokers rabbitmq,redis,nats]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence

from opentelemetry import propagate
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from tracebraid.sdk.broker import Broker, Delivery, EventBus, Received, open_broker

GOAL = 0.15


class _Discard(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


class _Finish:
    """Counts processed messages; ``done`` is set when all arrived."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.seen = 0
        self.done = asyncio.Event()

    def tick(self) -> None:
        self.seen += 1
        if self.seen >= self.expected:
            self.done.set()


async def _publish_all(
    count: int, window: int, publish: Callable[[int], Awaitable[object]]
) -> None:
    slots = asyncio.Semaphore(window)

    async def one(n: int) -> None:
        try:
            await publish(n)
        finally:
            slots.release()

    tasks = []
    for n in range(count):
        await slots.acquire()
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.gather(*tasks)


async def _bare(broker: Broker, count: int, window: int, concurrency: int) -> float:
    destination = f"tb-bench-{uuid.uuid4().hex[:8]}"
    finish = _Finish(count)

    async def handle(delivery: Delivery) -> None:
        finish.tick()

    await broker.subscribe(destination, "bench", handle, concurrency=concurrency)
    body = b'{"order_id":"order_1","total":"84.00"}'
    started = time.perf_counter()

    async def publish(n: int) -> None:
        await broker.publish(destination, body, {}, message_id=f"m{n}")

    await _publish_all(count, window, publish)
    await asyncio.wait_for(finish.done.wait(), timeout=300)
    return time.perf_counter() - started


async def _otel(
    broker: Broker, count: int, window: int, concurrency: int, provider: TracerProvider
) -> float:
    destination = f"tb-bench-{uuid.uuid4().hex[:8]}"
    finish = _Finish(count)
    tracer = provider.get_tracer("bench")
    common = {"messaging.system": broker.system, "messaging.destination.name": destination}

    async def handle(delivery: Delivery) -> None:
        parent = propagate.extract(delivery.headers)
        attributes = {**common, "messaging.operation.type": "process"}
        with tracer.start_as_current_span(
            "bench process", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
        ):
            finish.tick()

    await broker.subscribe(destination, "bench", handle, concurrency=concurrency)
    body = b'{"order_id":"order_1","total":"84.00"}'
    started = time.perf_counter()

    async def publish(n: int) -> None:
        attributes = {**common, "messaging.operation.type": "send"}
        with tracer.start_as_current_span(
            "order.placed publish", kind=SpanKind.PRODUCER, attributes=attributes
        ):
            headers: dict[str, str] = {}
            propagate.inject(headers)
            await broker.publish(destination, body, headers, message_id=f"m{n}")

    await _publish_all(count, window, publish)
    await asyncio.wait_for(finish.done.wait(), timeout=300)
    return time.perf_counter() - started


async def _traced(
    broker: Broker, count: int, window: int, concurrency: int, provider: TracerProvider
) -> float:
    destination = f"tb-bench-{uuid.uuid4().hex[:8]}"
    finish = _Finish(count)
    bus = EventBus(broker, tracer_provider=provider)

    async def handle(received: Received) -> None:
        finish.tick()

    await bus.subscribe(destination, handle, group="bench", concurrency=concurrency)
    body = b'{"order_id":"order_1","total":"84.00"}'
    started = time.perf_counter()

    async def publish(n: int) -> None:
        await bus.publish("order.placed", body, destination=destination)

    await _publish_all(count, window, publish)
    await asyncio.wait_for(finish.done.wait(), timeout=300)
    return time.perf_counter() - started


async def _measure(name: str, args: argparse.Namespace) -> tuple[float, float, float]:
    """Median messages per second of bare, bare-OpenTelemetry and tracebraid runs."""
    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    provider.add_span_processor(BatchSpanProcessor(_Discard(), max_queue_size=65_536))
    n, window, concurrency = args.messages, args.window, args.concurrency
    rates: dict[str, list[float]] = {"bare": [], "otel": [], "tracebraid": []}
    async with open_broker(name, temporary=True) as broker:
        warm = max(100, n // 10)
        await _bare(broker, warm, window, concurrency)
        await _otel(broker, warm, window, concurrency, provider)
        await _traced(broker, warm, window, concurrency, provider)
        for _ in range(args.rounds):  # interleaved, so load from elsewhere hits all three
            rates["bare"].append(n / await _bare(broker, n, window, concurrency))
            rates["otel"].append(n / await _otel(broker, n, window, concurrency, provider))
            rates["tracebraid"].append(n / await _traced(broker, n, window, concurrency, provider))
    provider.shutdown()
    bare, otel, traced = (statistics.median(rates[mode]) for mode in rates)
    return bare, otel, traced


async def _main(args: argparse.Namespace) -> int:
    print(
        f"{args.messages} messages per run, median of {args.rounds} interleaved rounds, "
        f"{args.window} publishes in flight, consumer concurrency {args.concurrency}"
    )
    print(
        f"{'broker':<10}{'bare msg/s':>11}{'otel msg/s':>11}{'overhead':>9}"
        f"{'tracebraid msg/s':>17}{'overhead':>9}  goal <= 15%"
    )
    worst = 0.0
    for name in args.brokers.split(","):
        bare, otel, traced = await _measure(name, args)
        overhead = 1 - traced / bare
        worst = max(worst, overhead)
        verdict = "ok" if overhead <= GOAL else "MISSED"
        print(
            f"{name:<10}{bare:>11,.0f}{otel:>11,.0f}{1 - otel / bare:>9.1%}"
            f"{traced:>17,.0f}{overhead:>9.1%}  {verdict}"
        )
    return 0 if worst <= GOAL else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--window", type=int, default=64, help="publishes in flight")
    parser.add_argument("--concurrency", type=int, default=32, help="consumer concurrency")
    parser.add_argument("--rounds", type=int, default=3, help="runs per mode (median)")
    parser.add_argument("--brokers", default="rabbitmq,redis,nats")
    return asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
