"""TB501: consumer spans named in technical terms only."""

from __future__ import annotations

import pytest

from tracebraid.analysis.lint import lint, parse_conventions
from tracebraid.analysis.lint.rules import is_technical
from tracebraid.model import SpanKind
from tracebraid.testing.workflows import order_flow

from .shapes import Spans


@pytest.mark.parametrize(
    "name",
    ["process", "consume", "orders receive", "orders process", "POST /orders",
     "handle_message", "on_message", "kafka.consume", "rabbitmq process"],
)  # fmt: skip
def test_technical_names(name: str) -> None:
    assert is_technical(name, destination="orders", system="rabbitmq")


def test_the_destination_of_stock_instrumentation_counts_as_technical() -> None:
    assert is_technical("orders,reserve send", destination="orders,reserve")
    assert not is_technical("orders,reserve send", destination="orders")


@pytest.mark.parametrize(
    "name", ["reserve-inventory", "authorize-payment", "send-warehouse-webhook", "bill items"]
)
def test_business_names(name: str) -> None:
    assert not is_technical(name, destination="orders")


def _consumer_named(name: str, group: str | None = "reserve-inventory") -> Spans:
    s = Spans()
    post = s.add("POST /orders", SpanKind.SERVER, "checkout-api")
    placed = s.publish(post, "order.placed", "evt_1")
    s.consume(placed, "reserve-inventory", "inventory", name=name, group=group)
    return s


def test_a_consumer_named_process_gets_its_group_as_the_suggestion() -> None:
    (finding,) = lint(_consumer_named("process").spans).findings
    assert (finding.rule, finding.service, finding.step) == (
        "TB501",
        "inventory",
        "reserve-inventory",
    )
    assert finding.details == {"names": ("process",), "suggestion": "reserve-inventory"}
    assert "'reserve-inventory'" in finding.fix


def test_without_a_business_group_the_suggestion_is_a_verb_noun_step() -> None:
    findings = [f for f in lint(order_flow(stock=True).spans).findings if f.rule == "TB501"]
    assert sorted(f.service for f in findings) == ["inventory", "payment", "summary", "warehouse"]
    warehouse = next(f for f in findings if f.service == "warehouse")
    assert warehouse.details["names"] == ("inventory receive",)
    assert "verb-noun" in str(warehouse.details["suggestion"])


def test_style_any_and_extra_technical_names() -> None:
    spans = _consumer_named("process").spans
    relaxed = parse_conventions("traceConventions:\n  spanNaming: {style: any}\n")
    assert lint(spans, relaxed).findings == ()
    strict = parse_conventions(
        "traceConventions:\n  spanNaming:\n    technicalNames: [reserve-inventory]\n"
    )
    assert [f.rule for f in lint(order_flow().spans, strict).findings] == ["TB501"]


def test_business_step_names_pass() -> None:
    assert lint(_consumer_named("reserve-inventory").spans).findings == ()
