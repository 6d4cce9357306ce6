"""The hot paths (traceparent, plain-dict headers, baggage shortcuts) agree with
OpenTelemetry's propagator and the general code on any input."""

from __future__ import annotations

from types import MappingProxyType

from hypothesis import example, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tracebraid.sdk import extract
from tracebraid.sdk._header_values import _UNQUOTED, is_unquoted
from tracebraid.sdk._traceparent import format_traceparent, parse_traceparent

_OTEL = TraceContextTextMapPropagator()
GOOD = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

_hex = st.sampled_from("0123456789abcdef")
_ids = st.integers(0, 2**128 - 1)


@st.composite
def traceparents(draw: st.DrawFn) -> str:
    """Canonical traceparents, and their near misses: other versions, blanks, trailing
    data, upper case, zero IDs, wrong lengths, stray characters."""
    version = draw(st.sampled_from(["00", "00", "00", "01", "cc", "ff", "0g", "0"]))
    trace_id = draw(st.sampled_from([0, 1, 2**128 - 1]) | _ids)
    span_id = draw(st.sampled_from([0, 1, 2**64 - 1]) | st.integers(0, 2**64 - 1))
    value = f"{version}-{trace_id:032x}-{span_id:016x}-{draw(st.integers(0, 255)):02x}"
    if draw(st.booleans()):
        return value
    position = draw(st.integers(0, len(value)))
    change = draw(
        st.sampled_from(
            ["insert", "delete", "replace", "upper", "upper one", "blank", "trail", "newline"]
        )
    )
    noise = draw(st.sampled_from(list("0aF-_ \t+xg\n")))
    if change == "insert":
        return value[:position] + noise + value[position:]
    if change == "delete":
        return value[:position] + value[position + 1 :]
    if change == "replace":
        return value[:position] + noise + value[position + 1 :]
    if change == "upper":
        return value.upper()
    if change == "upper one":
        return value[:position] + value[position : position + 1].upper() + value[position + 1 :]
    if change == "blank":
        return " \t"[position % 2] + value
    if change == "trail":
        return value + draw(st.sampled_from(["-", "-00", "-x", " ", "\t"]))
    return value + "\n"


def _otel_parse(value: str) -> trace.SpanContext:
    ctx = _OTEL.extract({"traceparent": value})
    return trace.get_current_span(ctx).get_span_context()


@settings(max_examples=400)
@given(traceparents())
@example(GOOD)
@example("00-" + "0" * 32 + "-00f067aa0ba902b7-01")
@example(GOOD + "\n")
def test_the_fast_parse_is_opentelemetry_s_parse_or_defers_to_it(value: str) -> None:
    fast = parse_traceparent(value)
    expected = _otel_parse(value)
    if fast is not None:
        assert expected.is_valid
        assert type(fast) is type(expected)
        assert tuple(fast) == tuple(expected)  # every field, is_valid and trace state too
        assert (fast.is_remote, fast.is_valid) == (True, True)
        assert fast.trace_state == expected.trace_state
    elif len(value) == 55 and value.startswith("00-"):
        # The canonical shape is never deferred unless OpenTelemetry rejects it too.
        assert not expected.is_valid


@settings(max_examples=300)
@given(traceparents(), st.sampled_from(["", "congo=t61rcWkgMzE", "rojo=00f067aa0ba902b7,x=1"]))
@example(GOOD, "")
def test_extract_finds_the_parent_opentelemetry_finds(value: str, tracestate: str) -> None:
    headers = {"traceparent": value}
    if tracestate:
        headers["tracestate"] = tracestate
    extracted = extract(headers)
    expected = trace.get_current_span(_OTEL.extract(headers)).get_span_context()
    assert extracted.has_parent == expected.is_valid
    if expected.is_valid:
        assert extracted.span_context == expected
        assert extracted.context.trace_id == f"{expected.trace_id:032x}"
        assert extracted.context.span_id == f"{expected.span_id:016x}"
        assert extracted.context.trace_flags == expected.trace_flags
        assert extracted.context.trace_state == expected.trace_state.to_header()
    else:
        assert extracted.context.trace_id is None and extracted.span_context is None


@given(
    _ids,
    st.integers(0, 2**64 - 1),
    st.integers(0, 255) | st.integers(256, 4096),  # a byte on the wire; anything in memory
    st.booleans(),
    st.sampled_from([None, "congo=t61rcWkgMzE"]),
)
def test_the_fast_format_writes_what_opentelemetry_writes(
    trace_id: int, span_id: int, flags: int, remote: bool, tracestate: str | None
) -> None:
    context = trace.SpanContext(
        trace_id,
        span_id,
        remote,
        trace.TraceFlags(flags),
        trace.TraceState.from_header([tracestate]) if tracestate else None,
    )
    written: dict[str, str] = {}
    _OTEL.inject(written, trace.set_span_in_context(trace.NonRecordingSpan(context)))
    fast = format_traceparent(context)
    if context.is_valid:
        assert fast == written["traceparent"]
    else:
        assert fast is None


_header_names = st.sampled_from(
    ["traceparent", "TraceParent", "baggage", "x-event-id", "X-Event-Id", "x-attempt",
     "x-correlation-id", "x-event-name", "x-causation-id", "tracestate", "content-type"]
)  # fmt: skip
_header_values = st.one_of(
    st.just(GOOD),
    traceparents(),
    st.sampled_from(["", "order_441", "3", "correlation_id=order_441", "k=v"]),
    st.binary(max_size=8),
)


@given(st.dictionaries(_header_names, _header_values, max_size=6))
@example({"traceparent": GOOD, "TraceParent": "xyz"})
@example({"x-event-id": "evt_1", "X-Event-Id": "evt_2"})
def test_the_dict_fast_path_reads_what_the_general_reader_reads(
    headers: dict[str, object],
) -> None:
    # A read-only mapping takes the general (one pass, any case) reader.
    assert extract(headers) == extract(MappingProxyType(headers))


@given(st.text(max_size=12) | st.from_regex(r"\A[A-Za-z0-9_.~-]{1,12}\Z"))
def test_the_unquoted_shortcut_agrees_with_the_regex(value: str) -> None:
    assert is_unquoted(value) == (_UNQUOTED.fullmatch(value) is not None)
