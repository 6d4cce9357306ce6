"""A CloudEvent and the seed's envelope map onto each other; CloudEvents headers are read
like tracebraid's, never raising (property-based round trips, and malformed input)."""

from __future__ import annotations

import json

import pytest
from cloudevents.core.bindings import amqp, http, kafka
from cloudevents.core.formats.json import JSONFormat
from hypothesis import given
from hypothesis import strategies as st

from tracebraid.errors import InputError
from tracebraid.model import CorrelationId, EventId, SpanId, TraceId
from tracebraid.sdk import MessageContext, to_envelope
from tracebraid.sdk.cloudevents import (
    HTTP,
    KAFKA,
    cloudevent_to_envelope,
    envelope_to_cloudevent,
    extract_binary,
    extract_structured,
    from_cloudevent,
    to_binary_headers,
    to_cloudevent,
    to_structured,
)

_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30
)
_trace_ids = st.from_regex(r"\A[0-9a-f]{32}\Z").filter(lambda v: v != "0" * 32)
_span_ids = st.from_regex(r"\A[0-9a-f]{16}\Z").filter(lambda v: v != "0" * 16)
_sources = st.sampled_from(["/checkout", "urn:service:payment", "https://shop.example/orders"])


@st.composite
def events(draw: st.DrawFn) -> MessageContext:
    """Messages that can be CloudEvents: an event ID and an event name, the rest optional."""
    traced = draw(st.booleans())
    return MessageContext(
        trace_id=TraceId(draw(_trace_ids)) if traced else None,
        span_id=SpanId(draw(_span_ids)) if traced else None,
        correlation_id=draw(st.none() | _text.map(CorrelationId)),
        event_id=EventId(draw(_text)),
        causation_id=draw(st.none() | _text.map(EventId)),
        event_name=draw(_text),
        attempt=draw(st.none() | st.integers(1, 10**6)),
        trace_flags=draw(st.sampled_from([0, 1])) if traced else 0x01,
    )


@given(events(), _sources)
def test_envelope_to_cloudevent_and_back_is_the_same_envelope(
    message: MessageContext, source: str
) -> None:
    envelope = to_envelope(message)
    attributes = envelope_to_cloudevent(envelope, source=source)
    assert attributes["id"] == message.event_id and attributes["type"] == message.event_name
    assert attributes["source"] == source and attributes["specversion"] == "1.0"
    assert cloudevent_to_envelope(attributes) == envelope


@given(events(), _sources, st.sampled_from([HTTP, KAFKA]))
def test_binary_headers_carry_every_identity(
    message: MessageContext, source: str, style: object
) -> None:
    headers = to_binary_headers(message, source=source, style=style)  # type: ignore[arg-type]
    assert all(name.startswith(str(style)) for name in headers)
    extracted = extract_binary(headers)
    assert extracted.context == message
    assert extracted.has_parent == message.has_trace_context


@given(events(), _sources)
def test_structured_mode_carries_every_identity(message: MessageContext, source: str) -> None:
    body = json.dumps(to_structured(message, source=source, data={"order_id": "order_441"}))
    assert extract_structured(body.encode()).context == message


@given(events(), _sources)
def test_the_cloudevents_sdk_bindings_carry_every_identity(
    message: MessageContext, source: str
) -> None:
    event = to_cloudevent(message, source=source, data={"order_id": "order_441"})
    wire = JSONFormat()
    assert from_cloudevent(event).context == message
    on_kafka = kafka.to_binary(event, wire)
    assert extract_binary(on_kafka.headers).context == message
    assert from_cloudevent(kafka.from_binary(on_kafka, wire)).context == message
    over_http = http.to_structured(event, wire)
    assert extract_structured(over_http.body).context == message
    over_amqp = amqp.to_binary(event, wire)  # cloudEvents_ application properties
    assert extract_binary(over_amqp.application_properties).context == message


def test_a_cloudevent_needs_an_id_a_type_and_a_source() -> None:
    nameless = MessageContext(None, None, None, EventId("evt_1"), None, None)
    with pytest.raises(InputError, match="'eventName'"):
        to_binary_headers(nameless, source="/checkout")
    with pytest.raises(InputError, match="source"):
        envelope_to_cloudevent({"eventId": "evt_1", "eventName": "order.placed"}, source="")


def test_the_traceparent_comes_from_the_seed_trace_and_parent_span_ids() -> None:
    seed = {
        "eventId": "evt_1",
        "eventName": "order.placed",
        "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
        "parentSpanId": "00f067aa0ba902b7",
    }
    attributes = envelope_to_cloudevent(seed, source="/checkout")
    assert attributes["traceparent"] == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


# -- malformed CloudEvents never raise: NoParent(reason), and what could be read --

BAD_TRACEPARENT = "00-not-a-traceparent"


@pytest.mark.parametrize(
    "carrier",
    [
        {
            "ce-id": "evt_1",
            "ce-type": "order.placed",
            "ce-traceparent": BAD_TRACEPARENT,
            "ce-correlationid": "order_441",
        },
        {
            "ce-id": b"evt_1",
            "ce-type": b"order.placed",
            "ce-traceparent": BAD_TRACEPARENT.encode(),
            "ce-correlationid": b"order_441",
        },
        [
            ("ce_id", b"evt_1"),
            ("ce_type", b"order.placed"),
            ("ce_traceparent", BAD_TRACEPARENT.encode()),
            ("ce_correlationid", b"order_441"),
        ],
    ],
    ids=["str-headers", "bytes-headers", "kafka-headers"],
)
def test_a_malformed_cloudevent_traceparent_gives_no_parent_and_keeps_the_rest(
    carrier: object,
) -> None:
    extracted = extract_binary(carrier)
    assert extracted.no_parent is not None
    assert BAD_TRACEPARENT in extracted.no_parent.reason
    assert (extracted.context.event_id, extracted.context.correlation_id) == ("evt_1", "order_441")


@pytest.mark.parametrize(
    "carrier",
    [
        [("ce_id", b"\xff\xfe"), ("ce_correlationid", b"order_441")],
        {"ce-id": 42, "ce-correlationid": "order_441"},
        {"ce-attempt": "zero", "ce-correlationid": "order_441"},
    ],
    ids=["kafka-not-utf8", "not-text", "attempt-not-a-number"],
)
def test_an_unreadable_cloudevent_attribute_is_ignored_with_a_reason(carrier: object) -> None:
    extracted = extract_binary(carrier)
    assert extracted.context.correlation_id == "order_441"
    assert extracted.no_parent is not None and extracted.problems


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "a list, expected a JSON object"),
        ({"id": 7, "type": "order.placed"}, "'eventId' is a int"),
        ({"id": "evt_1", "traceparent": BAD_TRACEPARENT}, BAD_TRACEPARENT),
    ],
)
def test_a_malformed_structured_cloudevent_gives_no_parent(body: object, reason: str) -> None:
    extracted = extract_structured(body)
    assert extracted.no_parent is not None
    assert reason in extracted.no_parent.reason or any(reason in p for p in extracted.problems)
