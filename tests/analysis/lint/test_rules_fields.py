"""TB401: fields the conventions require, where each applies."""

from __future__ import annotations

from tracebraid.analysis.lint import lint, parse_conventions
from tracebraid.model import SpanKind
from tracebraid.testing.workflows import order_flow

from .shapes import Spans


def _conventions(fields: str, services: str = "") -> object:
    return parse_conventions(f"traceConventions:\n  requiredFields: [{fields}]\n{services}")


def test_stock_consumers_lack_the_seeds_consumer_name_and_correlation() -> None:
    findings = [f for f in lint(order_flow(stock=True).spans).findings if f.rule == "TB401"]
    warehouse = next(f for f in findings if f.service == "warehouse")
    assert warehouse.step == "inventory receive"
    assert warehouse.details == {"missing": ("correlationId", "consumerName"), "role": "consumer"}
    assert warehouse.count == 3  # three attempts
    assert "correlationId on 3, consumerName on 3" in warehouse.message


def test_each_field_applies_only_where_it_means_something() -> None:
    everything = (
        "traceId, spanId, parentSpanId, eventId, correlationId, causationId, eventName, "
        "consumerName, attempt"
    )
    assert lint(order_flow().spans, _conventions(everything)).findings == ()  # type: ignore[arg-type]
    s = Spans()
    post = s.add("POST /orders", SpanKind.SERVER, "checkout-api")
    placed = s.publish(post, "order.placed", "evt_1")
    work = s.consume(placed, "reserve-inventory", "inventory", attempt=None, link_only=True)
    s.publish(work, "inventory.reserved", "evt_2", at=7.0)  # no causation ID
    findings = lint(s.spans, _conventions(everything)).findings  # type: ignore[arg-type]
    assert sorted((f.service, f.details["role"], f.details["missing"]) for f in findings) == [
        ("inventory", "consumer", ("parentSpanId", "attempt")),
        ("inventory", "producer", ("causationId",)),
    ]


def test_per_service_overrides_relax_or_tighten_the_project() -> None:
    spans = order_flow(stock=True).spans
    relaxed = _conventions(
        "consumerName", "  services:\n    warehouse:\n      requiredFields: []\n"
    )
    services = {f.service for f in lint(spans, relaxed).findings if f.rule == "TB401"}  # type: ignore[arg-type]
    assert "warehouse" not in services and "inventory" in services


def test_nothing_required_nothing_missing() -> None:
    assert not [
        f
        for f in lint(order_flow(stock=True).spans, _conventions("")).findings  # type: ignore[arg-type]
        if f.rule == "TB401"
    ]
