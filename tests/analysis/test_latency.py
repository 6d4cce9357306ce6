from __future__ import annotations

from tracebraid.analysis import (
    LAG_FACTOR,
    LAG_MIN_NS,
    EdgeKind,
    Hop,
    Role,
    SegmentKind,
    WorkflowAnalysis,
    analyze,
    latency,
)
from tracebraid.testing.workflows import (
    Try,
    Workflow,
    WorkflowBuilder,
    clock_skew,
    duplicates,
    fan_in,
)

from .support import branch_by_step, spans_named


def test_queue_wait_and_processing_per_delivery(flow: Workflow, analysis: WorkflowAnalysis) -> None:
    spans = tuple(s for s in flow.spans if not s.scope)
    (placed,) = spans_named(spans, "order.placed publish")
    (payment,) = spans_named(spans, "authorize-payment")
    (delivery,) = [d for d in analysis.deliveries if d.consumer_span.span_id == payment.span_id]
    assert delivery.producer.span_id == placed.span_id
    assert delivery.queue_wait_ns == payment.start_ns - placed.end_ns
    assert delivery.processing_ns == payment.duration_ns
    assert (delivery.via, delivery.attempt, delivery.clock_skew_ns) == (EdgeKind.DELIVERY, 1, 0)


def test_retries_wait_for_back_off_not_for_the_queue(
    flow: Workflow, analysis: WorkflowAnalysis
) -> None:
    attempts = spans_named(tuple(s for s in flow.spans if not s.scope), "send-warehouse-webhook")
    deliveries = sorted(
        (d for d in analysis.deliveries if d.consumer == "warehouse"), key=lambda d: d.attempt or 0
    )
    assert [d.queue_wait_ns is None for d in deliveries] == [False, True, True]
    assert [d.backoff_before_ns for d in deliveries] == [
        None,
        attempts[1].start_ns - attempts[0].end_ns,
        attempts[2].start_ns - attempts[1].end_ns,
    ]
    (webhook,) = [b for b in analysis.branch_latencies if b.consumer == "warehouse"]
    assert webhook.processing_ns == attempts[2].duration_ns
    assert webhook.failed_attempts_ns == attempts[0].duration_ns + attempts[1].duration_ns
    assert webhook.backoff_ns == attempts[2].start_ns - attempts[0].end_ns - attempts[1].duration_ns
    assert webhook.queue_wait_ns is not None and webhook.total_ns is not None
    (reserved,) = spans_named(tuple(flow.spans), "inventory.reserved publish")
    assert webhook.total_ns == attempts[2].end_ns - reserved.end_ns


def test_the_summary_consumer_lags(analysis: WorkflowAnalysis) -> None:
    (lag,) = analysis.lagging
    assert lag.consumer == "summary" and lag.compared_with == "workflow"
    assert lag.queue_wait_ns >= LAG_MIN_NS
    assert lag.queue_wait_ns > LAG_FACTOR * lag.baseline_ns
    waits = sorted(
        b.queue_wait_ns
        for b in analysis.branch_latencies
        if b.consumer != "summary" and b.queue_wait_ns is not None
    )
    assert lag.baseline_ns == waits[len(waits) // 2]
    assert [b.consumer for b in analysis.branch_latencies if b.lagging] == ["summary"]


def test_a_slow_sibling_lags_its_siblings_and_fast_noise_does_not() -> None:
    b = WorkflowBuilder()
    post = b.action("POST /orders", service="api", duration_ms=5)
    placed = b.publish(post, "order.placed", destination="orders")
    for name, wait in [("a", 5), ("b", 6), ("c", 7), ("slow", 400), ("quick", 50)]:
        b.consume(placed, name, service=name, wait_ms=wait)
    lagging = analyze(b.build().spans).lagging
    assert [(lag.consumer, lag.compared_with) for lag in lagging] == [("slow", "siblings")]
    assert lagging[0].baseline_ns == 6_500_000  # median of 5, 6, 7, 50 ms


def test_clock_skew_is_clamped_to_zero_and_flagged() -> None:
    workflow = clock_skew(40.0)
    analysis = analyze(workflow.spans)
    (skew,) = analysis.clock_skews
    (placed,) = spans_named(workflow.spans, "order.placed publish")
    (inventory,) = spans_named(tuple(s for s in workflow.spans if not s.scope), "reserve-inventory")
    assert skew.skew_ns == placed.end_ns - inventory.start_ns > 0
    assert (skew.consumer.name, skew.same_service) == ("reserve-inventory", False)
    assert all(d.queue_wait_ns is None or d.queue_wait_ns >= 0 for d in analysis.deliveries)
    (late,) = [b for b in analysis.branch_latencies if b.consumer == "inventory"]
    assert late.queue_wait_ns == 0 and late.clock_skewed
    assert all(s.duration_ns >= 0 for s in analysis.critical_path.segments)


def test_batch_consumer_links_are_deliveries() -> None:
    workflow = fan_in(20)
    analysis = analyze(workflow.spans)
    batch = [d for d in analysis.deliveries if d.via is EdgeKind.LINK]
    assert len(batch) == 20
    assert {d.consumer_span.name for d in batch} == {"bill-items"}
    assert all(d.queue_wait_ns is not None and d.queue_wait_ns > 0 for d in batch)


def test_critical_path_runs_through_reserve_inventory_and_the_webhook_retries(
    flow: Workflow, analysis: WorkflowAnalysis
) -> None:
    path = latency(analysis).critical_path
    business = [s.step for s in path.steps if s.role in (Role.CONSUMER, Role.OTHER)]
    assert business == [
        "POST /orders",
        "reserve-inventory",
        "send-warehouse-webhook",
        "send-warehouse-webhook",
        "send-warehouse-webhook",
    ]
    assert [s.attempt for s in path.steps if s.step == "send-warehouse-webhook"] == [1, 2, 3]
    assert [s.via for s in path.steps].count(Hop.RETRY) == 2
    assert Hop.DELIVERY in [s.via for s in path.steps]
    assert path.end_ns == flow.end_ns
    assert path.start_ns == min(s.start_ns for s in flow.spans)
    assert path.duration_ns == path.end_ns - path.start_ns == path.workflow_duration_ns


def test_critical_path_segments_add_up_and_are_ranked(analysis: WorkflowAnalysis) -> None:
    path = analysis.critical_path
    assert sum(s.duration_ns for s in path.segments) == path.duration_ns
    assert [s.duration_ns for s in path.ranked] == sorted(
        (s.duration_ns for s in path.segments), reverse=True
    )
    totals = {t.kind: t.duration_ns for t in path.totals}
    webhook = branch_by_step(analysis, "send-warehouse-webhook")
    failed = [a for a in webhook.attempts if a.outcome.failed]
    assert totals[SegmentKind.FAILED_ATTEMPT] == sum(a.duration_ns or 0 for a in failed)
    assert totals[SegmentKind.BACKOFF] == sum(a.backoff_before_ns or 0 for a in webhook.attempts)
    assert [t.duration_ns for t in path.totals] == sorted(totals.values(), reverse=True)
    assert path.totals[0].kind is SegmentKind.FAILED_ATTEMPT


def test_critical_path_of_nothing_is_empty() -> None:
    path = analyze([]).critical_path
    assert (path.steps, path.duration_ns) == ((), 0)


def test_a_duplicate_from_a_second_publish_waited_for_its_own_delivery() -> None:
    # The outbox relay re-published order.placed at 30 ms: payment's second processing
    # waited in the queue for that publish, not for its first attempt (no back-off).
    workflow = duplicates()
    analysis = analyze(workflow.spans)
    (relay,) = spans_named(workflow.spans, "outbox-relay")
    (_, again) = spans_named(workflow.spans, "order.placed publish")
    (_, second) = spans_named(tuple(s for s in workflow.spans if not s.scope), "authorize-payment")
    (delivery,) = [d for d in analysis.deliveries if d.consumer_span.span_id == second.span_id]
    assert delivery.producer.span_id == again.span_id
    assert (delivery.queue_wait_ns, delivery.backoff_before_ns) == (
        second.start_ns - again.end_ns,
        None,
    )
    payment = branch_by_step(analysis, "authorize-payment")
    assert payment.attempts[1].backoff_before_ns is None
    path = analysis.critical_path
    assert [(s.step, s.via) for s in path.steps] == [
        ("outbox-relay", None),
        ("order.placed publish", Hop.CHILD),
        ("authorize-payment", Hop.DELIVERY),
    ]
    assert path.start_ns == relay.start_ns
    assert SegmentKind.BACKOFF not in {s.kind for s in path.segments}


def test_a_redelivery_of_the_same_message_follows_its_previous_attempt() -> None:
    b = WorkflowBuilder()
    post = b.action("POST /orders", service="api", duration_ms=5)
    placed = b.publish(post, "order.placed", destination="orders")
    b.consume(placed, "reserve", service="inventory", tries=[Try(10, backoff_ms=30), Try(10)])
    analysis = analyze(b.build().spans)
    (branch,) = analysis.branches
    assert branch.attempts[1].backoff_before_ns == 30_000_000
    assert [s.via for s in analysis.critical_path.steps][-1] is Hop.RETRY


def test_a_clamped_wait_is_no_baseline_for_lag() -> None:
    # The skewed sibling's wait is unknown (clamped to 0), not short: leaving it out,
    # 100 ms against 40 ms is not lag (it would be against a median of 20 ms).
    b = WorkflowBuilder()
    post = b.action("POST /orders", service="api", duration_ms=5)
    placed = b.publish(post, "order.placed", destination="orders")
    b.consume(placed, "slow", service="slow", wait_ms=100)
    b.consume(placed, "steady", service="steady", wait_ms=40)
    b.consume(placed, "skewed", service="skewed", wait_ms=1, clock_skew_ms=30)
    analysis = analyze(b.build().spans)
    assert [s.consumer.name for s in analysis.clock_skews] == ["skewed"]
    assert analysis.lagging == ()
