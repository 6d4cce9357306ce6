"""The causality assertions, called directly: what passes, and what the failure says."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracebraid.analysis import analyze
from tracebraid.analysis.lint import Severity, parse_conventions
from tracebraid.sdk import consuming, extract, publishing
from tracebraid.testing import (
    assert_no_findings,
    assert_no_islands,
    assert_one_workflow,
    capture_spans,
)
from tracebraid.testing.workflows import (
    fan_in,
    islands,
    order_flow,
    spread_over_traces,
)


def test_a_whole_workflow_passes_all_three() -> None:
    for flow in (order_flow(), spread_over_traces(5), fan_in(4)):
        assert_one_workflow(flow.spans)
        assert_no_islands(flow.spans)
        assert_no_findings(flow.spans, at_or_above="warning")


def test_separate_graphs_are_listed_with_where_they_start() -> None:
    with pytest.raises(AssertionError) as raised:
        assert_one_workflow(spread_over_traces(3, propagate=False).spans)
    lines = str(raised.value).splitlines()
    assert lines[0] == "expected one workflow, but the spans form 3 separate causal graphs:"
    assert lines[1].startswith("  1. starts at 'POST /orders' (checkout-api), trace ")
    assert lines[2].endswith(": 2 spans") and "'hop-1' (svc-1)" in lines[2]


def test_two_workflows_side_by_side_are_not_one() -> None:
    spans = order_flow().spans + islands(1).spans
    with pytest.raises(AssertionError, match="correlation IDs \\(order_441, order_islands\\)"):
        assert_one_workflow(spans)


def test_islands_say_where_their_event_came_from() -> None:
    spans = islands(2, orphans=1).spans
    with pytest.raises(AssertionError) as raised:
        assert_no_islands(spans)
    message = str(raised.value)
    assert message.startswith(f"expected no islands, found {len(analyze(spans).islands)}:")
    assert "was published by 'order.placed publish' (checkout-api) in another trace" in message
    assert "was published nowhere in these spans" in message
    assert "fix: inject traceparent when publishing" in message


def test_findings_at_or_above_a_threshold(tmp_path: Path) -> None:
    stock = order_flow(stock=True).spans
    report = assert_no_findings(stock)  # only warnings: below the default threshold
    assert report.worst is Severity.WARNING
    with pytest.raises(AssertionError) as raised:
        assert_no_findings(stock, at_or_above="warning")
    found = len(report.at_or_above(Severity.WARNING))
    assert found > 10  # more than are shown
    message = str(raised.value)
    assert message.startswith(f"expected no lint findings at or above warning, found {found}:")
    first = report.at_or_above(Severity.WARNING)[0]
    assert message.splitlines()[1] == (
        f"  warning {first.rule} {first.name} at {first.service} › {first.step}"
    )
    assert message.endswith(f"  ... and {found - 10} more")
    quiet = tmp_path / "quiet.yaml"
    quiet.write_text(
        "traceConventions:\n  requiredFields: []\n  spanNaming: {style: any}\n"
        "  rules: {TB601: info}\n"
    )
    assert_no_findings(stock, at_or_above="warning", conventions=quiet)
    assert_no_findings(
        stock,
        at_or_above=Severity.ERROR,
        conventions=parse_conventions("traceConventions:\n  rules: {TB401: info}\n"),
    )
    with pytest.raises(Exception, match="unknown severity 'fatal'"):
        assert_no_findings(stock, at_or_above="fatal")


def test_a_capture_can_be_passed_as_it_is() -> None:
    with capture_spans(service="shop") as captured:
        with publishing("order.placed", destination="orders") as publication:
            headers = publication.headers()
        with consuming(
            extract(headers),
            step="reserve-inventory",
            consumer="reserve-inventory",
            destination="orders",
        ):
            pass
    analysis = assert_one_workflow(captured)
    assert analysis.span_count == 2
    assert_no_islands(captured)
    assert_no_findings(captured, at_or_above="info")
