"""A stock aio-pika service and a tracebraid service exchange messages over real RabbitMQ.

``shipping`` is instrumented only with ``opentelemetry-instrumentation-aio-pika``
(in its own process: the instrumentor patches aio-pika process-wide). It places an
order on the ``orders`` exchange; tracebraid's ``inventory`` service consumes it
and publishes a follow-up that ``shipping`` consumes. One trace, one parent chain
across both instrumentations, and the mixed workflow analyses with no breaks.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from broker_contract import unique_name
from stock_aio_pika_service import ORDER_CORRELATION_ID, ORDER_EVENT_ID

from tracebraid import semconv
from tracebraid.analysis import analyze
from tracebraid.collector.otlp import decode_protobuf
from tracebraid.model import Span, SpanKind
from tracebraid.sdk.broker import EventBus, RabbitMQBroker, Received
from tracebraid.sdk.broker.rabbitmq import DEFAULT_RABBITMQ_URL
from tracebraid.testing import capture_spans

pytestmark = pytest.mark.broker

STOCK_SERVICE = Path(__file__).with_name("stock_aio_pika_service.py")


async def exchange_with_stock_service(tmp_path: Path) -> list[Span]:
    """Run both services once; return the stock service's spans and tracebraid's, together."""
    spans_file = tmp_path / "shipping.otlp"
    with capture_spans(service="inventory") as captured:
        await run_both_services(spans_file)
        ours = captured.spans
    stock = decode_protobuf(spans_file.read_bytes())
    assert not stock.rejections
    return [*stock.spans, *ours]


async def run_both_services(spans_file: Path) -> None:
    """tracebraid's inventory here, the stock shipping service in a subprocess, one namespace."""
    namespace = unique_name()
    orders, inventory = f"{namespace}.orders", f"{namespace}.inventory"
    async with RabbitMQBroker(temporary=True) as broker:
        bus = EventBus(broker)

        async def reserve(received: Received) -> None:
            await bus.publish("inventory.reserved", received.payload, destination=inventory)

        await bus.subscribe(orders, reserve, group="reserve-inventory")
        shipping = await asyncio.create_subprocess_exec(
            sys.executable,
            str(STOCK_SERVICE),
            DEFAULT_RABBITMQ_URL,
            orders,
            inventory,
            str(spans_file),
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert shipping.stdout is not None
            async with asyncio.timeout(20):
                output = await shipping.stdout.read()
                assert await shipping.wait() == 0
        finally:
            if shipping.returncode is None:
                shipping.kill()
                await shipping.wait()
        assert output.split() == [b"ready", b"done"]


async def test_context_crosses_both_ways_between_stock_and_tracebraid_instrumentation(
    tmp_path: Path,
) -> None:
    spans = await exchange_with_stock_service(tmp_path)
    by_id = {s.span_id: s for s in spans}
    [post] = [s for s in spans if s.name == "POST /orders"]
    [stock_send] = [s for s in spans if s.service == "shipping" and s.kind is SpanKind.PRODUCER]
    [reserve] = [s for s in spans if s.name == "reserve-inventory"]
    [follow_up] = [s for s in spans if s.name == "inventory.reserved publish"]
    [stock_receive] = [s for s in spans if s.service == "shipping" and s.kind is SpanKind.CONSUMER]

    assert {s.trace_id for s in spans} == {post.trace_id}
    chain = [stock_receive]
    while chain[-1].parent_span_id in by_id:
        chain.append(by_id[chain[-1].parent_span_id])
    assert chain == [stock_receive, follow_up, reserve, stock_send, post]

    # AMQP properties carried the identities both ways
    assert reserve.attributes[semconv.MESSAGE_ID] == ORDER_EVENT_ID
    assert reserve.attributes[semconv.CORRELATION_ID] == ORDER_CORRELATION_ID
    assert reserve.attributes[semconv.ATTEMPT] == 1
    assert follow_up.attributes[semconv.CAUSATION_ID] == ORDER_EVENT_ID
    assert follow_up.attributes[semconv.CORRELATION_ID] == ORDER_CORRELATION_ID
    assert stock_send.attributes[semconv.MESSAGE_ID] == ORDER_EVENT_ID
    assert stock_receive.attributes[semconv.MESSAGE_ID] == follow_up.attributes[semconv.MESSAGE_ID]
    assert stock_receive.attributes["messaging.conversation_id"] == ORDER_CORRELATION_ID


async def test_the_mixed_workflow_analyses_as_one_unbroken_causal_graph(
    tmp_path: Path,
) -> None:
    spans = await exchange_with_stock_service(tmp_path)
    analysis = analyze(spans)
    assert len(analysis.trace_ids) == 1
    assert analysis.correlation_ids == (ORDER_CORRELATION_ID,)
    assert (analysis.breaks, analysis.islands, analysis.missing_parents) == ((), (), ())
    [root] = analysis.roots
    assert root.name == "POST /orders"
    reserved = analysis.branch(ORDER_EVENT_ID, "reserve-inventory")
    assert reserved is not None and reserved.succeeded
    assert [(a.reported_number, a.outcome.value) for a in reserved.attempts] == [(1, "ok")]
    assert reserved.producer is not None and reserved.producer.service == "shipping"
    [follow_up_id] = reserved.downstream_events
    [shipping] = analysis.branches_of(follow_up_id)
    assert shipping.service == "shipping" and shipping.succeeded
    assert shipping.caused_by == reserved.id
    path = [(s.span.service, s.role.value, s.via) for s in analysis.critical_path.steps]
    assert [(service, role) for service, role, _ in path] == [
        ("shipping", "other"),
        ("shipping", "producer"),
        ("inventory", "consumer"),
        ("inventory", "producer"),
        ("shipping", "consumer"),
    ]
    assert [via.value for *_, via in path if via is not None] == [
        "child",
        "delivery",
        "child",
        "delivery",
    ]
