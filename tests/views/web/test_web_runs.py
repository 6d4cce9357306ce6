"""Runs of a workflow (``tracebraid.views.web.runs``): what belongs together, what not."""

from __future__ import annotations

from web_data import RUN_GAP_MS, twice_spans

from tracebraid.analysis import analyze
from tracebraid.testing.workflows import Try, WorkflowBuilder, islands, order_flow
from tracebraid.views.documents import workflow_document
from tracebraid.views.web.runs import RUN_GAP_NS, split_runs, workflow_counts


def test_two_user_actions_far_apart_are_two_runs() -> None:
    spans = twice_spans(10**18)
    runs = split_runs(spans)
    assert len(runs) == 2
    assert runs[1].start_ns - runs[0].end_ns >= RUN_GAP_MS * 1_000_000 - 10**9
    assert set(runs[0].trace_ids).isdisjoint(runs[1].trace_ids)
    assert {s.trace_id for s in spans} == set(runs[0].trace_ids) | set(runs[1].trace_ids)


def test_a_consumer_much_later_stays_in_the_run_of_its_producer() -> None:
    # A consumer that lost the trace context and ran 20 minutes late: joined by event ID.
    b = WorkflowBuilder(correlation_id="order_late", start_ns=10**18)
    placed = b.publish(
        b.action("POST /orders", service="api", duration_ms=5), "order.placed", destination="orders"
    )
    b.consume(placed, "late-step", service="late", wait_ms=20 * 60 * 1000, propagate=False)
    spans = b.build().spans
    assert len({s.trace_id for s in spans}) == 2
    assert len(split_runs(spans)) == 1


def test_traces_close_in_time_are_one_run_and_the_gap_is_a_parameter() -> None:
    spans = twice_spans(10**18)
    assert len(split_runs(spans, gap_ns=RUN_GAP_MS * 2_000_000)) == 1
    assert len(split_runs(islands(3).spans, gap_ns=RUN_GAP_NS)) == 1
    assert split_runs([]) == []


def test_counts_are_read_off_the_analysis_document() -> None:
    b = WorkflowBuilder(correlation_id="order_c", start_ns=10**18)
    placed = b.publish(
        b.action("POST /orders", service="api", duration_ms=5), "order.placed", destination="orders"
    )
    b.consume(placed, "flaky", service="s", tries=[Try(5, error="E", backoff_ms=5), Try(5)])
    b.consume(placed, "broken", service="t", tries=[Try(5, error="E")])
    document = workflow_document(analyze(b.build().spans), key="order_c")
    counts = workflow_counts(document)
    assert counts["retries"] == document["summary"]["retries"] == 1
    assert counts["failing"] == 1
    flow = workflow_document(analyze(order_flow().spans), key="order_441")
    assert workflow_counts(flow)["lagging"] == len(flow["lagging"]) == 1
