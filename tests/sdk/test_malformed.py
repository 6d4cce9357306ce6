"""Malformed carriers and envelopes: a reason, never an exception, never an invented parent."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracebraid.sdk import extract, extract_envelope

GOOD = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("traceparent", "reason"),
    [
        ("xyz", "traceparent 'xyz' is malformed"),
        ("00-" + "0" * 32 + "-00f067aa0ba902b7-01", "all-zero trace ID"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01", "all-zero parent span ID"),
        ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "forbidden version 'ff'"),
        (GOOD + "-extra", "unexpected trailing data"),
        (GOOD.upper(), "is malformed"),
        (GOOD + "0" * 600, "over the 512 limit"),
        (b"\xff\xfe-not-utf8", "not UTF-8"),
        (7, "is a int, expected str or bytes"),
    ],
)
def test_bad_traceparent_gives_no_parent_with_the_reason_and_keeps_identities(
    traceparent: object, reason: str
) -> None:
    extracted = extract(
        {"traceparent": traceparent, "x-correlation-id": "order_441", "x-event-id": "evt_1"}
    )
    assert not extracted.has_parent
    assert extracted.no_parent is not None
    assert reason in extracted.no_parent.reason
    assert extracted.context.trace_id is None and extracted.context.span_id is None
    assert extracted.context.correlation_id == "order_441"
    assert extracted.context.event_id == "evt_1"


def test_missing_traceparent_says_so() -> None:
    extracted = extract({"x-event-id": "evt_1"})
    assert extracted.no_parent is not None
    assert "no traceparent" in extracted.no_parent.reason


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({"baggage": "correlation_id=order_441," + "k=" + "v" * 9000}, "over the W3C limit"),
        ({"baggage": "correlation_id=order_441,novalue,=x"}, "2 of 3 list-members"),
        ({"x-correlation-id": b"order\xff"}, "'x-correlation-id' is not UTF-8"),
        ({"x-attempt": "abc"}, "attempt 'abc' is not a whole number"),
        ({"x-attempt": "0"}, "attempt '0' is not a whole number"),
        ({"x-event-name": 3.5}, "is a float"),
    ],
)
def test_other_malformations_are_problems_while_the_parent_is_kept(
    headers: dict[str, object], problem: str
) -> None:
    extracted = extract({"traceparent": GOOD, **headers})
    assert extracted.has_parent
    assert extracted.context.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert any(problem in p for p in extracted.problems), extracted.problems


def test_correlation_survives_in_baggage_when_its_header_is_unreadable() -> None:
    extracted = extract(
        {"traceparent": "bad", "baggage": "correlation_id=order_441", "x-correlation-id": b"\xff"}
    )
    assert extracted.context.correlation_id == "order_441"
    assert not extracted.has_parent


@pytest.mark.parametrize("carrier", [None, 42, "traceparent", b"bytes", object()])
def test_a_carrier_of_the_wrong_type_is_a_reason(carrier: object) -> None:
    extracted = extract(carrier)
    assert extracted.no_parent is not None
    assert "expected a mapping of headers" in extracted.no_parent.reason


def test_kafka_headers_with_junk_entries_are_read_around() -> None:
    extracted = extract([("traceparent", GOOD.encode()), "junk", (1, 2, 3), ("x-event-id", b"e")])
    assert extracted.has_parent
    assert extracted.context.event_id == "e"


@pytest.mark.parametrize(
    ("envelope", "reason"),
    [
        ([1, 2], "the envelope is a list"),
        ("{}", "the envelope is a str"),
        (None, "the envelope is a NoneType"),
        ({"traceId": "tr_501", "parentSpanId": "span_22"}, "are not W3C hex IDs"),
        ({"traceId": "4bf92f3577b34da6a3ce929d0e0e4736"}, "only one of traceId and parentSpanId"),
        ({"traceparent": 17}, "'traceparent' is a int"),
        ({"traceparent": "nope"}, "traceparent 'nope' is malformed"),
        ({"eventId": "evt_1"}, "neither traceparent nor traceId"),
    ],
)
def test_bad_envelopes_give_no_parent_with_the_reason(envelope: object, reason: str) -> None:
    extracted = extract_envelope(envelope)
    assert extracted.no_parent is not None
    assert reason in extracted.no_parent.reason


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("eventId", 8821, "'eventId' is a int"),
        ("correlationId", ["order_441"], "'correlationId' is a list"),
        ("attempt", "two", "attempt 'two' is not a whole number"),
        ("attempt", True, "'attempt' is a bool"),
        ("attempt", 1.5, "'attempt' is a float"),
        ("baggage", {"a": "b"}, "'baggage' is a dict"),
    ],
)
def test_wrong_types_in_an_envelope_are_problems_and_the_rest_is_kept(
    field: str, value: object, problem: str
) -> None:
    envelope = {"traceparent": GOOD, "eventName": "order.placed", field: value}
    extracted = extract_envelope(envelope)
    assert extracted.has_parent
    assert extracted.context.event_name == "order.placed"
    assert any(problem in p for p in extracted.problems), extracted.problems


def test_envelope_traceparent_wins_over_a_disagreeing_trace_id() -> None:
    extracted = extract_envelope(
        {"traceparent": GOOD, "traceId": "1" * 32, "parentSpanId": "2" * 16}
    )
    assert extracted.context.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert any("disagrees" in p for p in extracted.problems)


_values = st.one_of(
    st.none(),
    st.text(max_size=80),
    st.binary(max_size=80),
    st.integers(),
    st.floats(),
    st.lists(st.text(max_size=5), max_size=3),
)
_names = st.one_of(
    st.sampled_from(
        ["traceparent", "tracestate", "baggage", "x-correlation-id", "x-event-id", "x-attempt"]
    ),
    st.text(max_size=12),
)


@given(
    carrier=st.one_of(
        st.dictionaries(_names, _values, max_size=8),
        st.lists(st.one_of(st.tuples(_names, _values), _values), max_size=8),
        _values,
    )
)
def test_extract_never_raises_and_never_invents_a_parent(carrier: object) -> None:
    extracted = extract(carrier)
    if extracted.has_parent:
        assert extracted.context.trace_id is not None
        assert extracted.context.trace_id in repr(carrier)


@given(envelope=st.one_of(st.dictionaries(st.text(max_size=15), _values, max_size=10), _values))
def test_extract_envelope_never_raises_and_never_invents_a_parent(envelope: object) -> None:
    extracted = extract_envelope(envelope)
    if extracted.has_parent:
        assert extracted.context.trace_id is not None
        assert extracted.context.trace_id in repr(envelope)
