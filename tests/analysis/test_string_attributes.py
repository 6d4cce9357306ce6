"""Attributes stored as strings (the OpenTelemetry Collector's ClickHouse exporter keeps
``Map(String, String)``) give the same analysis as the typed attributes the SDK wrote."""

from __future__ import annotations

import dataclasses

import pytest

from tracebraid import semconv
from tracebraid.analysis import analyze
from tracebraid.model import Attributes, Span
from tracebraid.store.clickhouse.codec import TYPES_KEY, encode_attributes
from tracebraid.testing.workflows import Try, Workflow, WorkflowBuilder, fan_in, order_flow


def as_text(attributes: Attributes) -> dict[str, str]:
    """Every value as the Collector renders it, with no record of its type."""
    encoded = encode_attributes(attributes)
    encoded.pop(TYPES_KEY, None)
    return encoded


def stored_by_the_collector(span: Span) -> Span:
    return dataclasses.replace(
        span,
        attributes=as_text(span.attributes),
        events=tuple(dataclasses.replace(e, attributes=as_text(e.attributes)) for e in span.events),
        links=tuple(dataclasses.replace(k, attributes=as_text(k.attributes)) for k in span.links),
    )


def dead_letter_flagged_only() -> Workflow:
    """A consumer that gave up and said so only with tracebraid.dead_letter=true."""
    b = WorkflowBuilder()
    post = b.action("POST /orders", service="api", duration_ms=5)
    placed = b.publish(post, "order.placed", destination="orders")
    b.consume(placed, "reserve", service="inventory",
              tries=[Try(10, error="E: no", backoff_ms=200),
                     Try(10, error="E: no", dead_letter=True)])  # fmt: skip
    spans = [
        dataclasses.replace(
            s, attributes={k: v for k, v in s.attributes.items() if k != semconv.OUTCOME}
        )
        for s in b.build().spans
    ]
    return Workflow(tuple(spans), None, b.start_ns)


@pytest.mark.parametrize(
    "workflow",
    [order_flow(), fan_in(5), dead_letter_flagged_only()],
    ids=["order_flow", "fan_in", "dead_letter"],
)
def test_string_typed_attributes_give_the_same_analysis(workflow: Workflow) -> None:
    typed = analyze(workflow.spans)
    stored = analyze([stored_by_the_collector(s) for s in workflow.spans])
    assert any(isinstance(v, int | bool) for s in workflow.spans for v in s.attributes.values())
    assert stored.to_dict() == typed.to_dict()
