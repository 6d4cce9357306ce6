from __future__ import annotations

import dataclasses

from tracebraid.analysis import (
    DEFAULT_DEADLINE_NS,
    BranchStatus,
    PendingReason,
    PendingState,
    analyze,
    learn_topology,
    parse_topology,
    pending,
)
from tracebraid.testing.workflows import Try, Workflow, WorkflowBuilder

SECOND = 1_000_000_000


def test_a_complete_workflow_has_nothing_pending(flow: Workflow) -> None:
    topology = parse_topology("events: {order.placed: [payment, inventory]}")
    assert analyze(flow.spans, topology=topology, history=flow.spans).pending == ()


def test_an_expected_consumer_that_never_started_is_pending_until_its_deadline(
    flow: Workflow,
) -> None:
    topology = parse_topology("events: {order.placed: {consumers: [fraud-check], deadline: 10s}}")
    (placed,) = [s for s in flow.spans if s.name == "order.placed publish"]
    before = analyze(flow.spans, topology=topology, now_ns=placed.end_ns + 9 * SECOND)
    (waiting,) = before.pending
    assert (waiting.consumer, waiting.state, waiting.reason) == (
        "fraud-check",
        PendingState.PENDING,
        PendingReason.NOT_STARTED,
    )
    assert waiting.event_id == flow.events["order.placed"]
    assert waiting.published_ns == placed.end_ns
    assert waiting.deadline_ns == placed.end_ns + 10 * SECOND
    assert (waiting.overdue_ns, waiting.attempts, waiting.expected_by) == (0, 0, "topology")

    after = analyze(flow.spans, topology=topology, now_ns=placed.end_ns + 12 * SECOND)
    (lost,) = after.pending
    assert (lost.state, lost.overdue_ns) == (PendingState.LOST, 2 * SECOND)
    assert pending(after, include_lost=False) == ()


def test_declared_consumers_match_by_group_service_or_step(flow: Workflow) -> None:
    for name in ("payment", "authorize-payment"):
        topology = parse_topology(f"events: {{order.placed: [{name}]}}")
        assert analyze(flow.spans, topology=topology).pending == ()


def in_flight_flow(*, failed_first: bool) -> tuple[Workflow, int]:
    b = WorkflowBuilder()
    post = b.action("POST /orders", service="api", duration_ms=5)
    placed = b.publish(post, "order.placed", destination="orders")
    tries = [Try(10, error="E: x", backoff_ms=20), Try(10)] if failed_first else [Try(10)]
    b.consume(placed, "reserve", service="inventory", tries=tries, in_flight=True)
    b.consume(placed, "charge", service="payment")
    return b.build(), placed.span.end_ns


def test_in_flight_work_is_pending_then_lost_past_the_deadline() -> None:
    workflow, published = in_flight_flow(failed_first=False)
    topology = parse_topology("events: {order.placed: {consumers: [inventory], deadline: 1s}}")
    (running,) = analyze(workflow.spans, topology=topology, now_ns=published + SECOND // 2).pending
    assert (running.consumer, running.state, running.reason) == (
        "inventory",
        PendingState.PENDING,
        PendingReason.IN_FLIGHT,
    )
    (stuck,) = analyze(workflow.spans, topology=topology, now_ns=published + 3 * SECOND).pending
    assert (stuck.state, stuck.reason) == (PendingState.LOST, PendingReason.IN_FLIGHT)


def test_in_flight_work_is_pending_even_without_a_topology() -> None:
    workflow, _ = in_flight_flow(failed_first=True)
    (running,) = analyze(workflow.spans).pending
    assert (running.consumer, running.reason, running.expected_by) == (
        "inventory",
        PendingReason.IN_FLIGHT,
        "observed",
    )
    assert running.attempts == 1 and running.last_error == "E: x"


def test_a_branch_failing_so_far_is_pending() -> None:
    b = WorkflowBuilder()
    post = b.action("POST /orders", service="api", duration_ms=5)
    placed = b.publish(post, "order.placed", destination="orders")
    b.consume(placed, "reserve", service="inventory", tries=[Try(10, error="TimeoutError: t")])
    (failing,) = analyze(b.build().spans).pending
    assert (failing.reason, failing.attempts, failing.last_error) == (
        PendingReason.FAILING,
        1,
        "TimeoutError: t",
    )


def test_expectations_learned_from_history_find_a_missing_consumer(flow: Workflow) -> None:
    today = [s for s in flow.spans if s.service != "summary"]
    (missing,) = analyze(today, history=flow.spans).pending
    assert (missing.consumer, missing.expected_by, missing.reason) == (
        "summary",
        "history",
        PendingReason.NOT_STARTED,
    )
    assert missing.event_id == flow.events["payment.authorized"]
    assert learn_topology(flow.spans).expectation("payment.authorized") is not None


def test_stock_spans_learn_and_match_by_destination(stock_flow: Workflow) -> None:
    today = [s for s in stock_flow.spans if s.service != "summary"]
    (missing,) = analyze(today, history=stock_flow.spans).pending
    assert missing.consumer == "summary"
    assert missing.event_name is None


def test_a_message_nobody_consumed_is_reported_apart_without_a_topology() -> None:
    b = WorkflowBuilder()
    post = b.action("POST /reports", service="api", duration_ms=5)
    b.publish(post, "report.requested", destination="reports")
    analysis = analyze(b.build().spans)
    assert analysis.pending == ()  # no consumer is expected: nothing *pending*...
    (unread,) = analysis.unconsumed  # ...but the message is reported
    assert unread.summary == "published to reports, no consumer seen yet"
    assert unread.state is PendingState.PENDING
    later = analyze(b.build().spans, now_ns=unread.published_ns + DEFAULT_DEADLINE_NS + SECOND)
    assert [(u.state, u.overdue_ns) for u in later.unconsumed] == [(PendingState.LOST, SECOND)]


def test_an_expected_consumer_keeps_a_message_out_of_unconsumed() -> None:
    b = WorkflowBuilder()
    post = b.action("POST /reports", service="api", duration_ms=5)
    b.publish(post, "report.requested", destination="reports")
    topology = parse_topology("events: {report.requested: [reporter]}")
    analysis = analyze(b.build().spans, topology=topology)
    assert analysis.unconsumed == ()
    assert [p.consumer for p in analysis.pending] == ["reporter"]


def test_without_a_topology_failing_work_is_lost_after_the_default_deadline() -> None:
    b = WorkflowBuilder()
    post = b.action("POST /orders", service="api", duration_ms=5)
    placed = b.publish(post, "order.placed", destination="orders")
    b.consume(placed, "reserve", service="inventory", tries=[Try(10, error="E: down")])
    spans = b.build().spans
    (waiting,) = analyze(spans).pending
    assert waiting.state is PendingState.PENDING
    assert waiting.deadline_ns == (waiting.published_ns or 0) + DEFAULT_DEADLINE_NS
    much_later = (waiting.published_ns or 0) + 341 * 86_400 * SECOND
    (lost,) = analyze(spans, now_ns=much_later).pending
    assert lost.state is PendingState.LOST  # never "in flight for 341 days"
    # A declared deadline still overrides the default.
    topology = parse_topology("default_deadline: 2d\nevents: {}")
    (declared,) = analyze(spans, topology=topology, now_ns=waiting.deadline_ns + SECOND).pending
    assert declared.state is PendingState.PENDING


def test_a_final_failure_is_failed_for_good_not_pending() -> None:
    # Celery's FAILURE comes only once no retry will: the branch is failed, done, and
    # must not wait as "failing" for a deadline (a RETRY run before it still says failing).
    b = WorkflowBuilder()
    post = b.action("POST /orders", service="api", duration_ms=5)
    placed = b.publish(post, "order.placed", destination="orders")
    tries = [Try(10, error="Retry in 1s", backoff_ms=50), Try(10, error="KeyError: k")]
    b.consume(placed, "invoice", service="billing", tries=tries)
    spans = list(b.build().spans)
    runs = [n for n, s in enumerate(spans) if s.service == "billing" and s.name == "invoice"]
    states = ["RETRY", "FAILURE"]
    for n, state in zip(runs, states, strict=True):
        spans[n] = dataclasses.replace(
            spans[n], attributes={**spans[n].attributes, "celery.state": state}
        )
    analysis = analyze(spans)
    (branch,) = analysis.branches
    assert branch.status is BranchStatus.FAILED and branch.gave_up
    assert analysis.pending == ()
    # Without the FAILURE, the same failure may yet be retried: it is pending.
    spans[runs[-1]] = dataclasses.replace(
        spans[runs[-1]], attributes={**spans[runs[-1]].attributes, "celery.state": "RETRY"}
    )
    (failing,) = analyze(spans).pending
    assert failing.reason is PendingReason.FAILING
