"""The traced layer: spans, attempts from the broker's count, causation, over any broker."""

from __future__ import annotations

import asyncio

import pytest

from tracebraid import semconv
from tracebraid.errors import ConfigurationError
from tracebraid.model import SpanKind, StatusCode
from tracebraid.sdk.broker import (
    EventBus,
    InMemoryBroker,
    Processed,
    Received,
    RetryPolicy,
    dead_letter_destination,
)
from tracebraid.sdk.context import Outcome, correlation
from tracebraid.testing import capture_spans


async def test_publish_and_consume_make_linked_producer_and_consumer_spans() -> None:
    received: list[Received] = []
    with capture_spans() as captured:
        async with InMemoryBroker() as broker:
            bus = EventBus(broker)

            @bus.consumer("orders", group="reserve-inventory")
            async def reserve(message: Received) -> None:
                received.append(message)

            await bus.start()
            with correlation("order_7"):
                sent = await bus.publish("order.placed", b"{}", destination="orders")
            await broker.join()
    [producer] = captured.named("order.placed publish")
    [consumer] = captured.named("reserve-inventory")
    assert producer.kind is SpanKind.PRODUCER and consumer.kind is SpanKind.CONSUMER
    assert consumer.parent_span_id == producer.span_id
    assert [link.span_id for link in consumer.links] == [producer.span_id]
    for span in (producer, consumer):
        assert span.attributes[semconv.MESSAGE_ID] == sent.event_id
        assert span.attributes[semconv.CORRELATION_ID] == "order_7"
        assert span.attributes[semconv.MESSAGING_SYSTEM] == "memory"
        assert span.attributes[semconv.DESTINATION] == "orders"
    assert consumer.attributes[semconv.CONSUMER_GROUP] == "reserve-inventory"
    [message] = received
    assert message.delivery.message_id == sent.event_id
    assert message.processing.correlation_id == "order_7"
    assert message.attempt == 1


async def test_a_follow_up_event_carries_correlation_and_names_its_cause() -> None:
    with capture_spans() as captured:
        async with InMemoryBroker() as broker:
            checkout, inventory = EventBus(broker), EventBus(broker)

            @inventory.consumer("orders", group="reserve-inventory")
            async def reserve(message: Received) -> None:
                await inventory.publish("inventory.reserved", b"", destination="inventory")

            @inventory.consumer("inventory", group="send-warehouse-webhook")
            async def notify(message: Received) -> None:
                return None

            await inventory.start()
            with correlation("order_8"):
                placed = await checkout.publish("order.placed", b"", destination="orders")
            await broker.join()
    [follow_up] = captured.named("inventory.reserved publish")
    [webhook] = captured.named("send-warehouse-webhook")
    assert follow_up.attributes[semconv.CAUSATION_ID] == placed.event_id
    assert follow_up.attributes[semconv.CORRELATION_ID] == "order_8"
    assert webhook.attributes[semconv.CORRELATION_ID] == "order_8"
    assert webhook.attributes[semconv.CAUSATION_ID] == placed.event_id
    assert webhook.attributes[semconv.MESSAGE_ID] == follow_up.attributes[semconv.MESSAGE_ID]
    assert webhook.trace_id == follow_up.trace_id


async def test_every_attempt_is_its_own_span_with_the_brokers_count_and_backoff() -> None:
    settled: list[Processed] = []
    with capture_spans() as captured:
        async with InMemoryBroker() as broker:
            bus = EventBus(broker, observers=[settled.append])

            @bus.consumer(
                "inventory",
                group="warehouse",
                step="send-warehouse-webhook",
                retry=RetryPolicy(max_attempts=3, backoff=(0.01, 0.02)),
            )
            async def notify(message: Received) -> None:
                if message.attempt < 3:
                    raise TimeoutError("warehouse API did not answer")

            await bus.start()
            sent = await bus.publish("inventory.reserved", b"", destination="inventory")
            await broker.join()
    attempts = captured.named("send-warehouse-webhook")
    assert [s.attributes[semconv.ATTEMPT] for s in attempts] == [1, 2, 3]
    assert [s.attributes[semconv.OUTCOME] for s in attempts] == ["retry", "retry", "ok"]
    assert [s.status for s in attempts] == [StatusCode.ERROR, StatusCode.ERROR, StatusCode.UNSET]
    assert [s.attributes.get(semconv.BACKOFF_MS) for s in attempts] == [10.0, 20.0, None]
    assert all(s.attributes[semconv.CONSUMER_GROUP] == "warehouse" for s in attempts)
    assert all(s.attributes[semconv.MESSAGE_ID] == sent.event_id for s in attempts)
    failed = attempts[0].events[0]
    assert failed.name == "exception"
    assert failed.attributes["exception.type"] == "TimeoutError"
    assert [(p.step, p.outcome, p.delivery.delivery_count) for p in settled] == [
        ("send-warehouse-webhook", Outcome.RETRY, 1),
        ("send-warehouse-webhook", Outcome.RETRY, 2),
        ("send-warehouse-webhook", Outcome.OK, 3),
    ]


async def test_the_last_failed_attempt_is_marked_dead_lettered_and_its_context_continues() -> None:
    parked: list[Received] = []
    with capture_spans() as captured:
        async with InMemoryBroker() as broker:
            bus = EventBus(broker)

            @bus.consumer("inventory", group="warehouse", retry=RetryPolicy(max_attempts=2))
            async def notify(message: Received) -> None:
                raise ConnectionError("warehouse is down")

            @bus.consumer(dead_letter_destination("inventory"), group="operators")
            async def inspect(message: Received) -> None:
                parked.append(message)

            await bus.start()
            with correlation("order_9"):
                sent = await bus.publish("inventory.reserved", b"", destination="inventory")
            await broker.join()
    last = captured.named("warehouse")[-1]
    assert last.attributes[semconv.ATTEMPT] == 2
    assert last.attributes[semconv.OUTCOME] == "dead_letter"
    assert last.attributes[semconv.DEAD_LETTER] is True
    [message] = parked
    assert message.processing.correlation_id == "order_9"
    assert message.processing.event_id == sent.event_id
    [operators] = captured.named("operators")
    assert operators.attributes[semconv.DESTINATION] == "inventory.dlq"


async def test_registering_by_decorator_after_start_says_to_subscribe_instead() -> None:
    received: list[Received] = []
    async with InMemoryBroker() as broker:
        bus = EventBus(broker)
        await bus.start()

        async def late(message: Received) -> None:
            received.append(message)

        with pytest.raises(ConfigurationError, match=r"bus\.subscribe"):
            bus.consumer("orders", group="late")(late)
        await bus.subscribe("orders", late, group="late")
        sent = await bus.publish("order.placed", b"", destination="orders")
        await broker.join()
    assert [m.processing.event_id for m in received] == [sent.event_id]


@pytest.mark.parametrize("markers_on", [True, False])
async def test_work_in_flight_is_announced_by_a_start_marker_unless_turned_off(
    markers_on: bool,
) -> None:
    with capture_spans() as captured:
        async with InMemoryBroker() as broker:
            bus = EventBus(broker, start_markers=markers_on)

            @bus.consumer("payments", group="award-loyalty-points", retry=RetryPolicy(2))
            async def stall(message: Received) -> None:
                if message.attempt == 1:
                    raise TimeoutError("points ledger did not answer")
                # stay in flight until the (possibly deferred) marker is out, or 1 s
                async with asyncio.timeout(1.0 if markers_on else 0.3):
                    while not captured.markers:
                        await asyncio.sleep(0.01)

            await bus.start()
            with correlation("order_10"):
                sent = await bus.publish("payment.authorized", b"", destination="payments")
            await broker.join()
            in_flight = [m for m in captured.markers if m.service == "test"]
    if not markers_on:
        assert in_flight == []
        return
    [marker] = in_flight
    assert marker.attributes[semconv.ATTEMPT] == 2
    assert marker.attributes[semconv.MESSAGE_ID] == sent.event_id
    assert marker.attributes[semconv.CORRELATION_ID] == "order_10"
