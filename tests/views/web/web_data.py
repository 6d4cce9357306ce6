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
