"""The order flow's spans, for tests: the real SDK-produced workflow as ``list[Span]``.

Other parts' tests (analysis, views, lint) use this instead of hand-written spans::

    @pytest.fixture(scope="module")
    def order_flow_spans() -> list[Span]:
        return capture_order_flow(time_scale=0.05)

The spans include the start markers (scope ``tracebraid.start_marker``);
``award-loyalty-points`` has a marker and no finished span.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tracebraid.demo.runner import DemoRun, run_order_flow
from tracebraid.errors import ConfigurationError
from tracebraid.model import Span
from tracebraid.sdk.broker.base import Broker
from tracebraid.sdk.broker.memory import InMemoryBroker
from tracebraid.sdk.convert import to_span

__all__ = ["capture_order_flow", "record_order_flow"]


async def record_order_flow(
    *,
    orders: int = 1,
    time_scale: float = 0.05,
    first_order: int = 441,
    broker: Broker | None = None,
) -> tuple[DemoRun, list[Span]]:
    """Run the order flow (on a fresh in-memory broker unless given one) and return its spans.

    A given ``broker`` must be started and stays open; a fresh one is closed here.
    """
    exporter = InMemorySpanExporter()
    async with AsyncExitStack() as own:
        if broker is None:
            broker = await own.enter_async_context(InMemoryBroker())
        run = await run_order_flow(
            broker, exporter, orders=orders, time_scale=time_scale, first_order=first_order
        )
    return run, [to_span(span) for span in exporter.get_finished_spans()]


def capture_order_flow(
    *, orders: int = 1, time_scale: float = 0.05, first_order: int = 441
) -> list[Span]:
    """The spans of one order-flow run on the in-memory broker (sync: for fixtures).

    Inside a running event loop, ``await record_order_flow(...)`` instead.

    Example::

        >>> spans = capture_order_flow()
        >>> sorted({s.service for s in spans})
        ['checkout-api', 'inventory', 'loyalty', 'payment', 'summary', 'warehouse']
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise ConfigurationError(
            "capture_order_flow() runs its own event loop; inside async code use "
            "`run, spans = await record_order_flow(...)`"
        )
    _, spans = asyncio.run(
        record_order_flow(orders=orders, time_scale=time_scale, first_order=first_order)
    )
    return spans
