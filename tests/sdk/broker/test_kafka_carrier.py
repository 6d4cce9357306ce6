"""Kafka's carrier through aiokafka's own record codec, without a broker round trip.

The consume loop runs against tansu in ``test_kafka.py``; here: the record headers the
adapter writes, encoded and decoded by aiokafka's record batch codec into the
``ConsumerRecord`` its fetcher hands out; the ``Delivery`` read back from it and the
context the traced layer restores; the header attempt counter across retries (plus
the processing marker's earlier starts) and the dead-letter record; and the real
client failing against a closed port.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from aiokafka.structs import ConsumerRecord

from tracebraid import semconv
from tracebraid.errors import BrokerUnavailableError, ConfigurationError
from tracebraid.sdk import consuming, extract, publishing
from tracebraid.sdk.broker import (
    DEAD_LETTER_GROUP_HEADER,
    DEAD_LETTER_REASON_HEADER,
    Delivery,
    KafkaBroker,
    RetryPolicy,
)
from tracebraid.sdk.broker.kafka import (
    MESSAGE_ID_HEADER,
    NOT_BEFORE_HEADER,
    delivery_from_record,
    lost_too_often,
    next_record,
    record_headers,
    retry_topic,
)
from tracebraid.sdk.context import correlation
from tracebraid.testing import SpanCapture


def through_kafka(
    topic: str, value: bytes, headers: Sequence[tuple[str, bytes]], *, offset: int = 0
) -> ConsumerRecord[bytes, bytes]:
    """Encode one record as aiokafka's producer does, decode it as its fetcher does."""
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    builder.append(offset, timestamp=None, key=None, value=value, headers=list(headers))
    [record] = list(DefaultRecordBatch(bytes(builder.build())))
    return ConsumerRecord(
        topic,
        0,
        record.offset,
        record.timestamp,
        record.timestamp_type,
        record.key,
        record.value,
        record.checksum,
        0,
        len(value),
        tuple(record.headers),
    )


def test_the_published_context_survives_kafkas_record_codec(captured: SpanCapture) -> None:
    with correlation("order_441"), publishing("order.placed", destination="orders") as sent:
        headers = record_headers(sent.headers(), message_id=str(sent.message.event_id))
    assert all(isinstance(n, str) and isinstance(v, bytes) for n, v in headers)
    record = through_kafka("orders", b'{"order_id":"order_441"}', headers)
    delivery, not_before = delivery_from_record(record, destination="orders", group="payment")
    assert not_before is None
    assert (delivery.message_id, delivery.delivery_count) == (sent.message.event_id, 1)
    assert delivery.payload == b'{"order_id":"order_441"}'
    incoming = extract(delivery.headers)
    assert incoming.has_parent
    assert incoming.context.trace_id == sent.message.trace_id
    assert incoming.context.correlation_id == "order_441"
    with consuming(
        incoming,
        step="authorize-payment",
        consumer=delivery.group,
        destination="orders",
        system="kafka",
        attempt=delivery.delivery_count,
    ):
        pass
    [producer] = captured.named("order.placed publish")
    [consumer] = captured.named("authorize-payment")
    assert consumer.parent_span_id == producer.span_id
    assert consumer.attributes[semconv.MESSAGE_ID] == sent.message.event_id
    assert consumer.attributes[semconv.ATTEMPT] == 1


def test_retries_count_attempts_in_a_header_then_dead_letter() -> None:
    retry = RetryPolicy(max_attempts=3, backoff=(0.2, 0.4))
    headers = record_headers({"traceparent": "00-ab", "x-tenant": "acme"}, message_id="evt_1")
    record = through_kafka("inventory", b"{}", headers)
    seen: list[tuple[str, int, int | None]] = []
    now_ms = 1_000_000
    for _ in range(3):
        delivery, not_before = delivery_from_record(
            record, destination="inventory", group="send-warehouse-webhook"
        )
        seen.append((record.topic, delivery.delivery_count, not_before))
        topic, headers = next_record(
            delivery, TimeoutError("no answer"), retry=retry, now_ms=now_ms
        )
        record = through_kafka(topic, delivery.payload, headers, offset=record.offset + 1)
    webhook_retries = retry_topic("inventory", "send-warehouse-webhook")
    assert seen == [
        ("inventory", 1, None),
        (webhook_retries, 2, now_ms + 200),
        (webhook_retries, 3, now_ms + 400),
    ]
    assert record.topic == "inventory.dlq"
    parked, _ = delivery_from_record(record, destination="inventory.dlq", group="operators")
    assert parked.message_id == "evt_1"
    assert parked.headers["traceparent"] == "00-ab"
    assert parked.headers["x-tenant"] == "acme"
    assert parked.headers[DEAD_LETTER_GROUP_HEADER] == "send-warehouse-webhook"
    assert parked.headers[DEAD_LETTER_REASON_HEADER] == "TimeoutError: no answer"
    assert parked.delivery_count == 1  # a fresh message in the dead-letter topic


def test_earlier_starts_from_the_processing_marker_add_to_the_header_attempt() -> None:
    headers = record_headers({}, message_id="evt_1", attempt=2)
    record = through_kafka("inventory.retry.webhook", b"{}", headers)
    delivery, _ = delivery_from_record(
        record, destination="inventory", group="webhook", earlier_starts=1
    )
    assert (delivery.delivery_count, delivery.redelivered) == (3, True)
    assert lost_too_often(delivery, RetryPolicy(3), 1) is None
    parked = lost_too_often(delivery, RetryPolicy(2), 1)
    assert parked is not None and parked.destination == "inventory.dlq"
    assert parked.headers[DEAD_LETTER_GROUP_HEADER] == "webhook"


def test_a_record_from_another_producer_keeps_what_it_can() -> None:
    stock = [
        ("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ("binary", b"\xff\xfe"),
        ("x-attempt", b"two"),
    ]
    record = through_kafka("orders", b"{}", stock, offset=41)
    delivery, _ = delivery_from_record(record, destination="orders", group="payment")
    assert delivery.message_id == "orders/0/41"
    assert delivery.delivery_count == 1
    assert dict(delivery.headers) == {"traceparent": stock[0][1].decode()}
    assert extract(delivery.headers).context.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_the_adapters_own_headers_are_not_duplicated_when_a_delivery_is_sent_on() -> None:
    first = Delivery("inventory", "warehouse", "evt_1", b"", {MESSAGE_ID_HEADER: "stale"}, 2)
    topic, headers = next_record(first, ValueError(), retry=RetryPolicy(3), now_ms=0)
    names = [name for name, _ in headers]
    assert topic == "inventory.retry.warehouse"
    assert sorted(names) == sorted({*names})
    assert dict(headers)[MESSAGE_ID_HEADER] == b"evt_1"
    assert dict(headers)[NOT_BEFORE_HEADER] == b"0"


def test_retry_topic_names_are_legal_kafka_topic_names() -> None:
    assert retry_topic("orders", "reserve inventory/v2") == "orders.retry.reserve_inventory_v2"


async def test_an_unreachable_kafka_names_the_address_tried(closed_port: int) -> None:
    broker = KafkaBroker(f"127.0.0.1:{closed_port}", connect_timeout=2.0)
    with pytest.raises(BrokerUnavailableError, match=rf"kafka://127\.0\.0\.1:{closed_port}"):
        await broker.start()


def test_a_session_timeout_of_zero_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="session_timeout must be above 0 s, got 0"):
        KafkaBroker(session_timeout=0)
