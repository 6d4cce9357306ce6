"""TB101 broken causality and TB102 orphan consumers: positive and negative cases, on
tracebraid-shaped workflows and on stock aio-pika-shaped spans."""

from __future__ import annotations

from tracebraid.analysis.lint import lint
from tracebraid.model import SpanKind
from tracebraid.testing.workflows import fan_in, islands, order_flow, spread_over_traces

from .shapes import Spans


def _rules(spans: list | tuple) -> list[str]:  # type: ignore[type-arg]
    return [f.rule for f in lint(spans).findings]


def test_consumers_that_lost_trace_context_point_at_the_publishing_step() -> None:
    (finding,) = lint(islands(3).spans).findings
    assert (finding.rule, finding.severity.value) == ("TB101", "error")
    assert (finding.service, finding.step, finding.key) == (
        "checkout-api",
        "POST /orders",
        "order.placed",
    )
    assert finding.count == 3
    assert finding.details["consumers"] == ("legacy-audit",)
    assert {"checkout-api", "audit"} <= set(finding.services)
    assert finding.spans[0].name == "order.placed publish"
    assert "started 3 new traces" in finding.message


def test_each_broken_hop_of_a_chain_is_its_own_finding() -> None:
    findings = lint(spread_over_traces(4, propagate=False).spans).findings
    assert [(f.rule, f.step) for f in findings] == [
        ("TB101", "POST /orders"),
        ("TB101", "hop-1"),
        ("TB101", "hop-2"),
    ]


def test_link_only_hand_offs_and_batches_keep_causality() -> None:
    assert _rules(spread_over_traces(4, propagate=True).spans) == []
    assert _rules(fan_in(5).spans) == []
    assert _rules(order_flow().spans) == []


def test_a_consumer_with_neither_parent_nor_link_and_no_producer_is_an_orphan() -> None:
    s = Spans()
    s.consume(None, "legacy-audit", "audit", event_id="evt_9", event="order.placed")
    (finding,) = lint(s.spans).findings
    assert (finding.rule, finding.service, finding.step) == ("TB102", "audit", "legacy-audit")
    assert "evt_9" in finding.message


def test_a_consumer_without_an_event_id_cannot_even_be_stitched() -> None:
    s = Spans()
    s.add(
        "handle-order",
        SpanKind.CONSUMER,
        "audit",
        attributes={
            "messaging.consumer.group.name": "audit",
            "messaging.message.conversation_id": "o1",
        },
    )
    findings = lint(s.spans).findings
    assert [f.rule for f in findings] == ["TB102", "TB401"]
    assert "no event ID" in findings[0].message


def test_a_consumer_whose_parent_is_only_absent_is_not_an_orphan() -> None:
    s = Spans()
    root = s.add("POST /orders", SpanKind.SERVER, "checkout-api")
    placed = s.publish(root, "order.placed", "evt_1")
    s.consume(placed, "reserve-inventory", "inventory")
    s.spans.remove(placed)  # not exported: the consumer did propagate
    s.spans.remove(root)
    assert "TB102" not in _rules(s.spans)


def test_stock_aio_pika_spans_with_dropped_headers_are_stitched_and_flagged() -> None:
    s = Spans()
    post = s.add("POST /orders", SpanKind.SERVER, "checkout-api")
    sent = s.aio_pika_publish(post, "orders", "reserve", message_id="m-1")
    s.aio_pika_receive(sent, "orders", "inventory", message_id="m-1", propagate=False)
    findings = [f for f in lint(s.spans).findings if f.rule.startswith("TB1")]
    assert [(f.rule, f.service, f.step) for f in findings] == [
        ("TB101", "checkout-api", "POST /orders")
    ]
    assert findings[0].key == "messages to orders"  # aio-pika writes "orders,reserve"


def test_stock_aio_pika_spans_that_propagate_are_not_flagged() -> None:
    s = Spans()
    post = s.add("POST /orders", SpanKind.SERVER, "checkout-api")
    sent = s.aio_pika_publish(post, "orders", "reserve", message_id="m-1")
    s.aio_pika_receive(sent, "orders", "inventory", message_id="m-1")
    assert not [r for r in _rules(s.spans) if r.startswith("TB1")]
