"""The causal tree as an operator reads it, on the real demo workflow and on odd shapes."""

from __future__ import annotations

import re

from rich.console import Console

from tracebraid.analysis import WorkflowAnalysis, analyze, parse_topology
from tracebraid.model import Span, SpanId, SpanKind, TraceId
from tracebraid.testing.workflows import islands, order_flow
from tracebraid.views.layout import NodeState, build_tree, walk_branches
from tracebraid.views.tree import render_tree


def rendered(analysis: WorkflowAnalysis, *, ids: bool = False) -> str:
    console = Console(record=True, width=120, color_system=None)
    console.print(render_tree(analysis, ids=ids))
    return console.export_text()


def line_with(text: str, *needles: str) -> str:
    lines = [line for line in text.splitlines() if all(n in line for n in needles)]
    assert len(lines) == 1, f"{needles} on {len(lines)} lines of:\n{text}"
    return lines[0]


def test_webhook_shows_every_attempt_on_its_own_line(order_analysis: WorkflowAnalysis) -> None:
    text = rendered(order_analysis)
    attempts = [line.strip(" │◆") for line in text.splitlines() if re.search(r"attempt \d", line)]
    assert len(attempts) == 3, text
    assert attempts[0].startswith("attempt 1 ✗ TimeoutError after")
    assert attempts[1].startswith("attempt 2 ✗ TimeoutError after")
    assert attempts[2].startswith("attempt 3 ✓")
    assert "back-off" in attempts[0] and "back-off" in attempts[1]
    assert "back-off" not in attempts[2]
    webhook = line_with(text, "send-warehouse-webhook", "warehouse", "waited")
    assert "3 attempts ✓" in webhook


def test_backoff_figures_are_the_gaps_between_attempts(order_analysis: WorkflowAnalysis) -> None:
    webhook = next(b for b in order_analysis.branches if b.step == "send-warehouse-webhook")
    second = webhook.attempts[1]
    assert second.backoff_before_ns is not None
    gap_ms = second.backoff_before_ns / 1e6
    line = line_with(rendered(order_analysis), "attempt 1")
    found = re.search(r"back-off ([\d.]+) ms", line)
    assert found is not None, line
    shown = float(found.group(1))
    assert abs(shown - gap_ms) <= max(1.0, gap_ms * 0.05)


def test_lagging_consumer_is_marked(order_analysis: WorkflowAnalysis) -> None:
    text = rendered(order_analysis)
    assert "(lagging)" in line_with(text, "project-order-summary", "summary")
    assert "(lagging)" not in line_with(text, "authorize-payment", "payment", "waited")


def test_in_flight_loyalty_branch_is_shown(order_analysis: WorkflowAnalysis) -> None:
    line = line_with(rendered(order_analysis), "award-loyalty-points", "loyalty")
    assert "⋯ in flight for" in line
    assert "due within" in line  # the topology's 60 s deadline has not passed


def test_header_counts_retries_pending_and_breaks(order_analysis: WorkflowAnalysis) -> None:
    header = rendered(order_analysis).splitlines()[0]
    assert header.startswith("order_441 · trace ")
    assert "2 retries" in header and "1 pending" in header and "0 broken links" in header


def test_tree_follows_the_causal_shape(order_analysis: WorkflowAnalysis) -> None:
    text = rendered(order_analysis).splitlines()
    position = {name: next(i for i, line in enumerate(text) if name in line) for name in (
        "POST /orders", "order.placed", "authorize-payment", "payment.authorized",
        "project-order-summary", "reserve-inventory", "inventory.reserved",
        "send-warehouse-webhook",
    )}  # fmt: skip
    assert position["POST /orders"] == 1
    assert position["order.placed"] < position["authorize-payment"] < position["payment.authorized"]
    assert position["payment.authorized"] < position["project-order-summary"]
    assert position["reserve-inventory"] < position["inventory.reserved"]
    assert position["inventory.reserved"] < position["send-warehouse-webhook"]
    indent = {name: len(text[i]) - len(text[i].lstrip(" │├└─▶")) for name, i in position.items()}
    assert indent["payment.authorized"] > indent["authorize-payment"] > indent["order.placed"]


def test_critical_path_is_marked_and_summarised(order_analysis: WorkflowAnalysis) -> None:
    text = rendered(order_analysis)
    summary = line_with(text, "critical path")
    assert "POST /orders → reserve-inventory → send-warehouse-webhook (3 attempts)" in summary
    made_of = text.splitlines()[text.splitlines().index(summary) + 1]
    assert " of " in made_of and "back-off" in made_of and "failed attempts" in made_of
    assert "◆" in line_with(text, "reserve-inventory", "inventory", "waited")
    assert "◆" not in line_with(text, "authorize-payment", "payment", "waited")
    assert "◆" in line_with(text, "attempt 3")


def test_ids_on_demand(order_analysis: WorkflowAnalysis) -> None:
    plain, full = rendered(order_analysis), rendered(order_analysis, ids=True)
    trace_id = order_analysis.trace_ids[0]
    webhook = next(b for b in order_analysis.branches if b.step == "send-warehouse-webhook")
    for identity in (trace_id, webhook.event_id, webhook.attempts[0].span.span_id):
        assert identity in full
        assert identity not in plain
    assert "order_441" in full.splitlines()[0]
    assert "caused by event" in full  # causation IDs of the follow-up events


def test_no_colour_no_escape_codes(order_analysis: WorkflowAnalysis) -> None:
    assert "\x1b[" not in rendered(order_analysis)


def test_expected_consumer_that_never_started() -> None:
    flow = order_flow()
    topology = parse_topology("events: {order.placed: [payment, inventory, fraud-check]}")
    text = rendered(analyze(flow.spans, topology=topology, now_ns=flow.end_ns))
    assert "⋯ not started, expected by topology" in line_with(text, "fraud-check")


def test_lost_branch_past_its_deadline(order_flow_spans: list[Span]) -> None:
    topology = parse_topology(
        "events: {payment.authorized: {consumers: [award-loyalty-points], deadline: 1ms}}"
    )
    late = max(s.end_ns for s in order_flow_spans) + 5_000_000_000
    analysis = analyze(order_flow_spans, topology=topology, now_ns=late)
    text = rendered(analysis)
    assert "lost:" in line_with(text, "award-loyalty-points")
    assert "1 lost" in text.splitlines()[0]
    node = next(n for n in walk_branches(build_tree(analysis)) if n.step == "award-loyalty-points")
    assert node.state is NodeState.LOST


def test_stitched_deliveries_and_breaks_are_marked() -> None:
    text = rendered(analyze(islands(2).spans))
    audits = [line for line in text.splitlines() if "legacy-audit" in line and "waited" in line]
    assert len(audits) == 2 and all("stitched" in line for line in audits)
    assert "2 broken links" in text.splitlines()[0]
    assert "broken link:" in text and "'legacy-audit'" in text


def test_limitations_are_said() -> None:
    text = rendered(analyze(order_flow(stock=True).spans))
    assert "note: no correlation ID on any span" in text


def test_orphan_events_are_listed_under_their_unknown_cause() -> None:
    text = rendered(analyze(islands(1, orphans=1).spans))
    assert "(cause not among the spans)" in text
    assert "(its producer is not among the spans)" in text


def test_receive_only_deliveries_read_as_unknown_never_as_succeeded() -> None:
    # aiokafka's receive spans end before the handler runs: three deliveries of one record.
    scope = "opentelemetry.instrumentation.aiokafka"
    sent = Span(TraceId("1" * 32), SpanId("1" * 16), None, "orders send", SpanKind.PRODUCER,
                0, 1_000_000, "checkout", scope=scope,
                attributes={"messaging.destination.name": "orders"})  # fmt: skip
    spans = [sent] + [
        Span(sent.trace_id, SpanId(f"{n + 2:016x}"), sent.span_id, "orders receive",
             SpanKind.CONSUMER, (5 + 400 * n) * 1_000_000, (5 + 400 * n) * 1_000_000 + 200_000,
             "loyalty", scope=scope,
             attributes={"messaging.destination.name": "orders",
                         "messaging.operation.type": "receive",
                         "messaging.message.id": "orders.0.0"})
        for n in range(3)
    ]  # fmt: skip
    analysis = analyze(spans)
    (node,) = walk_branches(build_tree(analysis))
    assert node.state is NodeState.UNKNOWN
    text = rendered(analysis)
    line = line_with(text, "loyalty", "3 deliveries")
    assert "outcome unknown" in line and "✓" not in line and "✗" not in line
    assert "attempt 1 ? delivered, outcome unknown" in text
