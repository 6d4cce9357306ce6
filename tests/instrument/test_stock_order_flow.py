"""Services instrumented only with their stock OpenTelemetry instrumentation plus
``tracebraid.instrument()`` run the order flow over a real broker, and the workflow
analyses like the same flow on tracebraid's ``EventBus``: the same branches, attempts,
correlation and causation chain. Without the propagator the correlation breaks (TB201
on RabbitMQ, where AMQP's message_id still pairs each send with its receive).

aio-pika runs on RabbitMQ; aiokafka and confluent-kafka on tansu, a Kafka-protocol broker
(not Apache Kafka). For Kafka the shape leaves out how each attempt ended: aiokafka's
stock consumer span ends when ``getone`` returns, before the record is processed (so the
stalled branch cannot look in flight either), and confluent-kafka's stays open until the
next ``poll`` but records no failure of the processing inside it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from stock_flow import DESTINATIONS, ORDER, SCALE, Shape, run_stock_flow, shape

from tracebraid.analysis import WorkflowAnalysis, analyze, load_topology
from tracebraid.analysis.lint import lint
from tracebraid.demo import record_order_flow, topology_file
from tracebraid.model import Span
from tracebraid.sdk.broker.rabbitmq import DEFAULT_RABBITMQ_URL

pytestmark = [pytest.mark.broker, pytest.mark.slow]

LOST_CORRELATION = "TB201"


def analysed(spans: list[Span]) -> WorkflowAnalysis:
    return analyze(spans, topology=load_topology(topology_file()))


@pytest.fixture(scope="module")
def on_event_bus() -> WorkflowAnalysis:
    _, spans = asyncio.run(record_order_flow(time_scale=SCALE, first_order=ORDER))
    return analysed(spans)


def lost_correlations(spans: list[Span]) -> list[str]:
    return [f.message for f in lint(spans).findings if f.rule == LOST_CORRELATION]


def assert_the_story(stock: Shape) -> None:
    """What the comparison must also hold, so two equally wrong runs cannot pass."""
    assert stock.correlations == (f"order_{ORDER}",)
    assert stock.causation == (
        ("order.placed", "inventory.reserved"),
        ("order.placed", "payment.authorized"),
    )
    services = [(b[0], b[1], b[4]) for b in stock.branches]
    assert services == [
        ("inventory.reserved", "warehouse", "inventory"),
        ("order.placed", "inventory", None),
        ("order.placed", "payment", None),
        ("payment.authorized", "loyalty", "payment"),
        ("payment.authorized", "summary", "payment"),
    ]


async def test_aio_pika_services_with_tracebraid_instrument_analyse_like_the_event_bus(
    tmp_path: Path, on_event_bus: WorkflowAnalysis
) -> None:
    spans = await run_stock_flow("aio-pika", DEFAULT_RABBITMQ_URL, tmp_path, propagator=True)
    analysis = analysed(spans)
    stock = shape(analysis)
    assert stock == shape(on_event_bus)
    assert_the_story(stock)
    [webhook] = [b for b in stock.branches if b[1] == "warehouse"]
    assert webhook[3] == ("failed", "failed", "ok")
    assert [str(f.consumer).split(":")[0] for f in analysis.in_flight] == ["loyalty"]
    assert len(analysis.trace_ids) == 1
    assert (analysis.breaks, analysis.islands, analysis.missing_parents) == ((), (), ())
    assert lost_correlations(spans) == []


async def test_aio_pika_services_without_the_propagator_lose_the_correlation(
    tmp_path: Path,
) -> None:
    spans = await run_stock_flow("aio-pika", DEFAULT_RABBITMQ_URL, tmp_path, propagator=False)
    assert lost_correlations(spans)


async def create_topics(bootstrap: str, namespace: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(namespace + d, 1, 1) for d in DESTINATIONS])
    finally:
        await admin.close()


async def test_aiokafka_services_with_tracebraid_instrument_analyse_like_the_event_bus(
    tmp_path: Path, kafka_bootstrap: str, on_event_bus: WorkflowAnalysis
) -> None:
    spans = await run_stock_flow(
        "aiokafka", kafka_bootstrap, tmp_path, propagator=True, prepare=create_topics
    )
    analysis = analysed(spans)
    stock = shape(analysis, statuses=False)
    assert stock == shape(on_event_bus, statuses=False)
    assert_the_story(stock)
    [webhook] = [b for b in stock.branches if b[1] == "warehouse"]
    assert webhook[3] == 3  # the same record read three times: three attempts
    assert lost_correlations(spans) == []


@pytest.mark.parametrize("client", ["aiokafka", "confluent-kafka"])
async def test_kafka_services_without_the_propagator_lose_the_correlation(
    client: str, tmp_path: Path, kafka_bootstrap: str
) -> None:
    """Without the propagator nothing but ``traceparent`` crosses Kafka: the consumers get
    no correlation and no event ID, and the follow-ups lose the workflow. Each consumer is
    still the child of its producer's span, so the lint pairs them by structure and
    reports the lost correlation as broken causality's cousin, TB201."""
    spans = await run_stock_flow(
        client, kafka_bootstrap, tmp_path, propagator=False, prepare=create_topics
    )
    findings = [f for f in lint(spans).findings if f.rule == LOST_CORRELATION]
    assert {f.service for f in findings} >= {"payment"}, [(f.rule, f.service) for f in findings]
    assert all("without the correlation ID order_" in f.message for f in findings)
    assert analysed(spans).correlation_ids == (f"order_{ORDER}",)  # the checkout's alone


async def test_confluent_kafka_services_with_tracebraid_instrument_analyse_like_the_event_bus(
    tmp_path: Path, kafka_bootstrap: str, on_event_bus: WorkflowAnalysis
) -> None:
    spans = await run_stock_flow(
        "confluent-kafka", kafka_bootstrap, tmp_path, propagator=True, prepare=create_topics
    )
    analysis = analysed(spans)
    stock = shape(analysis, statuses=False)
    assert stock == shape(on_event_bus, statuses=False)
    assert_the_story(stock)
    # confluent-kafka's consumer span lasts until the next poll: the stall is in flight.
    assert [str(f.consumer).split(":")[0] for f in analysis.in_flight] == ["loyalty"]
    assert lost_correlations(spans) == []
