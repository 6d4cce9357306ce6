"""Span <-> otel_traces row mapping: exact for tracebraid's rows, tolerant for the Collector's."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracebraid.errors import InputError
from tracebraid.model import AttributeValue, SpanKind, StatusCode
from tracebraid.store.clickhouse.codec import (
    TYPES_KEY,
    decode_attributes,
    encode_attributes,
    kind_from_text,
    status_from_text,
)

_text = st.text(max_size=20)
_ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_floats = st.floats(allow_nan=False)
_values: st.SearchStrategy[AttributeValue] = st.one_of(
    _text,
    st.booleans(),
    _ints,
    _floats,
    st.lists(_text, max_size=4).map(tuple),
    st.lists(st.booleans(), min_size=1, max_size=4).map(tuple),
    st.lists(_ints, min_size=1, max_size=4).map(tuple),
    st.lists(_floats, min_size=1, max_size=4).map(tuple),
)
_keys = st.text(min_size=1, max_size=30).filter(lambda key: key != TYPES_KEY)


@given(st.dictionaries(_keys, _values, max_size=8))
def test_every_attribute_type_round_trips_through_a_string_map(
    attributes: dict[str, AttributeValue],
) -> None:
    encoded = encode_attributes(attributes)
    assert all(isinstance(value, str) for value in encoded.values())
    assert decode_attributes(encoded) == attributes


def test_string_only_attributes_add_no_type_record() -> None:
    encoded = encode_attributes({"messaging.message.id": "42", "note": "true"})
    assert TYPES_KEY not in encoded
    # "42" and "true" stay strings: a string event ID must never turn into a number.
    assert decode_attributes(encoded) == {"messaging.message.id": "42", "note": "true"}


def test_collector_rows_parse_the_conventional_numeric_keys_only() -> None:
    collector = {
        "tracebraid.attempt": "3",
        "tracebraid.dead_letter": "true",
        "tracebraid.backoff_ms": "200",
        "messaging.batch.message_count": "not-a-number",
        "messaging.message.id": "17",
    }
    assert decode_attributes(collector) == {
        "tracebraid.attempt": 3,
        "tracebraid.dead_letter": True,
        "tracebraid.backoff_ms": 200.0,
        "messaging.batch.message_count": "not-a-number",  # kept as written
        "messaging.message.id": "17",
    }


def test_the_type_record_key_is_reserved() -> None:
    with pytest.raises(InputError, match="reserved"):
        encode_attributes({TYPES_KEY: "x"})


@pytest.mark.parametrize("kind", list(SpanKind))
def test_both_spellings_of_span_kinds(kind: SpanKind) -> None:
    assert kind_from_text(kind.name.title()) is kind  # "Producer": pdata's String()
    assert kind_from_text(f"SPAN_KIND_{kind.name}") is kind  # the exporter before 2023


@pytest.mark.parametrize("status", list(StatusCode))
def test_both_spellings_of_status_codes(status: StatusCode) -> None:
    assert status_from_text(status.name.title()) is status
    assert status_from_text(f"STATUS_CODE_{status.name}") is status


def test_unknown_spellings_read_as_unspecified_and_unset() -> None:
    assert kind_from_text("Sideways") is SpanKind.UNSPECIFIED
    assert status_from_text("") is StatusCode.UNSET
