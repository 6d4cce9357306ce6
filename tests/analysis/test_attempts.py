from __future__ import annotations

import dataclasses

import pytest

from tracebraid import semconv
from tracebraid.analysis import (
    AttemptKind,
    AttemptOutcome,
    BranchId,
    BranchStatus,
    SpanRef,
    WorkflowAnalysis,
    analyze,
    retries,
)
from tracebraid.demo import STALLED_STEP, capture_order_flow
from tracebraid.model import Span, SpanId
from tracebraid.testing.workflows import Try, Workflow, WorkflowBuilder, duplicates

from .support import branch_by_service, branch_by_step, spans_named


def test_order_flow_has_one_branch_per_consumer_and_event(
    flow: Workflow, analysis: WorkflowAnalysis
) -> None:
    ids = {b.id for b in analysis.branches}
    assert ids == {
        BranchId(flow.events["order.placed"], "payment"),
        BranchId(flow.events["order.placed"], "inventory"),
        BranchId(flow.events["payment.authorized"], "summary"),
        BranchId(flow.events["inventory.reserved"], "warehouse"),
    }
    assert all(b.status is BranchStatus.SUCCEEDED for b in analysis.branches)


def test_webhook_attempts_failed_failed_ok_with_their_errors(
    flow: Workflow, analysis: WorkflowAnalysis
) -> None:
    webhook = branch_by_step(analysis, "send-warehouse-webhook")
    spans = spans_named(tuple(s for s in flow.spans if not s.scope), "send-warehouse-webhook")
    assert [a.span.span_id for a in webhook.attempts] == [s.span_id for s in spans]
    assert [(a.number, a.reported_number) for a in webhook.attempts] == [(1, 1), (2, 2), (3, 3)]
    assert [a.outcome for a in webhook.attempts] == [
        AttemptOutcome.ERROR,
        AttemptOutcome.ERROR,
        AttemptOutcome.OK,
    ]
    assert [a.kind for a in webhook.attempts] == [
        AttemptKind.FIRST,
        AttemptKind.RETRY,
        AttemptKind.RETRY,
    ]
    assert [a.error for a in webhook.attempts] == [s.status_message or None for s in spans]
    assert webhook.attempts[0].error is not None
    assert webhook.attempts[0].error.startswith("TimeoutError")
    assert webhook.retries == 2 and webhook.duplicates == 0
    assert [a.backoff_before_ns for a in webhook.attempts] == [
        None,
        spans[1].start_ns - spans[0].end_ns,
        spans[2].start_ns - spans[1].end_ns,
    ]


def test_branches_know_their_cause_and_what_they_published(
    flow: Workflow, analysis: WorkflowAnalysis
) -> None:
    inventory = branch_by_step(analysis, "reserve-inventory")
    webhook = branch_by_step(analysis, "send-warehouse-webhook")
    assert inventory.caused_by is None  # the user action published order.placed
    assert inventory.downstream_events == (flow.events["inventory.reserved"],)
    assert webhook.caused_by == inventory.id
    assert webhook.producer is not None
    assert webhook.producer.name == "inventory.reserved publish"
    assert webhook.event_name == "inventory.reserved"


def test_duplicate_processing_and_duplicate_publish_stay_visible() -> None:
    workflow = duplicates()
    analysis = analyze(workflow.spans)
    payment = branch_by_service(analysis, "payment")
    # Each copy of the duplicate publish was delivered and processed once: two first
    # attempts, no duplicate delivery; the duplicate publish is the finding.
    assert [a.kind for a in payment.attempts] == [AttemptKind.FIRST, AttemptKind.FIRST]
    assert payment.duplicates == 0 and payment.retries == 0
    (published,) = analysis.duplicate_publishes
    assert published.event_id == workflow.events["order.placed"]
    assert {p.service for p in published.producers} == {"checkout-api", "outbox"}
    # Not merged: both deliveries are edges of their own.
    assert len([d for d in analysis.deliveries if d.consumer == "payment"]) == 2


def test_a_processing_after_success_is_a_duplicate_and_the_last_attempt_decides() -> None:
    b = WorkflowBuilder()
    post = b.action("POST /orders", service="api", duration_ms=5)
    placed = b.publish(post, "order.placed", destination="orders")
    b.consume(placed, "reserve", service="inventory", tries=[Try(10), Try(10, error="E: again")])
    (branch,) = analyze(b.build().spans).branches
    assert [a.kind for a in branch.attempts] == [AttemptKind.FIRST, AttemptKind.DUPLICATE]
    assert (branch.duplicates, branch.retries) == (1, 0)
    assert branch.status is BranchStatus.FAILED  # its last attempt failed


def dead_letter_flow(*, republish: bool) -> Workflow:
    b = WorkflowBuilder()
    post = b.action("POST /orders", service="api", duration_ms=5)
    placed = b.publish(post, "order.placed", destination="orders")
    failing = b.consume(
        placed,
        "reserve",
        service="inventory",
        tries=[Try(10, error="E: no", backoff_ms=5), Try(10, error="E: no", dead_letter=True)],
    )
    if republish:
        b.publish(failing.last, "order.placed", destination="orders.dlq", event_id=placed.event_id)
    return b.build()


def test_dead_lettered_attempt_marks_the_branch() -> None:
    analysis = analyze(dead_letter_flow(republish=False).spans)
    (branch,) = analysis.branches
    assert branch.dead_lettered and branch.status is BranchStatus.DEAD_LETTERED
    assert branch.attempts[-1].outcome is AttemptOutcome.DEAD_LETTER
    assert [(d.consumer, d.span.span_id) for d in analysis.dead_letters] == [
        ("inventory", branch.attempts[-1].span.span_id)
    ]
    assert analysis.pending == ()  # dead-lettered is settled, not pending


def test_republish_to_a_dead_letter_queue_is_evidence_not_a_duplicate_publish() -> None:
    analysis = analyze(dead_letter_flow(republish=True).spans)
    assert analysis.duplicate_publishes == ()
    destinations = {d.destination for d in analysis.dead_letters}
    assert "orders.dlq" in destinations
    assert all(d.consumer == "inventory" for d in analysis.dead_letters)


def test_a_start_marker_without_its_span_is_an_in_flight_attempt() -> None:
    b = WorkflowBuilder()
    post = b.action("POST /orders", service="api", duration_ms=5)
    placed = b.publish(post, "order.placed", destination="orders")
    work = b.consume(
        placed,
        "reserve",
        service="inventory",
        tries=[Try(10, error="E: x", backoff_ms=50), Try(10)],
        in_flight=True,
    )
    analysis = analyze(b.build().spans)
    (branch,) = analysis.branches
    assert branch.status is BranchStatus.IN_FLIGHT
    assert [a.outcome for a in branch.attempts] == [AttemptOutcome.ERROR, AttemptOutcome.IN_FLIGHT]
    in_flight = branch.attempts[-1]
    assert (in_flight.end_ns, in_flight.duration_ns) == (None, None)
    assert in_flight.span.span_id == work.markers[-1].attributes[semconv.MARKER_FOR_SPAN]
    (announced,) = analysis.in_flight
    assert announced.span == in_flight.span and announced.consumer == "inventory"


def test_receive_spans_are_not_attempts_when_process_spans_exist() -> None:
    b = WorkflowBuilder()
    post = b.action("POST /orders", service="api", duration_ms=5)
    placed = b.publish(post, "order.placed", destination="orders")
    work = b.consume(placed, "reserve", service="inventory")
    receive = b.step(work.last, "orders receive", at_ms=1, duration_ms=1)
    as_receive = dataclasses.replace(
        receive, attributes={**work.last.attributes, semconv.OPERATION_TYPE: "receive"}
    )
    spans = [as_receive if s.key == receive.key else s for s in b.build().spans]
    (branch,) = analyze(spans).branches
    assert [a.span.span_id for a in branch.attempts] == [work.last.span_id]


def test_stock_spans_group_attempts_by_start_order_without_numbers(stock_flow: Workflow) -> None:
    analysis = analyze(stock_flow.spans)
    webhook = branch_by_service(analysis, "warehouse")
    assert [a.number for a in webhook.attempts] == [1, 2, 3]
    assert [a.reported_number for a in webhook.attempts] == [None, None, None]
    assert [a.outcome for a in webhook.attempts] == [
        AttemptOutcome.ERROR,
        AttemptOutcome.ERROR,
        AttemptOutcome.OK,
    ]
    assert webhook.consumer == "warehouse"
    assert webhook.retries == 2


def in_flight_flow(*, step_attribute: bool) -> tuple[Workflow, Span]:
    """One consumer whose second attempt is still running: its marker, no span."""
    b = WorkflowBuilder()
    post = b.action("POST /orders", service="api", duration_ms=5)
    placed = b.publish(post, "order.placed", destination="orders")
    work = b.consume(
        placed, "reserve", service="inventory", tries=[Try(10, error="E: x"), Try(10)],
        in_flight=True,
    )  # fmt: skip
    marker = work.markers[-1]
    if step_attribute:
        return b.build(), marker
    # An SDK that did not write tracebraid.step: the marker only says "<step> started".
    bare = dataclasses.replace(
        marker, attributes={k: v for k, v in marker.attributes.items() if k != semconv.STEP}
    )
    return Workflow(
        tuple(bare if s.key == marker.key else s for s in b.build().spans), None, b.start_ns
    ), bare


@pytest.mark.parametrize("step_attribute", [True, False])
def test_an_in_flight_attempt_names_the_consumer_span_it_announces(step_attribute: bool) -> None:
    workflow, marker = in_flight_flow(step_attribute=step_attribute)
    analysis = analyze(workflow.spans)
    (branch,) = analysis.branches
    announced = SpanRef(
        marker.trace_id, SpanId(str(marker.attributes[semconv.MARKER_FOR_SPAN])), "reserve",
        "inventory",
    )  # fmt: skip
    assert branch.attempts[-1].span == announced
    assert [f.span for f in analysis.in_flight] == [announced]
    assert branch.step == "reserve"


def test_the_sdk_demo_in_flight_attempt_is_its_consumer_span() -> None:
    spans = capture_order_flow(time_scale=0.02)
    analysis = analyze(spans)
    markers = {s.span_id: s for s in spans if s.scope == semconv.START_MARKER_SCOPE}
    finished = {s.span_id for s in spans if not s.scope}
    (loyalty,) = [b for b in analysis.branches if b.step == STALLED_STEP]
    attempt = loyalty.attempts[-1]
    assert attempt.outcome is AttemptOutcome.IN_FLIGHT and attempt.span.span_id not in finished
    (marker,) = [m for m in markers.values() if m.attributes[semconv.MARKER_FOR_SPAN] ==
                 attempt.span.span_id]  # fmt: skip
    assert (attempt.span.name, attempt.span.service) == (STALLED_STEP, marker.service)
    assert attempt.span.trace_id == marker.trace_id


def test_an_attempt_that_says_it_is_a_retry_is_one_even_when_the_first_is_missing() -> None:
    # Attempt 1 died with its process (no span exported); the broker's redelivery counts 2.
    b = WorkflowBuilder()
    post = b.action("POST /orders", service="api", duration_ms=5)
    placed = b.publish(post, "order.placed", destination="orders")
    work = b.consume(placed, "reserve", service="inventory", tries=[Try(10)])
    redelivered = dataclasses.replace(
        work.last, attributes={**work.last.attributes, semconv.ATTEMPT: 2}
    )
    spans = [redelivered if s.key == work.last.key else s for s in b.build().spans]
    analysis = analyze(spans)
    (branch,) = analysis.branches
    assert [(a.number, a.reported_number, a.kind) for a in branch.attempts] == [
        (1, 2, AttemptKind.RETRY)
    ]
    assert branch.retries == 1 and branch.status is BranchStatus.SUCCEEDED
    assert retries(analysis).branches == (branch,)


@pytest.mark.parametrize(
    ("route", "outcome"),
    [("orders.inventory.retry", AttemptOutcome.RETRY), ("orders.dlq", AttemptOutcome.DEAD_LETTER)],
)
def test_an_attempt_that_re_sent_its_message_to_a_retry_route_did_not_succeed(
    route: str, outcome: AttemptOutcome
) -> None:
    # A handler that catches its failure and forwards the message to a retry topic ends
    # its span OK (kafkajs): the re-send is what says it asked for another attempt.
    b = WorkflowBuilder()
    post = b.action("POST /orders", service="api", duration_ms=5)
    placed = b.publish(post, "order.placed", destination="orders")
    first = b.consume(placed, "reserve", service="inventory", tries=[Try(10)])
    again = b.publish(first.last, "order.placed", destination=route, event_id=placed.event_id)
    b.consume(again, "reserve", service="inventory", tries=[Try(10)])
    (branch,) = analyze(b.build().spans).branches
    assert [a.outcome for a in branch.attempts] == [outcome, AttemptOutcome.OK]
    assert branch.attempts[0].error == f"re-sent to {route}"
    assert (branch.retries, branch.duplicates, branch.status) == (1, 0, BranchStatus.SUCCEEDED)
