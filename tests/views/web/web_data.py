"""The web tests' data: the demo orders, the broken-propagation order, markup as names."""

from __future__ import annotations

from dataclasses import dataclass, replace

from demo_settings import TIME_SCALE
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tracebraid.demo import run_order_flow
from tracebraid.demo.mistakes import MISTAKES
from tracebraid.model import Span
from tracebraid.sdk.broker.memory import InMemoryBroker
from tracebraid.sdk.convert import to_span
from tracebraid.testing.workflows import Try, WorkflowBuilder

MARKUP = "<img src=x onerror=alert(1)>"
"""What a hostile (or careless) service might name a span; the UI must show it as text."""
HOSTILE_CORRELATION = "order_hostile"


@dataclass(frozen=True, slots=True)
class WebDemo:
    """What the store holds: the plain order (``order_441``), the order with the seed's
    mistakes planted (``order_442``: a propagation break), the hostile workflow."""

    spans: tuple[Span, ...]
    plain: str
    broken: str
    hostile: str
    twice: str = ""
    stock_trace: str = ""


async def record_demo() -> tuple[str, str, list[Span]]:
    exporter = InMemorySpanExporter()
    async with InMemoryBroker() as broker:
        plain = await run_order_flow(
            broker, exporter, orders=1, time_scale=TIME_SCALE, first_order=441
        )
    async with InMemoryBroker() as broker:
        broken = await run_order_flow(
            broker,
            exporter,
            orders=1,
            time_scale=TIME_SCALE,
            first_order=442,
            mistakes=MISTAKES,
        )
    spans = [to_span(s) for s in exporter.get_finished_spans()]
    return plain.correlation_ids[0], broken.correlation_ids[0], spans


def hostile_spans(start_ns: int) -> list[Span]:
    """A small workflow in which every name a service chooses is markup."""
    b = WorkflowBuilder(correlation_id=HOSTILE_CORRELATION, start_ns=start_ns, seed=66)
    post = b.action(MARKUP, service="<script>window.__xss=2</script>", duration_ms=5)
    placed = b.publish(post, "<svg onload=alert(3)>", destination="orders")
    b.consume(
        placed,
        '"><img src=x onerror=window.__xss=4>',
        service="inventory",
        tries=[Try(20, error=f"TimeoutError: {MARKUP}", backoff_ms=10), Try(15)],
    )
    spans = list(b.build().spans)
    # Attribute keys and values, events: all come from the services.
    spans[0] = replace(
        spans[0], attributes={**spans[0].attributes, MARKUP: "<b onmouseover=alert(5)>x</b>"}
    )
    return spans


TWICE_CORRELATION = "order_twice"
"""Two user actions under one correlation ID, 33 minutes apart: two runs."""
RUN_GAP_MS = 33 * 60 * 1000


def twice_spans(start_ns: int) -> list[Span]:
    """An order placed, then cancelled 33 minutes later, under the same correlation ID."""
    b = WorkflowBuilder(
        correlation_id=TWICE_CORRELATION, start_ns=start_ns, seed=71, first_event=71_000
    )
    placed = b.publish(
        b.action("POST /orders", service="checkout-api", duration_ms=8), "order.placed",
        destination="orders",
    )  # fmt: skip
    b.consume(placed, "reserve-inventory", service="inventory")
    cancel = b.action("POST /cancel", service="checkout-api", duration_ms=6, at_ms=RUN_GAP_MS)
    cancelled = b.publish(cancel, "order.cancelled", destination="orders")
    b.consume(
        cancelled,
        "release-inventory",
        service="inventory",
        tries=[Try(15, error="TimeoutError", backoff_ms=20), Try(10)],
    )
    return list(b.build().spans)


def stock_spans(start_ns: int) -> list[Span]:
    """What aio-pika's stock instrumentation records: ``exchange,routing_key``
    destinations, no event names, two consumers running a step of the same name."""
    b = WorkflowBuilder(
        correlation_id=None, start_ns=start_ns, seed=72, stock=True, first_event=72_000
    )
    post = b.action("POST /ship", service="shop", duration_ms=5)
    shipped = b.publish(post, "shipped", destination="webhooks,,")
    b.consume(shipped, "webhooks receive", service="notifier")
    placed = b.publish(post, "placed", destination="orders,order.placed")
    b.consume(placed, "orders receive", service="inventory")
    b.consume(placed, "orders receive", service="shipping")
    return list(b.build().spans)
