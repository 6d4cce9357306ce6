"""The in-process broker keeps the ``Broker`` contract, plus what only it offers (``join``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from broker_contract import BrokerContract, Recorder

from tracebraid.errors import BrokerUnavailableError, ConfigurationError
from tracebraid.sdk.broker import Broker, Delivery, InMemoryBroker, RetryPolicy


class TestInMemoryBroker(BrokerContract):
    @pytest.fixture
    async def broker(self) -> AsyncIterator[Broker]:
        async with InMemoryBroker() as broker:
            yield broker


async def test_join_waits_for_retries_and_dead_letters_and_keeps_them() -> None:
    webhook, summary = Recorder(fail_until=99), Recorder()
    async with InMemoryBroker() as broker:
        await broker.subscribe(
            "inventory", "send-warehouse-webhook", webhook, retry=RetryPolicy(3, (0.02,))
        )
        await broker.subscribe("inventory", "project-order-summary", summary, delay=0.05)
        await broker.publish("inventory", b"", {}, message_id="e1")
        await broker.join()
        assert broker.system == "memory"
        [dead] = broker.dead_letters
    assert len(webhook.deliveries) == 3 and len(summary.deliveries) == 1
    assert (dead.group, dead.delivery_count, dead.message_id) == ("send-warehouse-webhook", 3, "e1")


async def test_competing_members_both_get_work() -> None:
    first, second = Recorder(work=0.005), Recorder(work=0.005)
    async with InMemoryBroker() as broker:
        await broker.subscribe("orders", "reserve-inventory", first)
        await broker.subscribe("orders", "reserve-inventory", second)
        for n in range(20):
            await broker.publish("orders", b"", {}, message_id=f"e{n}")
        await broker.join()
    assert len(first.deliveries) + len(second.deliveries) == 20
    assert first.deliveries and second.deliveries


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
    with pytest.raises(BrokerUnavailableError, match="create a new one"):
        await broker.start()


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
        started = time.monotonic()
        await broker.publish("payments", b"", {}, message_id="e1")
        await broker.join()
    assert [d.message_id for d in summary.deliveries] == ["e1"]
    assert summary.times[0] - started >= 0.01


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
