"""Run the order flow on a given broker into a given span sink, and say what it produced.

The runner gives each service its own ``TracerProvider`` (one ``service.name``
each) exporting into one sink, places the orders, and returns as soon as every
order's branches have settled, with ``award-loyalty-points`` still in flight: its
start marker has been exported (the runner waits for it: the SDK may defer markers),
its span has not. From then on the run exports
nothing more, as if the services had been stopped, so a stalled handler cancelled
when the broker closes never shows up as a finished (failed) attempt.

Example::

    async with InMemoryBroker() as broker:
        run = await run_order_flow(broker, store_exporter, orders=1)
    print(run.correlation_ids)  # ('order_441',)
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

from tracebraid import semconv
from tracebraid.demo.order_flow import (
    SERVICES,
    STALLED_STEP,
    FlowStalledError,
    Mistake,
    OrderFlow,
    PlacedOrder,
    Timings,
)
from tracebraid.errors import ConfigurationError
from tracebraid.model import CorrelationId, TraceId
from tracebraid.sdk.broker.base import Broker

__all__ = ["DemoRun", "run_order_flow"]

_MARKER_POLL_S = 0.005


@dataclass(frozen=True, slots=True)
class DemoRun:
    """What one run produced: the orders placed (each leaves ``STALLED_STEP`` in flight)."""

    orders: tuple[PlacedOrder, ...]

    @property
    def correlation_ids(self) -> tuple[CorrelationId, ...]:
        """One workflow per order: ``order_<n>``."""
        return tuple(order.correlation_id for order in self.orders)

    @property
    def trace_ids(self) -> tuple[TraceId, ...]:
        """The trace each ``POST /orders`` began."""
        return tuple(order.trace_id for order in self.orders)


class _Gate(SpanProcessor):
    """Forwards spans to the sink until closed; never shuts the sink down (its owner does).

    It also notes which start markers went out, as (correlation ID, step): markers may
    be emitted late, from the SDK's marker thread, and the run must not end before the
    stalled branch's marker has reached the sink.
    """

    def __init__(self, inner: SpanProcessor) -> None:
        self._inner = inner
        self._open = True
        self.markers: set[tuple[str, str]] = set()

    def close(self) -> None:
        self._open = False

    def on_start(self, span: SdkSpan, parent_context: Context | None = None) -> None:
        if self._open:
            self._inner.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if not self._open:
            return
        self._inner.on_end(span)
        scope = span.instrumentation_scope
        if scope is not None and scope.name == semconv.START_MARKER_SCOPE:
            attributes = span.attributes or {}
            key = (str(attributes.get(semconv.CORRELATION_ID)), str(attributes.get(semconv.STEP)))
            self.markers.add(key)

    def shutdown(self) -> None:
        self._open = False

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)


async def run_order_flow(
    broker: Broker,
    sink: SpanExporter | SpanProcessor,
    *,
    orders: int = 1,
    time_scale: float = 1.0,
    first_order: int | None = None,
    namespace: str = "",
    mistakes: Sequence[Mistake] = (),
    timeout: float | None = None,
) -> DemoRun:
    """Run ``orders`` orders through the order flow on ``broker`` (already started).

    ``sink`` receives every service's spans (an exporter is wrapped in a
    ``SimpleSpanProcessor``). ``time_scale`` multiplies every delay (tests use
    0.05). Orders are numbered from ``first_order`` (default: random, so runs
    into one store do not share correlation IDs). ``mistakes`` plant the seed's
    common mistakes (``tracebraid demo --with-mistakes``). Raises
    ``FlowStalledError`` if the flow has not settled after ``timeout`` seconds
    (default: ten times the flow's own length, at least 10 s).
    """
    if orders < 1:
        raise ConfigurationError(f"orders must be at least 1, got {orders}")
    timings = Timings().scaled(time_scale)
    gate = _Gate(sink if isinstance(sink, SpanProcessor) else SimpleSpanProcessor(sink))
    providers = {service: _provider(service, gate) for service in SERVICES}
    flow = OrderFlow(
        broker,
        providers,
        timings=timings,
        concurrency=orders,
        namespace=namespace,
        mistakes=mistakes,
    )
    await flow.start()
    start = first_order if first_order is not None else random.randrange(100, 1_000_000)
    placed = await asyncio.gather(*(flow.place_order(start + n) for n in range(orders)))
    ids = [order.correlation_id for order in placed]
    limit = timeout if timeout is not None else max(10.0, 20.0 * time_scale)
    try:
        async with asyncio.timeout(limit):
            await flow.settled(ids)
            while not all((c, STALLED_STEP) in gate.markers for c in ids):
                await asyncio.sleep(_MARKER_POLL_S)
    except TimeoutError:
        missing = flow.missing(ids) or {
            c: [f"{STALLED_STEP} start marker"]
            for c in ids
            if (c, STALLED_STEP) not in gate.markers
        }
        raise FlowStalledError(
            f"the order flow on {broker.system!r} did not settle within {limit:.1f} s; "
            f"still missing per order: {missing}. Is every consumer subscribed "
            "and the broker delivering?"
        ) from None
    for provider in providers.values():
        provider.force_flush()
    gate.close()
    return DemoRun(orders=tuple(placed))


def _provider(service: str, gate: SpanProcessor) -> TracerProvider:
    provider = TracerProvider(
        resource=Resource.create({"service.name": service}), shutdown_on_exit=False
    )
    provider.add_span_processor(gate)
    return provider
