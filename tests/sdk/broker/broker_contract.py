"""The ``Broker`` contract as tests every adapter runs: subclass ``BrokerContract``, give a fixture.

::

    @pytest.mark.broker
    class TestRabbitMQBroker(BrokerContract):
        @pytest.fixture
        async def broker(self) -> AsyncIterator[Broker]:
            async with RabbitMQBroker("amqp://guest:guest@127.0.0.1/") as broker:
                yield broker

Nothing here waits on a broker-specific "idle": each test waits for the deliveries
it expects (``Recorder.wait_for``), and destinations are unique per test
(``unique_name``), so the same tests run against a shared real server.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid

import pytest

from tracebraid.sdk.broker import (
    DEAD_LETTER_GROUP_HEADER,
    DEAD_LETTER_REASON_HEADER,
    Broker,
    Delivery,
    RetryPolicy,
    dead_letter_destination,
)

__all__ = ["BrokerContract", "Recorder", "unique_name"]

WAIT = 10.0  # seconds a contract test waits for deliveries before it fails


def unique_name() -> str:
    """A destination (or namespace) no other test or run uses: the servers are shared."""
    return f"tb-{uuid.uuid4().hex[:12]}"


class Recorder:
    """A handler that remembers each delivery and when it arrived; fails while told to."""

    def __init__(self, *, fail_until: int = 0, work: float = 0.0) -> None:
        self.deliveries: list[Delivery] = []
        self.times: list[float] = []
        self.fail_until = fail_until
        self.work = work
        self._changed = asyncio.Event()

    async def __call__(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        self.times.append(time.monotonic())
        self._changed.set()
        if self.work:
            await asyncio.sleep(self.work)
        if delivery.delivery_count <= self.fail_until:
            raise TimeoutError(f"attempt {delivery.delivery_count} timed out")

    async def wait_for(self, count: int, *, settle: float = 0.05) -> list[Delivery]:
        """Wait until ``count`` deliveries arrived, then ``settle`` seconds for any extra."""
        async with asyncio.timeout(WAIT):
            while len(self.deliveries) < count:
                self._changed.clear()
                await self._changed.wait()
        await asyncio.sleep(settle)
        return self.deliveries


class BrokerContract:
    """The tests every ``Broker`` passes; subclasses provide a started ``broker`` fixture."""

    @pytest.fixture
    def topic(self) -> str:
        return unique_name()

    async def test_satisfies_the_broker_protocol(self, broker: Broker) -> None:
        assert isinstance(broker, Broker)
        assert broker.system

    async def test_each_group_gets_its_own_copy_with_headers(
        self, broker: Broker, topic: str
    ) -> None:
        payment, inventory = Recorder(), Recorder()
        await broker.subscribe(topic, "authorize-payment", payment)
        await broker.subscribe(topic, "reserve-inventory", inventory)
        headers = {"x-event-name": "order.placed", "traceparent": "00-" + "ab" * 16 + "-01"}
        await broker.publish(topic, b"order 1", headers, message_id="e1")
        for recorder, group in ((payment, "authorize-payment"), (inventory, "reserve-inventory")):
            [delivery] = await recorder.wait_for(1)
            assert (delivery.group, delivery.destination) == (group, topic)
            assert (delivery.message_id, delivery.payload) == ("e1", b"order 1")
            assert {k: delivery.headers[k] for k in headers} == headers
            assert (delivery.delivery_count, delivery.redelivered) == (1, False)

    async def test_members_of_one_group_share_its_messages(
        self, broker: Broker, topic: str
    ) -> None:
        first, second = Recorder(work=0.005), Recorder(work=0.005)
        await broker.subscribe(topic, "reserve-inventory", first)
        await broker.subscribe(topic, "reserve-inventory", second)
        for n in range(20):
            await broker.publish(topic, b"", {}, message_id=f"e{n}")
        async with asyncio.timeout(WAIT):
            while len(first.deliveries) + len(second.deliveries) < 20:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        seen = [d.message_id for d in first.deliveries + second.deliveries]
        assert sorted(seen) == sorted(f"e{n}" for n in range(20))

    async def test_a_failed_delivery_comes_back_with_its_count_after_the_backoff(
        self, broker: Broker, topic: str
    ) -> None:
        webhook = Recorder(fail_until=2)
        policy = RetryPolicy(max_attempts=3, backoff=(0.04, 0.08))
        await broker.subscribe(topic, "send-warehouse-webhook", webhook, retry=policy)
        await broker.publish(topic, b"", {}, message_id="e1")
        deliveries = await webhook.wait_for(3, settle=0.2)
        assert [d.delivery_count for d in deliveries] == [1, 2, 3]
        assert [d.redelivered for d in deliveries] == [False, True, True]
        assert {d.message_id for d in deliveries} == {"e1"}
        gaps = [later - earlier for earlier, later in itertools.pairwise(webhook.times)]
        assert gaps[0] >= 0.04 and gaps[1] >= 0.08

    async def test_after_the_last_attempt_the_message_is_dead_lettered_with_its_headers(
        self, broker: Broker, topic: str
    ) -> None:
        webhook, dlq = Recorder(fail_until=99), Recorder()
        retry = RetryPolicy(max_attempts=2)
        await broker.subscribe(topic, "send-warehouse-webhook", webhook, retry=retry)
        await broker.subscribe(dead_letter_destination(topic), "operators", dlq)
        await broker.publish(topic, b"body", {"traceparent": "00-ab"}, message_id="e1")
        [parked] = await dlq.wait_for(1)
        assert [d.delivery_count for d in webhook.deliveries] == [1, 2]
        assert parked.destination == dead_letter_destination(topic)
        assert (parked.message_id, parked.payload) == ("e1", b"body")
        assert parked.headers["traceparent"] == "00-ab"
        assert parked.headers[DEAD_LETTER_GROUP_HEADER] == "send-warehouse-webhook"
        assert parked.headers[DEAD_LETTER_REASON_HEADER] == "TimeoutError: attempt 2 timed out"

    async def test_a_delayed_group_lags_behind_its_siblings(
        self, broker: Broker, topic: str
    ) -> None:
        loyalty, summary = Recorder(), Recorder()
        await broker.subscribe(topic, "award-loyalty-points", loyalty)
        await broker.subscribe(topic, "project-order-summary", summary, delay=0.2)
        published = time.monotonic()
        await broker.publish(topic, b"", {}, message_id="e1")
        await summary.wait_for(1)
        await loyalty.wait_for(1)
        assert summary.times[0] - published >= 0.2
        assert loyalty.times[0] < summary.times[0]

    async def test_concurrency_lets_one_member_process_deliveries_side_by_side(
        self, broker: Broker, topic: str
    ) -> None:
        slow = Recorder(work=0.3)
        await broker.subscribe(topic, "award-loyalty-points", slow, concurrency=3)
        for n in range(3):
            await broker.publish(topic, b"", {}, message_id=f"e{n}")
        await slow.wait_for(3, settle=0)
        assert slow.times[-1] - slow.times[0] < 0.3  # all three began before the first ended
