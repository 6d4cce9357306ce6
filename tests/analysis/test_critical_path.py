"""The critical path partitions the time from its first start to its last end."""

from __future__ import annotations

from hypothesis import given, settings

from tracebraid.analysis import SegmentKind, analyze
from tracebraid.testing.workflows import Workflow, WorkflowBuilder, link_cycle

from .strategies import workflows
from .support import assert_path_partitions_its_time, spans_named


def test_spans_overlapping_through_a_link_are_not_counted_twice() -> None:
    # aggregate-b (25-35 ms) links aggregate-a (20-30 ms): the two overlap by 5 ms.
    analysis = analyze(link_cycle().spans)
    assert_path_partitions_its_time(analysis)
    assert analysis.critical_path.duration_ns == analysis.duration_ns


def test_a_consumer_that_starts_before_its_producer_ends_is_counted_from_that_end() -> None:
    b = WorkflowBuilder()
    post = b.action("POST /orders", service="api", duration_ms=5)
    placed = b.publish(post, "order.placed", destination="orders", at_ms=3, duration_ms=4)
    b.consume(placed, "reserve", service="inventory", wait_ms=1, duration_ms=30, clock_skew_ms=3)
    workflow = b.build()
    analysis = analyze(workflow.spans)
    assert_path_partitions_its_time(analysis)
    (consumer,) = spans_named(tuple(s for s in workflow.spans if not s.scope), "reserve")
    work = analysis.critical_path.segments[-1]
    assert (work.kind, work.span.name) == (SegmentKind.PROCESSING, "reserve")
    # Only the part after the publish ended is the consumer's: 2 ms overlapped it.
    assert (work.start_ns, work.end_ns) == (placed.span.end_ns, consumer.end_ns)
    (wait,) = [s for s in analysis.critical_path.segments if s.kind is SegmentKind.QUEUE_WAIT]
    assert (wait.duration_ns, wait.clock_skew_ns) == (0, placed.span.end_ns - consumer.start_ns)


@settings(max_examples=150, deadline=None)
@given(workflows())
def test_any_synthetic_workflow_has_a_partitioning_critical_path(workflow: Workflow) -> None:
    assert_path_partitions_its_time(analyze(workflow.spans))
