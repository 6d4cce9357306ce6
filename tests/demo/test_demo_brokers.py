"""The order flow over each real broker analyses like the in-process run.

Same services, same delays (scaled), a namespace of its own per run on a shared
loopback server; the broker only carries the messages. The analysis of each run
must find the same branches with the same attempts and outcomes, the same work in
flight, the same causal chains and the same critical-path shape. Only the broker's
name (``messaging.system``) and the timings differ.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from dataclasses import dataclass

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tracebraid import semconv
from tracebraid.analysis import WorkflowAnalysis, analyze, load_topology
from tracebraid.demo import record_order_flow, run_order_flow, topology_file
from tracebraid.model import Span
from tracebraid.sdk.broker import Broker, open_broker
from tracebraid.sdk.convert import to_span

pytestmark = pytest.mark.broker

# Twice the unit tests' scale: the webhook path must stay the critical one with a real
# broker's hops added, and the whole flow still settles in about a fifth of a second.
SCALE = 0.1
# A Kafka hop is slower (a fetch waits up to 50 ms for data, a retry goes through a topic,
# each record's marker is written first): its run, and the in-process run it is compared
# with, go at a quarter of real time so those hops stay small beside the flow's delays.
SCALES = {"kafka": 0.25}
ORDER = 441


@dataclass(frozen=True, slots=True)
class Shape:
    """What must not depend on the broker: the analysis without IDs and times."""

    branches: tuple[tuple[object, ...], ...]
    in_flight: tuple[str, ...]
    pending: tuple[tuple[object, ...], ...]
    critical_path: tuple[tuple[object, ...], ...]
    segment_kinds: tuple[str, ...]
    traces: int
    correlations: tuple[str, ...]
    problems: tuple[int, ...]


def shape(analysis: WorkflowAnalysis) -> Shape:
    names = {b.event_id: b.event_name for b in analysis.branches}
    steps = {b.id: b.step for b in analysis.branches}
    branches = sorted(
        (
            b.event_name,
            b.consumer,
            b.step,
            b.service,
            b.status.value,
            b.retries,
            b.dead_lettered,
            tuple((a.reported_number, a.kind.value, a.outcome.value) for a in b.attempts),
            steps.get(b.caused_by) if b.caused_by else None,
            tuple(sorted(str(names.get(e, e)) for e in b.downstream_events)),
        )
        for b in analysis.branches
    )
    path = tuple(
        (s.role.value, s.step, s.via.value if s.via else None, s.attempt)
        for s in analysis.critical_path.steps
    )
    return Shape(
        branches=tuple(branches),
        in_flight=tuple(sorted(str(f.consumer) for f in analysis.in_flight)),
        pending=tuple(sorted((p.event_name, p.consumer, p.state.value) for p in analysis.pending)),
        critical_path=path,
        segment_kinds=tuple(s.kind.value for s in analysis.critical_path.segments),
        traces=len(analysis.trace_ids),
        correlations=tuple(analysis.correlation_ids),
        problems=(
            len(analysis.breaks),
            len(analysis.islands),
            len(analysis.duplicate_publishes),
            len(analysis.missing_parents),
        ),
    )


def analysed(spans: list[Span]) -> WorkflowAnalysis:
    return analyze(spans, topology=load_topology(topology_file()))


@functools.cache
def in_process(scale: float) -> Shape:
    _, spans = asyncio.run(record_order_flow(time_scale=scale, first_order=ORDER))
    return shape(analysed(spans))


async def run_on(broker: Broker, scale: float) -> list[Span]:
    exporter = InMemorySpanExporter()
    async with broker:
        await run_order_flow(
            broker,
            exporter,
            time_scale=scale,
            first_order=ORDER,
            namespace=f"tb-{uuid.uuid4().hex[:12]}.",
        )
    return [to_span(span) for span in exporter.get_finished_spans()]


@pytest.mark.parametrize("name", ["rabbitmq", "redis", "nats", "kafka"])
async def test_the_order_flow_over_a_real_broker_analyses_like_the_in_process_run(
    name: str, request: pytest.FixtureRequest
) -> None:
    # Kafka: tansu on 9092 or on a port of the session's own (tests/kafka_server.py).
    url = request.getfixturevalue("kafka_bootstrap") if name == "kafka" else None
    scale = SCALES.get(name, SCALE)
    spans = await run_on(open_broker(name, url, temporary=True), scale)
    systems = {s.attributes.get(semconv.MESSAGING_SYSTEM) for s in spans} - {None}
    assert systems == {name}
    over_broker = shape(analysed(spans))
    assert over_broker == await asyncio.to_thread(in_process, scale)
    # and the story itself, so two equally wrong runs cannot pass
    webhook = [b for b in over_broker.branches if b[2] == "send-warehouse-webhook"]
    assert [attempts for *_, attempts, _, _ in webhook] == [
        ((1, "first", "retry"), (2, "retry", "retry"), (3, "retry", "ok"))
    ]
    assert over_broker.in_flight == ("award-loyalty-points",)
    assert over_broker.critical_path[-1][1] == "send-warehouse-webhook"
    assert over_broker.traces == 1 and over_broker.correlations == (f"order_{ORDER}",)
    assert over_broker.problems == (0, 0, 0, 0)
