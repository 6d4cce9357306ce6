"""Attribute names: each identity's aliases, and ``first_of`` resolving them."""

from __future__ import annotations

from tracebraid import semconv


def test_each_alias_tuple_starts_with_its_canonical_key_and_names_no_key_twice() -> None:
    for canonical, keys in semconv.ALIASES.items():
        assert keys[0] == canonical
        assert len(set(keys)) == len(keys), canonical


def test_first_of_prefers_the_canonical_key_and_skips_empty_values() -> None:
    attributes = {
        "messaging.kafka.consumer_group": "old",
        "messaging.kafka.consumer.group": "",
        semconv.CONSUMER_GROUP: "new",
    }
    assert semconv.first_of(attributes, semconv.CONSUMER_GROUP) == "new"
    del attributes[semconv.CONSUMER_GROUP]
    assert semconv.first_of(attributes, semconv.CONSUMER_GROUP) == "old"
    assert semconv.first_of({"messaging.conversation_id": "order_1"}, semconv.CORRELATION_ID) == (
        "order_1"
    )
    assert semconv.first_of({}, semconv.STEP) is None
