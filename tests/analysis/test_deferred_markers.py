"""tracebraid's SDK emits a start marker only for work still running 100 ms after it
began, so most consumers have none: nothing may read that absence as a gap."""

from __future__ import annotations

from tracebraid.analysis import BranchStatus, PendingReason, analyze, parse_topology
from tracebraid.testing.workflows import Try, WorkflowBuilder, order_flow

TOPOLOGY = parse_topology(
    "events: {order.placed: [payment, inventory], payment.authorized: [summary],"
    " inventory.reserved: [warehouse]}"
)


def test_quick_consumers_without_markers_are_settled_and_no_gap_is_reported() -> None:
    quick = order_flow(markers=False)
    analysis = analyze(quick.spans, topology=TOPOLOGY, now_ns=quick.end_ns)
    assert analysis.graph.marker_count == 0
    assert analysis.pending == () and analysis.in_flight == ()
    assert all(b.status is BranchStatus.SUCCEEDED for b in analysis.branches)
    assert analysis.limitation("start_markers_absent") is None


def test_only_the_slow_consumer_has_a_marker_and_only_it_is_in_flight() -> None:
    b = WorkflowBuilder(markers=False)
    post = b.action("POST /orders", service="api", duration_ms=5)
    placed = b.publish(post, "order.placed", destination="orders")
    b.consume(placed, "charge", service="payment", group="payment")
    b.consume(placed, "reserve", service="inventory", group="inventory",
              tries=[Try(10, error="E: x", backoff_ms=20), Try(500)], in_flight=True)  # fmt: skip
    workflow = b.build()
    analysis = analyze(workflow.spans, topology=TOPOLOGY)
    assert analysis.graph.marker_count == 1
    (waiting,) = analysis.pending
    assert (waiting.consumer, waiting.reason) == ("inventory", PendingReason.IN_FLIGHT)
    assert [f.consumer for f in analysis.in_flight] == ["inventory"]
    assert analysis.limitation("start_markers_absent") is None


def test_markers_absent_is_said_of_the_consumers_whose_instrumentation_emits_none() -> None:
    # SDK consumers (quick: no markers) next to a stock-instrumented one, which never has any.
    b = WorkflowBuilder(stock=True, seed=9, correlation_id=None)
    post = b.action("POST /audit", service="legacy-api", duration_ms=5)
    b.consume(b.publish(post, "order.placed", destination="audit"), "audit", service="audit")
    spans = order_flow(markers=False).spans + b.build().spans
    absent = analyze(spans).limitation("start_markers_absent")
    assert absent is not None and absent.count == 1
    assert "audit" in absent.message
