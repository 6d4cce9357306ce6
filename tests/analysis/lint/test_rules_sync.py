"""TB701: messages sent as plain HTTP/RPC calls."""

from __future__ import annotations

import pytest

from tracebraid.analysis.lint import lint, parse_conventions
from tracebraid.model import AttributeValue, SpanKind
from tracebraid.testing.workflows import order_flow

from .shapes import Spans


def _call(name: str, kind: SpanKind = SpanKind.CLIENT, **attributes: AttributeValue) -> Spans:
    s = Spans()
    post = s.add(
        "POST /orders",
        SpanKind.SERVER,
        "checkout-api",
        attributes={"http.request.method": "POST", "http.route": "/orders"},
    )
    s.add(name, kind, "checkout-api", parent=post, attributes=dict(attributes), at=2.0)
    return s


@pytest.mark.parametrize(
    ("name", "attributes"),
    [
        (
            "POST",
            {
                "http.request.method": "POST",
                "url.full": "http://mq:15672/api/exchanges/%2F/audit/publish",
            },
        ),
        ("POST", {"http.method": "POST", "http.url": "http://rest-proxy:8082/topics/orders"}),
        (
            "POST",
            {
                "http.request.method": "POST",
                "url.full": "https://pubsub.googleapis.com/v1/projects/p/topics/orders:publish",
            },
        ),
        ("SNS.Publish", {"rpc.system": "aws-api", "rpc.service": "SNS", "rpc.method": "Publish"}),
        ("PUBLISH", {"db.system": "redis", "db.statement": "PUBLISH orders ?"}),
        ("publish order.placed", {}),
    ],
)
def test_broker_calls_without_messaging_attributes(
    name: str, attributes: dict[str, AttributeValue]
) -> None:
    (finding,) = lint(_call(name, **attributes).spans).findings
    assert (finding.rule, finding.service, finding.step, finding.key) == (
        "TB701",
        "checkout-api",
        "POST /orders",
        name,
    )


def test_ordinary_http_calls_are_left_alone() -> None:
    assert lint(order_flow().spans).findings == ()  # POST /charges, POST /webhooks/orders
    reading = _call("GET", **{"http.request.method": "GET", "url.full": "http://api/topics/42"})
    assert lint(reading.spans).findings == ()
    cms = _call("POST", **{"http.request.method": "POST", "url.full": "http://cms/a/1/publish"})
    assert lint(cms.spans).findings == ()
    served = _call("POST /articles/{id}/publish", SpanKind.SERVER, **{"http.route": "/a/publish"})
    assert lint(served.spans).findings == ()


def test_a_call_with_messaging_attributes_or_inside_a_producer_is_not_sync_only() -> None:
    recorded = _call(
        "POST",
        **{
            "http.request.method": "POST",
            "messaging.system": "rabbitmq",
            "url.full": "http://mq:15672/api/exchanges/%2F/a/publish",
        },
    )
    assert [f.rule for f in lint(recorded.spans).findings] == []
    s = Spans()
    post = s.add("POST /orders", SpanKind.SERVER, "checkout-api")
    producer = s.publish(post, "order.placed", "evt_1")
    s.add(
        "POST",
        SpanKind.CLIENT,
        "checkout-api",
        parent=producer,
        attributes={
            "http.request.method": "POST",
            "url.full": "http://mq:15672/api/exchanges/%2F/o/publish",
        },
    )
    assert "TB701" not in {f.rule for f in lint(s.spans).findings}


def test_project_endpoints_from_the_conventions() -> None:
    spans = _call("POST", **{"http.request.method": "POST", "url.path": "/v1/events"}).spans
    assert lint(spans).findings == ()
    conventions = parse_conventions(
        "traceConventions:\n  syncMessaging:\n    endpoints: ['^/v1/events$']\n"
    )
    (finding,) = lint(spans, conventions).findings
    assert "syncMessaging.endpoints" in finding.message
