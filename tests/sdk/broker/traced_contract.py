"""The traced layer over a real adapter: what every broker must carry, as tests to subclass.

``BrokerContract`` checks the adapter moves messages; ``TracedBrokerContract``
checks the ``EventBus`` over it produces the causal story: follow-ups carrying
correlation and causation, attempts from the broker's own count, a traced dead-letter
path, a consumer killed mid-processing, and structured mode. Subclasses give a started
``broker`` fixture and a ``killable`` one (the broker's name and URL for
``killed_consumer.py``, which must use the same redelivery window); names are
unique per test so a shared real server is fine. Spans go to the ``captured``
fixture of ``tests/sdk/conftest.py``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from broker_contract import unique_name

from tracebraid import semconv
from tracebraid.model import SpanKind, StatusCode
from tracebraid.sdk.broker import (
    DEAD_LETTER_GROUP_HEADER,
    Broker,
    Delivery,
    EventBus,
    Processed,
    Received,
    RetryPolicy,
    dead_letter_destination,
)
from tracebraid.sdk.broker.structured import StructuredBroker
from tracebraid.sdk.context import Outcome, correlation
from tracebraid.testing import SpanCapture

__all__ = ["Settled", "TracedBrokerContract"]

WAIT = 10.0
KILLED_CONSUMER = Path(__file__).with_name("killed_consumer.py")


class Settled:
    """An ``EventBus`` observer: every settled attempt, and a way to wait for some."""

    def __init__(self) -> None:
        self.processed: list[Processed] = []
        self._changed = asyncio.Event()

    def __call__(self, processed: Processed) -> None:
        self.processed.append(processed)
        self._changed.set()

    async def wait_until(self, done: Callable[[list[Processed]], bool]) -> list[Processed]:
        async with asyncio.timeout(WAIT):
            while not done(self.processed):
                self._changed.clear()
                await self._changed.wait()
        return self.processed

    async def wait_for(self, step: str, outcome: Outcome) -> Processed:
        def found(seen: list[Processed]) -> bool:
            return any(p.step == step and p.outcome is outcome for p in seen)

        seen = await self.wait_until(found)
        return next(p for p in seen if p.step == step and p.outcome is outcome)


class TracedBrokerContract:
    """Causal tracing over a real broker; subclasses provide a started ``broker`` fixture."""

    @pytest.fixture
    def names(self) -> str:
        return unique_name()

    async def test_follow_up_events_carry_correlation_and_causation(
        self, broker: Broker, names: str, captured: SpanCapture
    ) -> None:
        settled = Settled()
        inventory = EventBus(broker, observers=[settled])
        checkout = EventBus(broker)
        orders, stock = f"{names}.orders", f"{names}.inventory"

        async def reserve(received: Received) -> None:
            await inventory.publish("inventory.reserved", received.payload, destination=stock)

        async def notify(received: Received) -> None:
            return None

        await inventory.subscribe(orders, reserve, group="reserve-inventory")
        await inventory.subscribe(stock, notify, group="send-warehouse-webhook")
        with correlation("order_8"):
            placed = await checkout.publish("order.placed", b'{"n":1}', destination=orders)
        await settled.wait_for("send-warehouse-webhook", Outcome.OK)
        # The webhook can finish before reserve-inventory's span ends (its publish is
        # the handler's last await), so wait for both spans to be exported.
        await settled.wait_for("reserve-inventory", Outcome.OK)

        [placing] = captured.named("order.placed publish")
        [reserving] = captured.named("reserve-inventory")
        [follow_up] = captured.named("inventory.reserved publish")
        [webhook] = captured.named("send-warehouse-webhook")
        assert placing.kind is SpanKind.PRODUCER and reserving.kind is SpanKind.CONSUMER
        assert reserving.parent_span_id == placing.span_id
        assert follow_up.parent_span_id == reserving.span_id
        assert webhook.parent_span_id == follow_up.span_id
        assert {s.trace_id for s in (placing, reserving, follow_up, webhook)} == {placed.trace_id}
        assert follow_up.attributes[semconv.CAUSATION_ID] == placed.event_id
        assert webhook.attributes[semconv.CAUSATION_ID] == placed.event_id
        assert webhook.attributes[semconv.MESSAGE_ID] == follow_up.attributes[semconv.MESSAGE_ID]
        for span in (placing, reserving, follow_up, webhook):
            assert span.attributes[semconv.CORRELATION_ID] == "order_8"
            assert span.attributes[semconv.MESSAGING_SYSTEM] == broker.system
        assert [p.delivery.delivery_count for p in settled.processed] == [1, 1]

    async def test_each_attempt_is_a_span_numbered_by_the_brokers_own_count(
        self, broker: Broker, names: str, captured: SpanCapture
    ) -> None:
        settled = Settled()
        bus = EventBus(broker, observers=[settled])

        async def notify(received: Received) -> None:
            if received.attempt < 3:
                raise TimeoutError("warehouse API did not answer")

        policy = RetryPolicy(max_attempts=3, backoff=(0.05, 0.1))
        await bus.subscribe(names, notify, group="send-warehouse-webhook", retry=policy)
        sent = await bus.publish("inventory.reserved", b"{}", destination=names)
        await settled.wait_for("send-warehouse-webhook", Outcome.OK)

        attempts = captured.named("send-warehouse-webhook")
        assert [s.attributes[semconv.ATTEMPT] for s in attempts] == [1, 2, 3]
        assert [s.attributes[semconv.OUTCOME] for s in attempts] == ["retry", "retry", "ok"]
        assert [s.status for s in attempts] == [
            StatusCode.ERROR,
            StatusCode.ERROR,
            StatusCode.UNSET,
        ]
        assert [s.attributes.get(semconv.BACKOFF_MS) for s in attempts] == [50.0, 100.0, None]
        assert {s.attributes[semconv.MESSAGE_ID] for s in attempts} == {sent.event_id}
        assert attempts[1].start_ns - attempts[0].end_ns >= 0.05e9
        assert attempts[2].start_ns - attempts[1].end_ns >= 0.1e9

    async def test_the_dead_letter_path_is_traced_and_keeps_the_context(
        self, broker: Broker, names: str, captured: SpanCapture
    ) -> None:
        settled = Settled()
        bus = EventBus(broker, observers=[settled])

        async def notify(received: Received) -> None:
            raise ConnectionError("warehouse is down")

        parked: list[Received] = []

        async def inspect(received: Received) -> None:
            parked.append(received)

        await bus.subscribe(names, notify, group="send-warehouse-webhook", retry=RetryPolicy(2))
        await bus.subscribe(dead_letter_destination(names), inspect, group="operators")
        with correlation("order_9"):
            sent = await bus.publish("inventory.reserved", b"{}", destination=names)
        await settled.wait_for("operators", Outcome.OK)

        *_, last = captured.named("send-warehouse-webhook")
        assert last.attributes[semconv.ATTEMPT] == 2
        assert last.attributes[semconv.OUTCOME] == "dead_letter"
        [producer] = captured.named("inventory.reserved publish")
        [operators] = captured.named("operators")
        assert operators.attributes[semconv.DESTINATION] == dead_letter_destination(names)
        assert operators.parent_span_id == producer.span_id
        assert operators.trace_id == producer.trace_id
        assert operators.attributes[semconv.CORRELATION_ID] == "order_9"
        assert operators.attributes[semconv.MESSAGE_ID] == sent.event_id
        [message] = parked
        assert message.delivery.headers[DEAD_LETTER_GROUP_HEADER] == "send-warehouse-webhook"
        assert message.attempt == 1

    async def test_structured_mode_carries_the_context_in_the_body(
        self, broker: Broker, names: str, captured: SpanCapture
    ) -> None:
        raw: list[bytes] = []
        settled = Settled()

        async def peek(delivery: Delivery) -> None:
            raw.append(delivery.payload)

        await broker.subscribe(names, "raw-reader", peek)
        structured = StructuredBroker(broker)
        bus = EventBus(structured, observers=[settled])
        received: list[Received] = []

        async def reserve(message: Received) -> None:
            received.append(message)

        await bus.subscribe(names, reserve, group="reserve-inventory")
        with correlation("order_10"):
            sent = await bus.publish("order.placed", b'{"order_id":"order_10"}', destination=names)
        await settled.wait_for("reserve-inventory", Outcome.OK)
        async with asyncio.timeout(WAIT):
            while not raw:
                await asyncio.sleep(0.01)

        envelope = json.loads(raw[0])
        assert envelope["eventId"] == sent.event_id
        assert envelope["correlationId"] == "order_10"
        assert envelope["data"] == {"order_id": "order_10"}
        [message] = received
        assert message.payload == b'{"order_id":"order_10"}'
        assert message.processing.correlation_id == "order_10"
        [producer] = captured.named("order.placed publish")
        [consumer] = captured.named("reserve-inventory")
        assert consumer.parent_span_id == producer.span_id
        assert envelope["parentSpanId"] == producer.span_id

    async def test_a_killed_consumers_delivery_comes_back_as_attempt_2(
        self, broker: Broker, names: str, killable: tuple[str, str], captured: SpanCapture
    ) -> None:
        name, url = killable
        group = "send-warehouse-webhook"
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(KILLED_CONSUMER),
            name,
            url,
            names,
            group,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert process.stdout is not None
            async with asyncio.timeout(WAIT):
                assert await process.stdout.readline() == b"ready\n"
            settled = Settled()
            bus = EventBus(broker, observers=[settled])
            sent = await bus.publish("inventory.reserved", b"{}", destination=names)
            async with asyncio.timeout(WAIT):
                line = await process.stdout.readline()
            assert line.split() == [b"processing", b"1", str(sent.event_id).encode()]
        finally:
            process.kill()  # SIGKILL: no ack, no nack, no goodbye to the broker
            await process.wait()

        async def notify(received: Received) -> None:
            return None

        await bus.subscribe(names, notify, group=group)
        processed = await settled.wait_for(group, Outcome.OK)
        assert processed.delivery.delivery_count == 2
        assert processed.delivery.message_id == sent.event_id
        [attempt] = captured.named(group)
        assert attempt.attributes[semconv.ATTEMPT] == 2
        assert attempt.attributes[semconv.MESSAGE_ID] == sent.event_id
        [producer] = captured.named("inventory.reserved publish")
        assert attempt.parent_span_id == producer.span_id
