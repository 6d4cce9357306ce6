"""Every identity survives every carrier and the envelope (property-based)."""

from __future__ import annotations

import json
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from tracebraid.model import CorrelationId, EventId, SpanId, TraceId
from tracebraid.sdk import (
    MessageContext,
    extract,
    extract_envelope,
    inject,
    to_envelope,
)

_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40)
_trace_ids = st.from_regex(r"\A[0-9a-f]{32}\Z").filter(lambda v: v != "0" * 32)
_span_ids = st.from_regex(r"\A[0-9a-f]{16}\Z").filter(lambda v: v != "0" * 16)
_baggage_keys = st.from_regex(r"\A[a-z][a-z0-9_.-]{0,11}\Z").filter(lambda k: k != "correlation_id")
# Baggage values are URL-encoded on the wire; OpenTelemetry strips surrounding blanks.
_baggage_values = st.text(st.characters(codec="ascii", min_codepoint=33), min_size=1, max_size=20)
_trace_states = st.sampled_from(
    ["", "congo=t61rcWkgMzE", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"]
)


@st.composite
def messages(draw: st.DrawFn) -> MessageContext:
    traced = draw(st.booleans())
    return MessageContext(
        trace_id=TraceId(draw(_trace_ids)) if traced else None,
        span_id=SpanId(draw(_span_ids)) if traced else None,
        correlation_id=draw(st.none() | _text.map(CorrelationId)),
        event_id=draw(st.none() | _text.map(EventId)),
        causation_id=draw(st.none() | _text.map(EventId)),
        event_name=draw(st.none() | _text),
        attempt=draw(st.none() | st.integers(1, 10**9)),
        trace_flags=draw(st.integers(0, 255)) if traced else 0x01,
        trace_state=draw(_trace_states) if traced else "",
        baggage=draw(st.dictionaries(_baggage_keys, _baggage_values, max_size=4)),
    )


def _str_dict(message: MessageContext) -> object:
    carrier: dict[str, str] = {"content-type": "application/json"}
    inject(message, carrier)
    return carrier


def _bytes_dict(message: MessageContext) -> object:
    carrier: dict[str, bytes] = {"content-type": b"application/json"}
    inject(message, carrier, as_bytes=True)
    return carrier


def _kafka(message: MessageContext) -> object:
    carrier: list[tuple[str, bytes]] = [("content-type", b"application/json")]
    inject(message, carrier)
    return carrier


def _upper_case(message: MessageContext) -> object:
    # Proxies and brokers change header case; lookups must not care.
    carrier: dict[str, str] = {}
    inject(message, carrier)
    return {key.title(): value for key, value in carrier.items()}


_CARRIERS: dict[str, Callable[[MessageContext], object]] = {
    "dict[str, str]": _str_dict,
    "dict[str, bytes]": _bytes_dict,
    "list[tuple[str, bytes]]": _kafka,
    "Title-Case headers": _upper_case,
}


@given(message=messages(), kind=st.sampled_from(sorted(_CARRIERS)))
def test_every_identity_round_trips_through_every_carrier(
    message: MessageContext, kind: str
) -> None:
    extracted = extract(_CARRIERS[kind](message))
    assert extracted.context == message
    assert extracted.problems == ()
    assert extracted.has_parent is message.has_trace_context


@given(message=messages())
def test_every_identity_round_trips_through_the_json_envelope(message: MessageContext) -> None:
    envelope = json.loads(json.dumps(to_envelope(message)))
    extracted = extract_envelope(envelope)
    assert extracted.context == message
    assert extracted.problems == ()
    assert extracted.has_parent is message.has_trace_context


@given(message=messages())
def test_envelope_carries_the_seed_fields_under_their_seed_names(message: MessageContext) -> None:
    envelope = to_envelope(message)
    assert envelope.get("eventId") == message.event_id
    assert envelope.get("traceId") == message.trace_id
    assert envelope.get("correlationId") == message.correlation_id
    assert envelope.get("parentSpanId") == message.span_id
    assert envelope.get("eventName") == message.event_name
    assert envelope.get("causationId") == message.causation_id
    assert envelope.get("attempt") == message.attempt
    assert None not in envelope.values()


@given(message=messages())
def test_reinjecting_into_a_kafka_carrier_replaces_rather_than_duplicates(
    message: MessageContext,
) -> None:
    carrier: list[tuple[str, bytes]] = []
    inject(message, carrier)
    inject(message, carrier)
    names = [name for name, _ in carrier]
    assert len(names) == len(set(names))
    assert extract(carrier).context == message


@given(
    trace_id=_trace_ids,
    span_id=_span_ids,
    correlation=_text,
)
def test_seed_style_envelope_without_traceparent_still_gives_the_parent(
    trace_id: str, span_id: str, correlation: str
) -> None:
    extracted = extract_envelope(
        {"traceId": trace_id, "parentSpanId": span_id, "correlationId": correlation}
    )
    assert extracted.has_parent
    assert (extracted.context.trace_id, extracted.context.span_id) == (trace_id, span_id)
    assert extracted.context.correlation_id == correlation


@given(correlation=_text, others=st.dictionaries(_baggage_keys, _baggage_values, max_size=2))
def test_baggage_is_written_and_read_exactly_as_opentelemetry_does(
    correlation: str, others: dict[str, str]
) -> None:
    from opentelemetry import baggage
    from opentelemetry.baggage.propagation import W3CBaggagePropagator
    from opentelemetry.context import Context

    ctx = Context()
    for key, value in {"correlation_id": correlation, **others}.items():
        ctx = baggage.set_baggage(key, value, ctx)
    stock: dict[str, str] = {}
    W3CBaggagePropagator().inject(stock, ctx)
    message = MessageContext(
        trace_id=None,
        span_id=None,
        correlation_id=CorrelationId(correlation),
        event_id=None,
        causation_id=None,
        event_name=None,
        baggage=others,
    )
    ours: dict[str, str] = {}
    inject(message, ours)
    assert ours.get("baggage") == stock.get("baggage")
    read_back = baggage.get_all(W3CBaggagePropagator().extract(stock))
    # OpenTelemetry strips blanks around values; an empty correlation ID is no correlation ID.
    expected = read_back.get("correlation_id") or None
    assert extract({"baggage": stock["baggage"]}).context.correlation_id == expected
