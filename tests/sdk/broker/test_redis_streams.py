"""Redis Streams against the real server on loopback: the contract, attempts, crashes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio
from broker_contract import BrokerContract, Recorder, unique_name
from traced_contract import TracedBrokerContract

from tracebraid.errors import BrokerUnavailableError, ConfigurationError
from tracebraid.sdk.broker import Broker, Delivery, dead_letter_destination
from tracebraid.sdk.broker._redis_entries import entry_delivery, entry_fields
from tracebraid.sdk.broker.redis_streams import DEFAULT_REDIS_URL, RedisStreamsBroker

pytestmark = pytest.mark.broker


class TestRedisStreamsBroker(BrokerContract, TracedBrokerContract):
    @pytest.fixture
    async def broker(self) -> AsyncIterator[Broker]:
        async with RedisStreamsBroker(DEFAULT_REDIS_URL, claim_after=1.0, temporary=True) as broker:
            yield broker

    @pytest.fixture
    def killable(self) -> tuple[str, str]:
        return "redis", DEFAULT_REDIS_URL


@pytest.fixture
def stream() -> str:
    return unique_name()


async def test_an_unreachable_server_names_the_address_tried(closed_port: int) -> None:
    url = f"redis://:secret@127.0.0.1:{closed_port}/0"
    with pytest.raises(BrokerUnavailableError, match=rf"127\.0\.0\.1:{closed_port}") as caught:
        await RedisStreamsBroker(url, connect_timeout=2.0).start()
    assert "secret" not in str(caught.value)


async def test_headers_are_stream_fields_and_a_foreign_entry_is_delivered_whole(
    stream: str,
) -> None:
    reserve = Recorder()

    async with RedisStreamsBroker(temporary=True) as broker:
        await broker.subscribe(stream, "reserve-inventory", reserve)
        headers = {"traceparent": "00-ab", "x-event-id": "evt_1"}
        await broker.publish(stream, b"\x00binary", headers, message_id="evt_1")
        client = redis.asyncio.Redis.from_url(DEFAULT_REDIS_URL)
        [(_, ours)] = await client.xrange(stream)
        # Another producer's entry: plain fields, no tracebraid payload field.
        entry_id = await client.xadd(stream, {"traceparent": "00-cd", "order_id": "order_5"})
        await client.aclose()
        received = await reserve.wait_for(2)
    # The headers travel as one field; the event ID once, as tb:message-id, and is
    # delivered as its header too.
    assert sorted(ours) == [b"tb:headers", b"tb:message-id", b"tb:payload"]
    assert json.loads(ours[b"tb:headers"]) == {"traceparent": "00-ab"}
    assert ours[b"tb:message-id"] == b"evt_1"
    first, foreign = received
    assert (first.payload, first.message_id, dict(first.headers)) == (
        b"\x00binary",
        "evt_1",
        {"traceparent": "00-ab", "x-event-id": "evt_1"},
    )
    assert "x-event-id" not in foreign.headers
    assert foreign.message_id == entry_id.decode()
    assert foreign.headers["traceparent"] == "00-cd"
    assert json.loads(foreign.payload) == {"traceparent": "00-cd", "order_id": "order_5"}


async def test_entries_with_a_field_per_header_or_odd_packed_headers_are_read(
    stream: str,
) -> None:
    reserve = Recorder()

    async with RedisStreamsBroker(temporary=True) as broker:
        await broker.subscribe(stream, "reserve-inventory", reserve)
        client = redis.asyncio.Redis.from_url(DEFAULT_REDIS_URL)
        entry = {"tb:payload": b"{}", "tb:message-id": "evt_1"}
        # An earlier tracebraid's entry: a field per header.
        await client.xadd(stream, {**entry, "traceparent": "00-ab", "x-event-name": "paid"})
        # Packed headers beside a field of their own; a value that is no text is ignored.
        packed = json.dumps({"traceparent": "00-cd", "x-attempts": [1, 2]})
        await client.xadd(stream, {**entry, "tb:headers": packed, "x-tenant": "acme"})
        await client.xadd(stream, {**entry, "tb:headers": "not json"})
        await client.aclose()
        received = await reserve.wait_for(3)
    assert [dict(d.headers) for d in received] == [
        {"traceparent": "00-ab", "x-event-name": "paid", "x-event-id": "evt_1"},
        {"x-tenant": "acme", "traceparent": "00-cd", "x-event-id": "evt_1"},
        {"x-event-id": "evt_1"},
    ]
    assert {d.payload for d in received} == {b"{}"}


def test_header_values_that_are_not_text_read_back_as_a_field_of_their_own_would() -> None:
    headers: dict[str, Any] = {"n": 5, "f": 1.5, "b": b"bytes", "bad": b"\xff", "t": "text"}
    fields = entry_fields(b"{}", headers, "evt_1")
    raw = {k.encode(): v if isinstance(v, bytes) else str(v).encode() for k, v in fields.items()}
    delivered = entry_delivery("orders", "g", b"1-0", raw, 1).headers
    assert dict(delivered) == {
        "n": "5",
        "f": "1.5",
        "b": "bytes",
        "t": "text",
        "x-event-id": "evt_1",
    }


async def test_headers_may_not_use_the_reserved_field_prefix(stream: str) -> None:
    async with RedisStreamsBroker(temporary=True) as broker:
        with pytest.raises(ConfigurationError, match="tb:"):
            await broker.publish(stream, b"", {"tb:payload": "x"}, message_id="e1")


async def test_close_leaves_pending_entries_for_the_group_and_temporary_deletes_streams(
    stream: str,
) -> None:
    started = asyncio.Event()

    async def hang(delivery: Delivery) -> None:
        started.set()
        await asyncio.Event().wait()

    client = redis.asyncio.Redis.from_url(DEFAULT_REDIS_URL)
    try:
        async with RedisStreamsBroker() as broker:
            await broker.subscribe(stream, "award-loyalty-points", hang)
            await broker.publish(stream, b"{}", {}, message_id="e1")
            async with asyncio.timeout(10):
                await started.wait()
        summary = await client.xpending(stream, "award-loyalty-points")
        assert summary["pending"] == 1  # still owed to the group: another member claims it
        async with RedisStreamsBroker(temporary=True) as broker:
            await broker.subscribe(stream, "award-loyalty-points", hang)
            await broker.publish(dead_letter_destination(stream), b"", {}, message_id="e2")
        assert await client.exists(stream, dead_letter_destination(stream)) == 0
    finally:
        await client.delete(stream, dead_letter_destination(stream))
        await client.aclose()
