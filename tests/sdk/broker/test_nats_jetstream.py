"""NATS JetStream against the real server on loopback: the contract, attempts, crashes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import nats
import pytest
from broker_contract import BrokerContract, Recorder, unique_name
from nats.js.errors import NotFoundError
from traced_contract import TracedBrokerContract

from tracebraid.errors import BrokerUnavailableError, ConfigurationError
from tracebraid.sdk.broker import (
    DEAD_LETTER_GROUP_HEADER,
    Broker,
    Delivery,
    RetryPolicy,
    dead_letter_destination,
)
from tracebraid.sdk.broker.nats_jetstream import (
    DEFAULT_NATS_URL,
    NatsJetStreamBroker,
    jetstream_name,
)

pytestmark = pytest.mark.broker


class TestNatsJetStreamBroker(BrokerContract, TracedBrokerContract):
    @pytest.fixture
    async def broker(self) -> AsyncIterator[Broker]:
        async with NatsJetStreamBroker(DEFAULT_NATS_URL, ack_wait=2.0, temporary=True) as broker:
            yield broker

    @pytest.fixture
    def killable(self) -> tuple[str, str]:
        return "nats", DEFAULT_NATS_URL


@pytest.fixture
def subject() -> str:
    return unique_name() + ".orders"


async def test_an_unreachable_server_names_the_address_tried(closed_port: int) -> None:
    url = f"nats://127.0.0.1:{closed_port}"
    with pytest.raises(
        BrokerUnavailableError, match=rf"127\.0\.0\.1:{closed_port}.*ConnectionRefusedError"
    ):
        await NatsJetStreamBroker(url, connect_timeout=1.0).start()


def test_destinations_jetstream_cannot_name_get_distinct_safe_names() -> None:
    assert jetstream_name("orders") == "orders"
    dotted, underscored = jetstream_name("tb.orders"), jetstream_name("tb_orders")
    assert dotted.startswith("tb_orders-") and underscored == "tb_orders"
    assert dotted != underscored


async def test_jetstream_drops_a_second_publish_of_one_event_id(subject: str) -> None:
    reserve = Recorder()

    async with NatsJetStreamBroker(temporary=True) as broker:
        await broker.subscribe(subject, "reserve-inventory", reserve)
        await broker.publish(subject, b"1", {"traceparent": "00-ab"}, message_id="evt_1")
        await broker.publish(subject, b"1", {"traceparent": "00-ab"}, message_id="evt_1")
        await broker.publish(subject, b"2", {}, message_id="evt_2")
        received = await reserve.wait_for(2, settle=0.2)
    assert [(d.message_id, d.payload) for d in received] == [("evt_1", b"1"), ("evt_2", b"2")]
    # Nats-Msg-Id is the event ID, so the delivery names it as x-event-id too.
    assert dict(received[0].headers) == {"traceparent": "00-ab", "x-event-id": "evt_1"}


async def test_the_event_id_travels_once_as_nats_msg_id(subject: str) -> None:
    reserve = Recorder()
    wire: list[dict[str, str]] = []

    async def tap(message: nats.aio.msg.Msg) -> None:
        wire.append(dict(message.headers or {}))

    raw = await nats.connect(DEFAULT_NATS_URL)
    try:
        await raw.subscribe(subject, cb=tap)
        await raw.flush()
        async with NatsJetStreamBroker(temporary=True) as broker:
            await broker.subscribe(subject, "reserve-inventory", reserve)
            headers = {"x-event-id": "evt_1", "x-tenant": "acme"}
            await broker.publish(subject, b"1", headers, message_id="evt_1")
            other = {"x-event-id": "evt_other"}
            await broker.publish(subject, b"2", other, message_id="evt_2")
            received = await reserve.wait_for(2)
            async with asyncio.timeout(10):
                while len(wire) < 2:
                    await asyncio.sleep(0.01)
    finally:
        await raw.close()
    first, second = wire
    assert "x-event-id" not in first and first["Nats-Msg-Id"] == "evt_1"
    assert (second["x-event-id"], second["Nats-Msg-Id"]) == ("evt_other", "evt_2")
    assert [dict(d.headers) for d in received] == [headers, other]


async def test_a_subject_with_wildcards_is_refused(subject: str) -> None:
    async with NatsJetStreamBroker(temporary=True) as broker:
        with pytest.raises(ConfigurationError, match="not a NATS subject"):
            await broker.publish(subject + ".*", b"", {}, message_id="e1")


async def test_dead_letters_stay_parked_and_temporary_deletes_the_streams(subject: str) -> None:
    async def fail(delivery: Delivery) -> None:
        raise TimeoutError("warehouse API did not answer")

    client = await nats.connect(DEFAULT_NATS_URL)
    js = client.jetstream()
    parking = jetstream_name(dead_letter_destination(subject))
    try:
        async with NatsJetStreamBroker(temporary=True) as broker:
            await broker.subscribe(subject, "send-warehouse-webhook", fail, retry=RetryPolicy(1))
            await broker.publish(subject, b"{}", {}, message_id="e1")
            async with asyncio.timeout(10):
                while (await js.stream_info(parking)).state.messages == 0:
                    await asyncio.sleep(0.02)
            parked = await js.get_last_msg(parking, dead_letter_destination(subject))
            assert parked.headers is not None
            assert parked.headers[DEAD_LETTER_GROUP_HEADER] == "send-warehouse-webhook"
        for stream in (jetstream_name(subject), parking):
            with pytest.raises(NotFoundError):
                await js.stream_info(stream)
    finally:
        await client.close()
