"""The in-process broker keeps the ``Broker`` contract: fan-out, competition, retries, DLQ."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from tracebraid.errors import BrokerUnavailableError, ConfigurationError
from tracebraid.sdk.broker import (
    DEAD_LETTER_GROUP_HEADER,
    DEAD_LETTER_REASON_HEADER,
    Broker,
    Delivery,
    InMemoryBroker,
    RetryPolicy,
    dead_letter_destination,
)


class Recorder:
    """A handler that remembers each delivery and when it arrived; fails while told to."""

    def __init__(self, *, fail_until: int = 0, work: float = 0.0) -> None:
        self.deliveries: list[Delivery] = []
        self.times: list[float] = []
        self.fail_until = fail_until
        self.work = work

    async def __call__(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        self.times.append(time.monotonic())
        if self.work:
            await asyncio.sleep(self.work)
        if delivery.delivery_count <= self.fail_until:
            raise TimeoutError(f"attempt {delivery.delivery_count} timed out")


async def test_in_memory_broker_satisfies_the_broker_protocol() -> None:
    async with InMemoryBroker() as broker:
        assert isinstance(broker, Broker)
        assert broker.system == "memory"


async def test_each_group_gets_its_own_copy() -> None:
    payment, inventory = Recorder(), Recorder()
    async with InMemoryBroker() as broker:
        await broker.subscribe("orders", "authorize-payment", payment)
        await broker.subscribe("orders", "reserve-inventory", inventory)
        await broker.publish(
            "orders", b"order 1", {"x-event-name": "order.placed"}, message_id="e1"
        )
        await broker.join()
    for recorder, group in ((payment, "authorize-payment"), (inventory, "reserve-inventory")):
        [delivery] = recorder.deliveries
        assert delivery.group == group
        assert delivery.destination == "orders"
        assert (delivery.message_id, delivery.payload) == ("e1", b"order 1")
        assert dict(delivery.headers) == {"x-event-name": "order.placed"}
        assert delivery.delivery_count == 1
        assert not delivery.redelivered


async def test_members_of_one_group_compete_for_messages() -> None:
    first, second = Recorder(work=0.005), Recorder(work=0.005)
    async with InMemoryBroker() as broker:
        await broker.subscribe("orders", "reserve-inventory", first)
        await broker.subscribe("orders", "reserve-inventory", second)
        for n in range(20):
            await broker.publish("orders", b"", {}, message_id=f"e{n}")
        await broker.join()
    seen = [d.message_id for d in first.deliveries + second.deliveries]
    assert sorted(seen) == sorted(f"e{n}" for n in range(20))
    assert first.deliveries and second.deliveries


async def test_a_failed_delivery_comes_back_with_its_count_after_the_backoff() -> None:
    webhook = Recorder(fail_until=2)
    policy = RetryPolicy(max_attempts=3, backoff=(0.04, 0.08))
    async with InMemoryBroker() as broker:
        await broker.subscribe("inventory", "send-warehouse-webhook", webhook, retry=policy)
        await broker.publish("inventory", b"", {}, message_id="e1")
        await broker.join()
        assert broker.dead_letters == ()
    assert [d.delivery_count for d in webhook.deliveries] == [1, 2, 3]
    assert [d.redelivered for d in webhook.deliveries] == [False, True, True]
    assert {d.message_id for d in webhook.deliveries} == {"e1"}
    gaps = [later - earlier for earlier, later in itertools.pairwise(webhook.times)]
    assert gaps[0] >= 0.04 and gaps[1] >= 0.08


async def test_a_retry_does_not_hold_up_other_messages() -> None:
    webhook = Recorder(fail_until=1)
    async with InMemoryBroker() as broker:
        await broker.subscribe(
            "inventory", "send-warehouse-webhook", webhook, retry=RetryPolicy(3, (0.05,))
        )
        await broker.publish("inventory", b"", {}, message_id="e1")
        await broker.publish("inventory", b"", {}, message_id="e2")
        await broker.join()
    order = [(d.message_id, d.delivery_count) for d in webhook.deliveries]
    assert order == [("e1", 1), ("e2", 1), ("e1", 2), ("e2", 2)]


async def test_after_the_last_attempt_the_message_is_dead_lettered_with_its_headers() -> None:
    webhook, dlq = Recorder(fail_until=99), Recorder()
    async with InMemoryBroker() as broker:
        await broker.subscribe(
            "inventory", "send-warehouse-webhook", webhook, retry=RetryPolicy(max_attempts=2)
        )
        await broker.subscribe(dead_letter_destination("inventory"), "operators", dlq)
        await broker.publish("inventory", b"body", {"traceparent": "00-ab"}, message_id="e1")
        await broker.join()
        [dead] = broker.dead_letters
    assert [d.delivery_count for d in webhook.deliveries] == [1, 2]
    assert (dead.group, dead.delivery_count, dead.message_id) == ("send-warehouse-webhook", 2, "e1")
    [parked] = dlq.deliveries
    assert parked.destination == "inventory.dlq"
    assert (parked.message_id, parked.payload) == ("e1", b"body")
    assert parked.headers["traceparent"] == "00-ab"
    assert parked.headers[DEAD_LETTER_GROUP_HEADER] == "send-warehouse-webhook"
    assert parked.headers[DEAD_LETTER_REASON_HEADER] == "TimeoutError: attempt 2 timed out"


async def test_a_delayed_group_lags_behind_its_siblings() -> None:
    payment, summary = Recorder(), Recorder()
    async with InMemoryBroker() as broker:
        await broker.subscribe("payments", "award-loyalty-points", payment)
        await broker.subscribe("payments", "project-order-summary", summary, delay=0.1)
        published = time.monotonic()
        await broker.publish("payments", b"", {}, message_id="e1")
        await broker.join()
    assert payment.times[0] - published < 0.05
    assert summary.times[0] - published >= 0.1


async def test_concurrency_lets_one_member_process_several_deliveries_at_once() -> None:
    slow = Recorder(work=0.1)
    async with InMemoryBroker() as broker:
        await broker.subscribe("payments", "award-loyalty-points", slow, concurrency=3)
        started = time.monotonic()
        for n in range(3):
            await broker.publish("payments", b"", {}, message_id=f"e{n}")
        await broker.join()
        elapsed = time.monotonic() - started
    assert len(slow.deliveries) == 3
    assert elapsed < 0.25  # three 0.1 s handlers side by side, not one after another


async def test_join_can_leave_a_stuck_group_out_and_close_cancels_it() -> None:
    stuck_started, cancelled = asyncio.Event(), asyncio.Event()

    async def stuck(delivery: Delivery) -> None:
        stuck_started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    summary = Recorder()
    broker = InMemoryBroker()
    async with broker:
        await broker.subscribe("payments", "award-loyalty-points", stuck)
        await broker.subscribe("payments", "project-order-summary", summary)
        await broker.publish("payments", b"", {}, message_id="e1")
        async with asyncio.timeout(2):
            await broker.join(exclude_groups={"award-loyalty-points"})
            await stuck_started.wait()
        assert len(summary.deliveries) == 1
    assert cancelled.is_set()
    with pytest.raises(BrokerUnavailableError, match="closed"):
        await broker.publish("payments", b"", {}, message_id="e2")


async def test_messages_before_any_group_subscribed_are_not_kept() -> None:
    late = Recorder()
    async with InMemoryBroker() as broker:
        await broker.publish("orders", b"", {}, message_id="early")
        await broker.subscribe("orders", "reserve-inventory", late)
        await broker.publish("orders", b"", {}, message_id="late")
        await broker.join()
    assert [d.message_id for d in late.deliveries] == ["late"]


async def test_using_a_broker_that_was_not_started_says_how_to_start_it() -> None:
    broker = InMemoryBroker()
    with pytest.raises(BrokerUnavailableError, match="async with InMemoryBroker"):
        await broker.publish("orders", b"", {}, message_id="e1")


async def test_a_bad_subscription_is_refused_and_the_existing_one_keeps_working() -> None:
    summary = Recorder()
    async with InMemoryBroker() as broker:
        await broker.subscribe("payments", "project-order-summary", summary, delay=0.01)
        with pytest.raises(ConfigurationError, match="same delay"):
            await broker.subscribe("payments", "project-order-summary", Recorder(), delay=0.5)
        with pytest.raises(ConfigurationError, match="concurrency"):
            await broker.subscribe("payments", "other", Recorder(), concurrency=0)
        with pytest.raises(ConfigurationError, match="destination and a group"):
            await broker.subscribe("", "other", Recorder())
        await broker.publish("payments", b"", {}, message_id="e1")
        await broker.join()
    assert [d.message_id for d in summary.deliveries] == ["e1"]


def test_retry_policy_backoff_repeats_its_last_value_and_scales() -> None:
    policy = RetryPolicy(max_attempts=5, backoff=(0.2, 0.4))
    assert [policy.delay_after(n) for n in range(1, 5)] == [0.2, 0.4, 0.4, 0.4]
    assert [policy.is_final(n) for n in (4, 5)] == [False, True]
    assert policy.scaled(0.5).backoff == (0.1, 0.2)
    assert RetryPolicy.exponential(0.1, max_attempts=4).backoff == pytest.approx((0.1, 0.2, 0.4))


@pytest.mark.parametrize(
    ("max_attempts", "backoff", "message"),
    [(0, (0.0,), "at least 1"), (3, (), "non-empty"), (3, (0.1, -1.0), "seconds >= 0")],
)
def test_a_bad_retry_policy_says_what_was_wrong(
    max_attempts: int, backoff: tuple[float, ...], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RetryPolicy(max_attempts, backoff)
