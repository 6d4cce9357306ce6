"""Producer and consumer spans: identities, parentage, links, outcomes, start markers."""

from __future__ import annotations

import time

import pytest
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context

from tracebraid import semconv
from tracebraid.errors import InputError
from tracebraid.model import Span, SpanKind, StatusCode
from tracebraid.sdk import (
    Outcome,
    configure,
    consuming,
    consuming_batch,
    correlation,
    current_correlation_id,
    current_processing,
    extract,
    extract_envelope,
    publishing,
)
from tracebraid.testing import SpanCapture, capture_spans


def _only(spans: list[Span]) -> Span:
    assert len(spans) == 1, spans
    return spans[0]


def test_publish_makes_a_producer_span_with_the_messaging_identity(
    captured: SpanCapture,
) -> None:
    with correlation("order_441"), publishing("order.placed", destination="orders") as pub:
        headers = pub.headers()
    producer = _only(captured.named("order.placed publish"))
    assert producer.kind is SpanKind.PRODUCER
    assert producer.attributes[semconv.MESSAGE_ID] == pub.message.event_id
    assert str(pub.message.event_id).startswith("evt_")
    assert producer.attributes[semconv.CORRELATION_ID] == "order_441"
    assert producer.attributes[semconv.DESTINATION] == "orders"
    assert producer.attributes[semconv.OPERATION_TYPE] == "send"
    assert producer.attributes[semconv.EVENT_NAME] == "order.placed"
    assert semconv.CAUSATION_ID not in producer.attributes
    assert (pub.message.trace_id, pub.message.span_id) == producer.key
    assert headers["x-correlation-id"] == "order_441"
    assert "correlation_id=order_441" in headers["baggage"]


def test_publish_keeps_a_given_event_id_and_mints_a_correlation_when_there_is_none(
    captured: SpanCapture,
) -> None:
    with publishing("order.placed", destination="orders", event_id="evt_8821") as first:
        pass
    with publishing("order.placed", destination="orders") as second:
        pass
    assert first.message.event_id == "evt_8821"
    assert str(first.message.correlation_id).startswith("corr_")
    assert first.message.correlation_id != second.message.correlation_id
    assert first.message.correlation_id != first.message.event_id


def test_publish_inside_consume_carries_correlation_and_causation_automatically(
    captured: SpanCapture,
) -> None:
    with correlation("order_441"), publishing("order.placed", destination="orders") as placed:
        wire = placed.headers()
    assert current_correlation_id() is None
    with consuming(
        extract(wire), step="authorize-payment", consumer="payment", destination="orders"
    ) as c:
        assert current_correlation_id() == "order_441"
        processing = current_processing()
        assert processing is not None and processing.event_id == placed.message.event_id
        with publishing("payment.authorized", destination="payments") as follow_up:
            pass
    assert current_processing() is None and current_correlation_id() is None
    assert follow_up.message.correlation_id == "order_441"
    assert follow_up.message.causation_id == placed.message.event_id
    assert follow_up.message.trace_id == placed.message.trace_id
    producer = _only(captured.named("payment.authorized publish"))
    assert producer.parent_span_id == c.processing.span_id
    assert producer.attributes[semconv.CAUSATION_ID] == placed.message.event_id
    assert producer.attributes[semconv.CORRELATION_ID] == "order_441"


def test_follow_ups_of_an_uncorrelated_event_share_one_minted_correlation(
    captured: SpanCapture,
) -> None:
    incoming = extract({"x-event-id": "evt_stock"})
    with consuming(incoming, step="project", consumer="summary", destination="orders"):
        with publishing("a", destination="x") as a:
            pass
        with publishing("b", destination="x") as b:
            pass
    assert a.message.correlation_id == b.message.correlation_id
    assert current_correlation_id() is None


def test_single_consume_is_child_of_the_creation_context_and_links_to_it(
    captured: SpanCapture,
) -> None:
    with publishing("order.placed", destination="orders", correlation_id="order_441") as pub:
        envelope = pub.envelope()
    with consuming(
        extract_envelope(envelope),
        step="reserve-inventory",
        consumer="inventory",
        destination="orders",
        attempt=2,
    ):
        pass
    consumer = _only(captured.named("reserve-inventory"))
    assert consumer.kind is SpanKind.CONSUMER
    assert consumer.trace_id == pub.message.trace_id
    assert consumer.parent_span_id == pub.message.span_id
    assert [(link.trace_id, link.span_id) for link in consumer.links] == [
        (pub.message.trace_id, pub.message.span_id)
    ]
    attrs = consumer.attributes
    assert attrs[semconv.CONSUMER_GROUP] == "inventory"
    assert attrs[semconv.OPERATION_TYPE] == "process"
    assert attrs[semconv.MESSAGE_ID] == pub.message.event_id
    assert attrs[semconv.EVENT_NAME] == "order.placed"
    assert attrs[semconv.CORRELATION_ID] == "order_441"
    assert attrs[semconv.ATTEMPT] == 2
    assert attrs[semconv.STEP] == "reserve-inventory"
    assert attrs[semconv.OUTCOME] == "ok"


def test_consume_ignores_an_unrelated_current_span_unless_told_to_link_only(
    captured: SpanCapture,
) -> None:
    with publishing("order.placed", destination="orders") as pub:
        wire = pub.headers()
    with publishing("unrelated", destination="elsewhere") as outer:
        with consuming(extract(wire), step="a", consumer="a", destination="orders"):
            pass
        with consuming(extract(wire), step="b", consumer="b", destination="orders", link_only=True):
            pass
    assert _only(captured.named("a")).parent_span_id == pub.message.span_id
    b = _only(captured.named("b"))
    assert b.parent_span_id == outer.message.span_id
    assert [link.span_id for link in b.links] == [pub.message.span_id]


def test_batch_consume_links_every_message_and_is_no_child_of_any(
    captured: SpanCapture,
) -> None:
    wires = []
    for _ in range(3):
        with publishing("order.placed", destination="orders", correlation_id="order_441") as p:
            wires.append((p.message, p.headers()))
    with consuming_batch(
        [extract(w) for _, w in wires],
        step="project-order-summary",
        consumer="summary",
        destination="orders",
    ) as batch:
        assert current_correlation_id() == "order_441"
        with publishing("summary.updated", destination="summaries") as follow_up:
            pass
    span = _only(captured.named("project-order-summary"))
    assert span.parent_span_id is None
    assert {link.span_id for link in span.links} == {m.span_id for m, _ in wires}
    assert span.attributes[semconv.BATCH_COUNT] == 3
    assert semconv.MESSAGE_ID not in span.attributes
    assert follow_up.message.causation_id is None
    assert follow_up.message.correlation_id == "order_441"
    assert len(batch.messages) == 3


def test_empty_batch_is_an_input_error() -> None:
    with pytest.raises(InputError, match="at least one message"):
        consuming_batch([], step="x", consumer="x", destination="x")


def test_a_failure_escaping_the_consume_is_recorded_as_error(captured: SpanCapture) -> None:
    with pytest.raises(TimeoutError):  # noqa: SIM117
        with consuming(
            extract({}),
            step="send-warehouse-webhook",
            consumer="warehouse",
            destination="inventory",
        ):
            raise TimeoutError("warehouse did not answer")
    span = _only(captured.named("send-warehouse-webhook"))
    assert span.status is StatusCode.ERROR
    assert "TimeoutError" in span.status_message
    assert span.attributes[semconv.OUTCOME] == "error"
    assert [e.name for e in span.events] == ["exception"]
    assert current_processing() is None


def test_fail_and_dead_letter_record_the_attempt_without_raising(captured: SpanCapture) -> None:
    error = TimeoutError("warehouse did not answer")
    for attempt in (1, 2, 3):
        with consuming(
            extract({}), step="send", consumer="w", destination="q", attempt=attempt
        ) as c:
            if attempt < 3:
                c.fail(error, backoff_ms=200.0 * attempt)
            else:
                c.dead_letter(error)
    spans = captured.named("send")
    assert [s.attributes[semconv.ATTEMPT] for s in spans] == [1, 2, 3]
    assert [s.attributes[semconv.OUTCOME] for s in spans] == ["retry", "retry", "dead_letter"]
    assert [s.attributes.get(semconv.BACKOFF_MS) for s in spans] == [200.0, 400.0, None]
    assert spans[2].attributes[semconv.DEAD_LETTER] is True
    assert all(s.status is StatusCode.ERROR for s in spans)
    assert all([e.name for e in s.events] == ["exception"] for s in spans)


def test_attempt_defaults_to_the_attempt_the_message_carries(captured: SpanCapture) -> None:
    with consuming(extract({"x-attempt": "4"}), step="s", consumer="c", destination="q") as c:
        pass
    assert c.attempt == 4
    with consuming(extract({}), step="s", consumer="c", destination="q") as c:
        pass
    assert c.attempt == 1


async def test_async_with_works_for_publish_and_consume(captured: SpanCapture) -> None:
    async with publishing("order.placed", destination="orders") as pub:
        wire = pub.headers()
    async with consuming(extract(wire), step="s", consumer="c", destination="orders") as c:
        assert current_processing() == c.processing
    assert current_processing() is None
    assert c.outcome is Outcome.OK


def test_start_marker_is_emitted_at_once_and_names_the_consumer_span() -> None:
    with capture_spans() as captured:
        configure(tracer_provider=captured.tracer_provider, start_marker_after_ms=0)
        with consuming(
            extract({"x-event-id": "evt_1"}),
            step="reserve-inventory",
            consumer="inventory",
            destination="orders",
        ) as c:
            markers = captured.markers
            assert captured.named("reserve-inventory") == []  # still in flight
        marker = _only(markers)
        assert marker.scope == semconv.START_MARKER_SCOPE
        assert marker.attributes[semconv.MARKER_FOR_SPAN] == c.processing.span_id
        assert marker.parent_span_id == c.processing.span_id
        assert marker.attributes[semconv.MESSAGE_ID] == "evt_1"
        assert marker.attributes[semconv.CONSUMER_GROUP] == "inventory"
        consumer = _only(captured.named("reserve-inventory"))
        assert marker.start_ns == consumer.start_ns


def test_deferred_start_marker_appears_only_for_work_still_running_after_the_delay() -> None:
    with capture_spans() as captured:
        configure(tracer_provider=captured.tracer_provider, start_marker_after_ms=20)
        with consuming(extract({}), step="quick", consumer="c", destination="q"):
            pass
        with consuming(extract({}), step="slow", consumer="c", destination="q") as slow:
            deadline = time.monotonic() + 5
            while not captured.markers and time.monotonic() < deadline:
                time.sleep(0.005)
            in_flight = captured.markers
            assert captured.named("slow") == []
        time.sleep(0.05)  # the quick one's marker was due by now: it must stay cancelled
        marker = _only(in_flight)
        assert marker.attributes[semconv.MARKER_FOR_SPAN] == slow.processing.span_id
        assert marker.start_ns == _only(captured.named("slow")).start_ns
        assert [m.attributes[semconv.STEP] for m in captured.markers] == ["slow"]


def test_start_markers_can_be_disabled_per_call_and_globally() -> None:
    with capture_spans() as captured:
        configure(tracer_provider=captured.tracer_provider, start_marker_after_ms=0)
        with consuming(extract({}), step="s", consumer="c", destination="q", start_marker=False):
            pass
        assert captured.markers == []
        configure(tracer_provider=captured.tracer_provider, start_markers=False)
        with consuming(extract({}), step="s", consumer="c", destination="q"):
            pass
        assert captured.markers == []


def test_a_failing_publish_records_the_error_and_reraises(captured: SpanCapture) -> None:
    with (
        pytest.raises(ConnectionError),
        publishing("order.placed", destination="orders") as pub,
    ):
        raise ConnectionError("broker went away")
    producer = _only(captured.named("order.placed publish"))
    assert producer.status is StatusCode.ERROR
    assert [e.name for e in producer.events] == ["exception"]
    assert producer.attributes[semconv.MESSAGE_ID] == pub.message.event_id


def test_consume_accepts_a_message_context_directly(captured: SpanCapture) -> None:
    with publishing("order.placed", destination="orders") as pub:
        pass
    with consuming(pub.message, step="s", consumer="c", destination="orders") as c:
        assert c.no_parent is None
    consumer = _only(captured.named("s"))
    assert consumer.parent_span_id == pub.message.span_id
    assert [link.span_id for link in consumer.links] == [pub.message.span_id]


def test_correlation_is_in_opentelemetry_baggage_for_stock_instrumentation(
    captured: SpanCapture,
) -> None:
    with publishing("order.placed", destination="orders", correlation_id="order_441") as pub:
        wire: list[tuple[str, bytes]] = []
        pub.inject(wire)
        assert baggage.get_baggage("correlation_id") == "order_441"
    with consuming(extract(wire), step="s", consumer="c", destination="orders"):
        assert baggage.get_baggage("correlation_id") == "order_441"
    assert baggage.get_baggage("correlation_id") is None


def test_nested_consumes_restore_the_outer_event_on_exit(captured: SpanCapture) -> None:
    outer_in = extract({"x-event-id": "evt_outer", "x-correlation-id": "order_1"})
    inner_in = extract({"x-event-id": "evt_inner", "x-correlation-id": "order_2"})
    with consuming(outer_in, step="outer", consumer="c", destination="q"):
        with consuming(inner_in, step="inner", consumer="c", destination="q"):
            processing = current_processing()
            assert processing is not None and processing.event_id == "evt_inner"
        processing = current_processing()
        assert processing is not None and processing.event_id == "evt_outer"
        assert current_correlation_id() == "order_1"


def test_opentelemetry_sees_the_block_s_span_and_baggage(captured: SpanCapture) -> None:
    tracer = captured.tracer_provider.get_tracer("stock")
    token = otel_context.attach(baggage.set_baggage("tenant", "acme"))
    try:
        with publishing("order.placed", destination="orders") as pub:
            assert trace.get_current_span() is pub.span
            assert baggage.get_all() == {
                "tenant": "acme",
                "correlation_id": pub.message.correlation_id,
            }
            tracer.start_span("broker send").end()
            wire = pub.headers()
    finally:
        otel_context.detach(token)
    assert trace.get_current_span().get_span_context().is_valid is False
    with consuming(extract(wire), step="s", consumer="c", destination="orders") as c:
        assert trace.get_current_span() is c.span
        assert baggage.get_all() == {
            "tenant": "acme",
            "correlation_id": pub.message.correlation_id,
        }
        tracer.start_span("db write").end()
    assert baggage.get_all() == {}
    [send] = captured.named("broker send")
    [write] = captured.named("db write")
    assert send.parent_span_id == pub.message.span_id
    assert write.parent_span_id == c.processing.span_id


def test_a_correlation_block_inside_a_consume_keeps_the_event_as_causation(
    captured: SpanCapture,
) -> None:
    incoming = extract({"x-event-id": "evt_1", "x-correlation-id": "order_1"})
    with consuming(incoming, step="s", consumer="c", destination="q"):
        with correlation("order_9"):
            assert current_correlation_id() == "order_9"
            processing = current_processing()
            assert processing is not None and processing.event_id == "evt_1"
            with publishing("x.happened", destination="x") as inside:
                pass
        with publishing("y.happened", destination="y") as after:
            pass
        assert current_correlation_id() == "order_1"
    assert current_correlation_id() is None and current_processing() is None
    assert (inside.message.correlation_id, inside.message.causation_id) == ("order_9", "evt_1")
    assert (after.message.correlation_id, after.message.causation_id) == ("order_1", "evt_1")


def test_a_minted_correlation_ends_with_the_consume_that_minted_it(captured: SpanCapture) -> None:
    with correlation("order_0"):
        with consuming(extract({"x-event-id": "evt_1"}), step="s", consumer="c", destination="q"):
            assert current_correlation_id() is None
            with publishing("x.happened", destination="x") as first:
                pass
            assert current_correlation_id() == first.message.correlation_id
            processing = current_processing()
            assert processing is not None and processing.correlation_id is None
        assert current_correlation_id() == "order_0"
    assert first.message.correlation_id is not None
    assert first.message.correlation_id.startswith("corr_")
