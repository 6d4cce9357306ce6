"""Stock labels (``tracebraid.views.labels``): what aio-pika and unnamed events read as."""

from __future__ import annotations

import pytest

from tracebraid.views.labels import destination_label, event_label


@pytest.mark.parametrize(
    ("destination", "label"),
    [
        ("orders,", "orders"),
        ("webhooks,,", "webhooks"),
        ("webhooks,order.shipped", "webhooks → order.shipped"),
        (",order.placed", "(default exchange) → order.placed"),
        ("orders", "orders"),
        (None, None),
    ],
)
def test_exchange_and_routing_key_read_as_one_destination(
    destination: str | None, label: str | None
) -> None:
    assert destination_label(destination) == label


def test_an_unnamed_event_is_called_by_where_it_went_and_who_took_it() -> None:
    assert event_label("order.placed", "orders,", ["x"]) == "order.placed"
    assert event_label(None, "orders,", ["a", "b", "a"]) == "message to orders → a, b"
    assert event_label(None, None, []) == "message"
