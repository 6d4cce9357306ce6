"""TB601 hidden retries and TB602 missing attempts."""

from __future__ import annotations

from tracebraid.analysis.lint import lint
from tracebraid.model import Span, SpanKind
from tracebraid.testing.workflows import duplicates, order_flow

from .shapes import Spans


def _retried(attempts: list[int | None], outcomes: list[bool] | None = None) -> list[Span]:
    s = Spans()
    post = s.add("POST /orders", SpanKind.SERVER, "checkout-api")
    placed = s.publish(post, "order.placed", "evt_1")
    failed = outcomes or [True] * (len(attempts) - 1) + [False]
    for n, (attempt, fails) in enumerate(zip(attempts, failed, strict=True)):
        s.consume(
            placed, "reserve-inventory", "inventory", attempt=attempt, at=5.0 + 10 * n, failed=fails
        )
    return s.spans


def _found(spans: list[Span] | tuple[Span, ...], rule: str) -> list[tuple[str, str]]:
    return [(f.service, f.step) for f in lint(spans).findings if f.rule == rule]


def test_retries_that_all_say_attempt_1_are_hidden() -> None:
    (finding,) = [f for f in lint(_retried([1, 1, 1])).findings]
    assert (finding.rule, finding.service, finding.step) == (
        "TB601",
        "inventory",
        "reserve-inventory",
    )
    assert "3 times and their attempt numbers read 1, 1, 1" in finding.message


def test_retries_without_numbers_from_stock_instrumentation_are_hidden() -> None:
    assert _found(order_flow(stock=True).spans, "TB601") == [("warehouse", "inventory receive")]


def test_numbered_retries_and_duplicate_deliveries_are_visible() -> None:
    assert _found(_retried([1, 2, 3]), "TB601") == []
    assert _found(order_flow().spans, "TB601") == []
    assert _found(duplicates().spans, "TB601") == []  # two successes: a duplicate, not a retry


def test_an_attempt_3_without_attempts_1_and_2() -> None:
    (finding,) = lint(_retried([3], [False])).findings
    assert (finding.rule, finding.step) == ("TB602", "reserve-inventory")
    assert "reports attempt 3" in finding.message and "attempts 1-2" in finding.message


def test_a_gap_between_attempts() -> None:
    (finding,) = lint(_retried([1, 3])).findings
    assert finding.rule == "TB602" and "attempt 2 is not among" in finding.message


def test_no_gap_no_finding() -> None:
    assert _found(_retried([1, 2]), "TB602") == []
    assert _found(order_flow(stock=True).spans, "TB602") == []  # no numbers: TB601's business
