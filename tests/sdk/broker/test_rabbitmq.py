"""RabbitMQ (aio-pika) against the real server on loopback: the contract, attempts, crashes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aio_pika
import aiormq
import pytest
from broker_contract import BrokerContract, Recorder, unique_name
from traced_contract import TracedBrokerContract

from tracebraid.errors import BrokerUnavailableError
from tracebraid.sdk.broker import (
    DEAD_LETTER_GROUP_HEADER,
    DEAD_LETTER_REASON_HEADER,
    Broker,
    Delivery,
    RetryPolicy,
    dead_letter_destination,
)
from tracebraid.sdk.broker.rabbitmq import DEFAULT_RABBITMQ_URL, RabbitMQBroker, queue_name
from tracebraid.sdk.carriers import CORRELATION_ID_HEADER, EVENT_ID_HEADER, EVENT_NAME_HEADER

pytestmark = pytest.mark.broker


class TestRabbitMQBroker(BrokerContract, TracedBrokerContract):
    @pytest.fixture
    async def broker(self) -> AsyncIterator[Broker]:
        async with RabbitMQBroker(DEFAULT_RABBITMQ_URL, temporary=True) as broker:
            yield broker

    @pytest.fixture
    def killable(self) -> tuple[str, str]:
        return "rabbitmq", DEFAULT_RABBITMQ_URL


async def test_an_unreachable_server_names_the_address_tried_without_its_password(
    closed_port: int,
) -> None:
    url = f"amqp://guest:secret@127.0.0.1:{closed_port}/"
    broker = RabbitMQBroker(url, connect_timeout=2.0)
    with pytest.raises(BrokerUnavailableError, match=rf"127\.0\.0\.1:{closed_port}") as caught:
        await broker.start()
    assert "secret" not in str(caught.value)
    assert "amqp://guest:***@" in str(caught.value)


async def test_a_message_crashing_every_consumer_is_dead_lettered_by_rabbitmq_itself() -> None:
    destination = unique_name()
    group = "send-warehouse-webhook"
    parked: list[Delivery] = []
    arrived = asyncio.Event()

    async def inspect(delivery: Delivery) -> None:
        parked.append(delivery)
        arrived.set()

    async def never_called(delivery: Delivery) -> None:
        raise AssertionError("the crashing consumer below takes every delivery")

    # The group's queue as the adapter declares it (x-delivery-limit 2), its member gone.
    async with RabbitMQBroker() as declaring:
        await declaring.subscribe(destination, group, never_called, retry=RetryPolicy(2))
    async with RabbitMQBroker(temporary=True) as broker:
        await broker.subscribe(dead_letter_destination(destination), "operators", inspect)
        connection = await aio_pika.connect(DEFAULT_RABBITMQ_URL)
        async with connection:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=1)
            queue = await channel.get_queue(queue_name(destination, group))
            await broker.publish(destination, b"poison", {"x-tenant": "acme"}, message_id="e1")
            # A consumer that dies on the message each time: it goes back, counted, and
            # after its second return RabbitMQ moves it to the dead-letter exchange.
            async with asyncio.timeout(10):
                while not arrived.is_set():
                    message = await queue.get(fail=False)
                    if message is not None:
                        await message.reject(requeue=True)
                    await asyncio.sleep(0.01)
                await arrived.wait()
            # What the declaring adapter left behind (it was not temporary).
            await queue.delete(if_unused=False, if_empty=False)
            await channel.queue_delete(dead_letter_destination(destination))
            await channel.exchange_delete(destination)
    [letter] = parked
    assert (letter.destination, letter.message_id, letter.payload) == (
        dead_letter_destination(destination),
        "e1",
        b"poison",
    )
    assert letter.headers["x-tenant"] == "acme"
    assert letter.headers[DEAD_LETTER_GROUP_HEADER] == group
    assert letter.headers[DEAD_LETTER_REASON_HEADER] == "RabbitMQ dead-lettered it: delivery_limit"


async def test_amqp_message_id_correlation_id_and_type_become_the_identity_headers() -> None:
    destination = unique_name()
    reserve = Recorder()

    async with RabbitMQBroker(temporary=True) as broker:
        await broker.subscribe(destination, "reserve-inventory", reserve)
        connection = await aio_pika.connect(DEFAULT_RABBITMQ_URL)
        async with connection:
            channel = await connection.channel()
            exchange = await channel.get_exchange(destination)
            plain = aio_pika.Message(
                b"{}", message_id="evt_77", correlation_id="order_77", type="order.placed"
            )
            await exchange.publish(plain, routing_key="")
        # One delivery so far: the adapter's own publish below is read raw, not delivered.
        [delivery] = await reserve.wait_for(1)
        sent = await broker_publish_and_read_properties(broker, destination)
    assert delivery.message_id == "evt_77"
    assert delivery.headers[EVENT_ID_HEADER] == "evt_77"
    assert delivery.headers[CORRELATION_ID_HEADER] == "order_77"
    assert delivery.headers[EVENT_NAME_HEADER] == "order.placed"
    # The adapter's publish carries those identities once, as properties, not as entries.
    assert (sent.message_id, sent.correlation_id, sent.type) == ("evt_78", "order_78", "paid")
    assert sent.headers == {"traceparent": "00-ab", "x-causation-id": "evt_1"}


async def test_identity_headers_the_properties_cannot_carry_stay_in_the_table() -> None:
    destination = unique_name()
    long_name = "order." + "x" * 300
    headers = {EVENT_ID_HEADER: "evt_other", EVENT_NAME_HEADER: long_name, "X-Correlation-Id": "o"}
    async with RabbitMQBroker(temporary=True) as broker:
        await broker.subscribe(destination, "g", _ignore)
        sent = await broker_publish_and_read_properties(broker, destination, headers)
    assert (sent.message_id, sent.correlation_id, sent.type) == ("evt_78", "o", None)
    assert sent.headers == headers


async def _ignore(delivery: Delivery) -> None:
    return None


async def broker_publish_and_read_properties(
    broker: RabbitMQBroker, destination: str, headers: dict[str, str] | None = None
) -> aio_pika.abc.AbstractIncomingMessage:
    """Publish through the adapter and read the raw AMQP message back from a queue of our own."""
    connection = await aio_pika.connect(DEFAULT_RABBITMQ_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(destination)
        if headers is None:
            headers = {
                "traceparent": "00-ab",
                CORRELATION_ID_HEADER: "order_78",
                EVENT_ID_HEADER: "evt_78",
                EVENT_NAME_HEADER: "paid",
                "x-causation-id": "evt_1",
            }
        await broker.publish(destination, b"{}", headers, message_id="evt_78")
        async with asyncio.timeout(10):
            while (message := await queue.get(fail=False)) is None:
                await asyncio.sleep(0.02)
        await message.ack()
        return message


async def test_a_temporary_broker_deletes_what_it_declared_and_dead_letters_stay_parked() -> None:
    destination = unique_name()

    async def fail(delivery: Delivery) -> None:
        raise TimeoutError("warehouse API did not answer")

    async with RabbitMQBroker() as broker:
        await broker.subscribe(destination, "send-warehouse-webhook", fail, retry=RetryPolicy(1))
        await broker.publish(destination, b"{}", {}, message_id="e1")
        connection = await aio_pika.connect(DEFAULT_RABBITMQ_URL)
        async with connection:
            channel = await connection.channel()
            parking = await channel.get_queue(dead_letter_destination(destination))
            async with asyncio.timeout(10):
                while (message := await parking.get(fail=False)) is None:
                    await asyncio.sleep(0.02)
            await message.nack(requeue=True)
        assert message.headers[DEAD_LETTER_GROUP_HEADER] == "send-warehouse-webhook"
        broker.temporary = True  # this run's queues are kept until close; now let them go
    connection = await aio_pika.connect(DEFAULT_RABBITMQ_URL)
    async with connection:
        for name in (queue_name(destination, "send-warehouse-webhook"), f"{destination}.dlq"):
            channel = await connection.channel()
            with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
                await channel.declare_queue(name, passive=True)
