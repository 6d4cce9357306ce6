from tracebraid.model import Span, SpanId, SpanKind, TraceId, is_valid_span_id, is_valid_trace_id


def test_duration_is_never_negative() -> None:
    span = Span(
        trace_id=TraceId("4bf92f3577b34da6a3ce929d0e0e4736"),
        span_id=SpanId("00f067aa0ba902b7"),
        parent_span_id=None,
        name="reserve-inventory",
        kind=SpanKind.CONSUMER,
        start_ns=100,
        end_ns=50,
        service="inventory",
    )
    assert span.duration_ns == 0
    assert span.key == ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")


def test_id_validation_rejects_zero_and_wrong_length() -> None:
    assert is_valid_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
    assert not is_valid_trace_id("0" * 32)
    assert not is_valid_trace_id("4BF92F3577B34DA6A3CE929D0E0E4736")
    assert is_valid_span_id("00f067aa0ba902b7")
    assert not is_valid_span_id("00f067aa0ba902")
