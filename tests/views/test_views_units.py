"""Durations and identities as an operator reads them."""

from __future__ import annotations

import pytest

from tracebraid.views.units import format_duration, short_id


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (None, "?"),
        (350_000, "0.35 ms"),
        (2_744_225, "2.7 ms"),
        (812_400_000, "812 ms"),
        (1_920_000_000, "1.92 s"),
        (125_000_000_000, "2 min 5 s"),
        (7_380_000_000_000, "2 h 3 min"),
    ],
)
def test_format_duration(ns: int | None, text: str) -> None:
    assert format_duration(ns) == text


def test_short_id_keeps_the_prefix_and_full_shows_all() -> None:
    event = "evt_5bc9444af5081f42582c8900a7b71ed5"
    assert short_id(event) == "evt_5bc9444a…"
    assert short_id(event, full=True) == event
    assert short_id("4bf92f3577b34da6a3ce929d0e0e4736") == "4bf92f35…"
    assert short_id("evt_8821") == "evt_8821"
    assert short_id("order_441") == "order_441"
