"""Fixtures: the order-flow demo run for real through the SDK, clean and with the planted
mistakes, as spans and as their lint reports."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tracebraid.analysis.lint import LintReport, lint
from tracebraid.demo import capture_order_flow, run_order_flow
from tracebraid.demo.mistakes import MISTAKES
from tracebraid.model import Span
from tracebraid.sdk.broker.memory import InMemoryBroker
from tracebraid.sdk.convert import to_span


async def _run_with_mistakes(orders: int) -> tuple[ReadableSpan, ...]:
    exporter = InMemorySpanExporter()
    async with InMemoryBroker() as broker:
        await run_order_flow(
            broker, exporter, orders=orders, time_scale=0.05, first_order=441, mistakes=MISTAKES
        )
    return exporter.get_finished_spans()


@pytest.fixture(scope="session")
def demo_spans() -> list[Span]:
    """The clean demo: one order through the real SDK on the in-memory broker."""
    return capture_order_flow()


@pytest.fixture(scope="session")
def mistaken_readable() -> tuple[ReadableSpan, ...]:
    """The demo with every planted mistake, two orders, as OpenTelemetry exported them."""
    return asyncio.run(_run_with_mistakes(2))


@pytest.fixture(scope="session")
def mistaken_spans(mistaken_readable: tuple[ReadableSpan, ...]) -> list[Span]:
    return [to_span(s) for s in mistaken_readable]


@pytest.fixture(scope="session")
def mistaken_report(mistaken_spans: list[Span]) -> LintReport:
    return lint(mistaken_spans)
