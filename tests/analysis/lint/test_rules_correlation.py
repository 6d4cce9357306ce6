"""TB201: follow-up events that lost the correlation ID their cause carried."""

from __future__ import annotations

import pytest

from tracebraid.analysis.lint import lint
from tracebraid.model import SpanKind
from tracebraid.testing.workflows import order_flow

from .shapes import Spans


def _flow(
    follow_up_correlation: str | None, *, consumer_correlation: str | None = "order_1"
) -> Spans:
    s = Spans()
    post = s.add("POST /orders", SpanKind.SERVER, "checkout-api")
    placed = s.publish(post, "order.placed", "evt_1")
    work = s.consume(placed, "authorize-payment", "payment", correlation=consumer_correlation)
    s.publish(
        work,
        "payment.authorized",
        "evt_2",
        correlation=follow_up_correlation,
        causation="evt_1",
        at=8.0,
        destination="payments",
    )
    return s


def test_a_follow_up_without_its_causes_correlation_is_found_at_the_publishing_step() -> None:
    (finding,) = lint(_flow(None).spans).findings
    assert (finding.rule, finding.service, finding.step, finding.key) == (
        "TB201",
        "payment",
        "authorize-payment",
        "payment.authorized",
    )
    assert "without the correlation ID order_1" in finding.message
    assert finding.spans[0].name == "payment.authorized publish"


def test_a_follow_up_with_a_new_correlation_id_is_lost_too() -> None:
    (finding,) = lint(_flow("corr_new").spans).findings
    assert finding.rule == "TB201"
    assert "with correlation ID corr_new instead of order_1" in finding.message


def test_a_consumer_that_dropped_the_correlation_in_transit_is_found_where_it_received() -> None:
    findings = lint(_flow(None, consumer_correlation=None).spans).findings
    (finding,) = [f for f in findings if f.rule == "TB201"]
    assert (finding.service, finding.step) == ("payment", "authorize-payment")
    # The consumer's own missing field is TB201's; only its follow-up is left for TB401.
    (missing,) = [f for f in findings if f.rule == "TB401"]
    assert missing.details == {"missing": ("correlationId",), "role": "producer"}
    assert finding.key == "order.placed (in transit)"
    assert "received order.placed without the correlation ID order_1" in finding.message


def test_no_finding_when_the_cause_had_none_or_the_sdk_carried_it() -> None:
    s = _flow(None, consumer_correlation=None)
    s.spans[:] = [span for span in s.spans if span.name != "order.placed publish"]
    assert [f.rule for f in lint(s.spans).findings if f.rule == "TB201"] == []
    assert lint(order_flow().spans).findings == ()


def test_stock_spans_without_any_correlation_are_not_blamed_for_losing_it() -> None:
    s = Spans()
    post = s.add("POST /orders", SpanKind.SERVER, "checkout-api")
    sent = s.aio_pika_publish(post, "orders", "reserve", message_id="m-1")
    got = s.aio_pika_receive(sent, "orders", "inventory", message_id="m-1")
    s.aio_pika_publish(got, "inventory", "reserved", message_id="m-2", at=6.0)
    assert "TB201" not in {f.rule for f in lint(s.spans).findings}


def test_stock_spans_that_carry_correlation_and_then_drop_it_are_flagged() -> None:
    s = Spans()
    post = s.add("POST /orders", SpanKind.SERVER, "checkout-api")
    sent = s.aio_pika_publish(post, "orders", "reserve", message_id="m-1", correlation_id="o-7")
    got = s.aio_pika_receive(sent, "orders", "inventory", message_id="m-1", correlation_id="o-7")
    s.aio_pika_publish(got, "inventory", "reserved", message_id="m-2", at=6.0)
    (finding,) = [f for f in lint(s.spans).findings if f.rule == "TB201"]
    assert (finding.service, finding.step) == ("inventory", "orders receive")


@pytest.mark.parametrize("link_only", [False, True])
def test_a_consumer_is_paired_with_its_producer_by_structure_not_only_by_event_id(
    link_only: bool,
) -> None:
    # Without tracebraid's propagator the consumer carries another message ID (a Kafka
    # offset) and no correlation ID; it is still the child of (or links to) the producer
    # span whose message it took, so the correlation was lost in transit.
    s = Spans()
    post = s.add("POST /orders", SpanKind.SERVER, "checkout-api")
    placed = s.publish(post, "order.placed", "evt_1")
    work = s.consume(placed, "authorize-payment", "payment", event_id="0-17",
                     correlation=None, link_only=link_only)  # fmt: skip
    s.publish(work, "payment.authorized", "evt_2", correlation=None, at=8.0,
              destination="payments")  # fmt: skip
    lost = [f for f in lint(s.spans).findings if f.rule == "TB201"]
    assert [(f.service, f.step, f.key) for f in lost] == [
        ("payment", "authorize-payment", "order.placed (in transit)")
    ]
