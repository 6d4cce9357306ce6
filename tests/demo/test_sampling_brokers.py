"""Workflow sampling over a real broker: the demo's order flow at 10 %, with a link-only
audit consumer that starts a trace of its own per delivery (as a poll loop or batch
consumer does), which is what trace-ID sampling tears apart.

With ``WorkflowSampler(0.1, keep_retries=True)`` every kept workflow is complete (every
branch and attempt, the audit branch too, no island, nothing falsely pending) and every
dropped workflow still shows its retried webhook branch whole, marked partial. With
stock ``TraceIdRatioBased(0.1)`` the same run leaves fragments: kept workflows without
their audit branch and audit branches of dropped workflows (the test counts them).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Sampler, TraceIdRatioBased

from tracebraid import semconv
from tracebraid.analysis import PendingReason, analyze, load_topology
from tracebraid.demo import topology_file
from tracebraid.demo.order_flow import SERVICES, OrderFlow, Timings
from tracebraid.model import Span
from tracebraid.sampling import keeps
from tracebraid.sdk import consuming, extract
from tracebraid.sdk.broker import Delivery, open_broker
from tracebraid.sdk.convert import to_span
from tracebraid.sdk.sampler import WorkflowSampler

pytestmark = pytest.mark.broker

RATIO = 0.1
SCALE = 0.1
AUDIT = "audit"
# Every kept workflow: these consumers, with these attempts (the webhook retries twice).
COMPLETE = {
    "authorize-payment": 1,
    "reserve-inventory": 1,
    "project-order-summary": 1,
    "send-warehouse-webhook": 3,
    AUDIT: 1,
}


async def _run(sampler: Sampler, orders: int) -> dict[str, list[Span]]:
    """The order flow on Redis for ``orders`` orders; every span, by workflow."""
    exporter = InMemorySpanExporter()
    providers = {}
    for service in (*SERVICES, AUDIT):
        provider = TracerProvider(
            sampler=sampler, resource=Resource.create({"service.name": service})
        )
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        providers[service] = provider
    namespace = f"tb-sampling-{uuid.uuid4().hex[:10]}."
    audited: set[str] = set()

    async def audit(delivery: Delivery) -> None:
        # Link-only: the consumer span is the root of a trace of its own, the message
        # only linked (as a batch consumer's, or one whose framework starts the trace).
        with consuming(
            extract(delivery.headers),
            step="record-audit",
            consumer=AUDIT,
            destination=delivery.destination,
            link_only=True,
            tracer_provider=providers[AUDIT],
        ) as consumed:
            audited.add(str(consumed.processing.correlation_id))

    async with open_broker("redis", temporary=True) as broker:
        flow = OrderFlow(
            broker,
            providers,
            # A generous webhook timeout: the hung calls still time out (twice per order),
            # and the third call, on a machine busy with 1,000 orders, still succeeds.
            timings=replace(Timings().scaled(SCALE), warehouse_timeout=1.0),
            concurrency=orders,
            namespace=namespace,
        )
        await flow.start()
        await broker.subscribe(flow.destination("orders"), AUDIT, audit, concurrency=orders)
        first = random.randrange(1_000_000, 9_000_000)
        placed = await asyncio.gather(*(flow.place_order(first + n) for n in range(orders)))
        ids = [str(order.correlation_id) for order in placed]
        try:
            async with asyncio.timeout(90):
                await flow.settled(ids)
                while len(audited) < orders:
                    await asyncio.sleep(0.01)
        except TimeoutError:
            raise AssertionError(
                f"not settled: {flow.missing(ids)}; audited {len(audited)} of {orders}"
            ) from None
        await asyncio.sleep(0.3)  # start markers of the stalled branch (SDK's 100 ms)
        spans = [to_span(s) for s in exporter.get_finished_spans()]
    for provider in providers.values():
        provider.shutdown()
    return _by_workflow(spans, ids)


def _by_workflow(spans: list[Span], ids: list[str]) -> dict[str, list[Span]]:
    """Spans grouped by correlation ID; a span without one joins its trace's workflow."""
    of_trace: dict[str, str] = {}
    for span in spans:
        cid = span.attributes.get(semconv.CORRELATION_ID)
        if isinstance(cid, str):
            of_trace.setdefault(span.trace_id, cid)
    grouped: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        cid = span.attributes.get(semconv.CORRELATION_ID)
        grouped[cid if isinstance(cid, str) else of_trace.get(span.trace_id, "?")].append(span)
    assert "?" not in grouped, "a span belongs to no workflow"
    return {cid: grouped.get(cid, []) for cid in ids}


def _complete(spans: list[Span]) -> bool:
    analysis = analyze(spans, topology=load_topology(topology_file()))
    attempts = {b.consumer: len(b.attempts) for b in analysis.branches}
    return (
        {c: attempts.get(c) for c in COMPLETE} == COMPLETE
        and not analysis.islands
        and not analysis.missing_parents
        and {p.consumer for p in analysis.pending} <= {"award-loyalty-points"}
    )


@pytest.fixture(scope="module", params=[200, pytest.param(1000, marks=pytest.mark.slow)])
def orders(request: pytest.FixtureRequest) -> Iterator[int]:
    yield request.param


def test_workflow_sampling_keeps_whole_workflows_and_every_retried_branch(orders: int) -> None:
    workflows = asyncio.run(_run(WorkflowSampler(RATIO, keep_retries=True), orders))
    kept = [cid for cid in workflows if keeps(cid, RATIO)]
    assert 0.04 * orders < len(kept) < 0.18 * orders
    incomplete = [cid for cid in kept if not _complete(workflows[cid])]
    assert incomplete == []
    for cid, spans in workflows.items():
        if cid in kept:
            continue
        # Dropped, but its retried branch is kept whole (keep_retries) and said partial.
        analysis = analyze(spans, topology=load_topology(topology_file()))
        webhooks = [b for b in analysis.branches if b.consumer == "send-warehouse-webhook"]
        assert [len(b.attempts) for b in webhooks] == [3], cid
        assert [a.outcome.value for a in webhooks[0].attempts] == ["retry", "retry", "ok"]
        work = {s.name for s in spans if s.scope != semconv.START_MARKER_SCOPE}
        assert work == {"send-warehouse-webhook"}, cid
        assert analysis.limitation("sampled_partial") is not None
        assert analysis.islands == ()
        assert not [p for p in analysis.pending if p.reason is PendingReason.NOT_STARTED]


def test_trace_id_sampling_leaves_fragments(orders: int) -> None:
    workflows = asyncio.run(_run(TraceIdRatioBased(RATIO), orders))
    seen = {cid: spans for cid, spans in workflows.items() if spans}
    fragments = [cid for cid, spans in seen.items() if not _complete(spans)]
    # Each order is two traces (the flow's, the audit consumer's), sampled apart: about
    # 2 * 0.1 * 0.9 of the orders leave a fragment (36 of 200, 180 of 1,000).
    assert len(fragments) >= 0.09 * orders, (len(fragments), len(seen))
    audit_only = [cid for cid in fragments if {s.service for s in seen[cid]} == {AUDIT}]
    missing_audit = [cid for cid in fragments if AUDIT not in {s.service for s in seen[cid]}]
    assert audit_only and missing_audit
    assert len(audit_only) + len(missing_audit) == len(fragments)
    print(  # the figure the docs quote
        f"TraceIdRatioBased({RATIO}) over {orders} orders: {len(seen)} workflows with spans, "
        f"{len(fragments)} fragments ({len(audit_only)} audit branches alone, "
        f"{len(missing_audit)} workflows without their audit branch)"
    )
