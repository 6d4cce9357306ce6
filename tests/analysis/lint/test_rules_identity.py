"""TB301-TB304: overloaded identities."""

from __future__ import annotations

from tracebraid.analysis.lint import lint
from tracebraid.model import SpanKind
from tracebraid.testing.workflows import order_flow

from .shapes import Spans


def _rules(s: Spans) -> list[str]:
    return [f.rule for f in lint(s.spans).findings]


def test_an_event_id_equal_to_its_trace_id_is_found_at_its_producer() -> None:
    s = Spans()
    post = s.add("POST /orders", SpanKind.SERVER, "checkout-api")
    placed = s.publish(post, "order.placed", post.trace_id.upper())  # the same ID, written apart
    s.consume(placed, "reserve-inventory", "inventory")
    (finding,) = lint(s.spans).findings
    assert (finding.rule, finding.service, finding.step, finding.key) == (
        "TB301",
        "checkout-api",
        "POST /orders",
        "order.placed",
    )
    assert [r.name for r in finding.spans] == ["order.placed publish", "reserve-inventory"]


def test_an_event_id_equal_to_its_correlation_id_is_found_once_per_event() -> None:
    s = Spans()
    post = s.add("POST /orders", SpanKind.SERVER, "checkout-api")
    placed = s.publish(post, "order.placed", "order_1")
    s.consume(placed, "reserve-inventory", "inventory")
    s.consume(placed, "authorize-payment", "payment")
    (finding,) = lint(s.spans).findings
    assert (finding.rule, finding.service, finding.count) == ("TB302", "checkout-api", 1)
    assert "event ID order_1, which is also its correlation ID" in finding.message


def test_one_event_id_for_two_event_names_is_an_error() -> None:
    s = Spans()
    post = s.add("POST /orders", SpanKind.SERVER, "checkout-api")
    s.publish(post, "order.placed", "ord-9")
    s.publish(post, "order.shipped", "ord-9", at=2.0)
    findings = [f for f in lint(s.spans).findings if f.rule == "TB303"]
    (finding,) = findings
    assert finding.severity.value == "error"
    assert finding.details["events"] == ("order.placed", "order.shipped")


def test_a_correlation_id_that_is_a_trace_id_across_several_traces() -> None:
    s = Spans()
    post = s.add("POST /orders", SpanKind.SERVER, "checkout-api")
    correlation = post.trace_id
    placed = s.publish(post, "order.placed", "evt_1", correlation=correlation)
    s.consume(placed, "reserve-inventory", "inventory", correlation=correlation, link_only=True)
    (finding,) = lint(s.spans).findings
    assert (finding.rule, finding.service, finding.step) == (
        "TB304",
        "checkout-api",
        "POST /orders",
    )
    assert "spans 2 traces" in finding.message


def test_a_correlation_id_that_is_the_trace_id_of_a_single_trace_is_left_alone() -> None:
    s = Spans()
    post = s.add("POST /orders", SpanKind.SERVER, "checkout-api")
    placed = s.publish(post, "order.placed", "evt_1", correlation=post.trace_id)
    s.consume(placed, "reserve-inventory", "inventory", correlation=post.trace_id)
    assert _rules(s) == []


def test_distinct_identities_raise_nothing() -> None:
    assert lint(order_flow().spans).findings == ()
    assert not {"TB301", "TB302", "TB303", "TB304"} & {
        f.rule for f in lint(order_flow(stock=True).spans).findings
    }
