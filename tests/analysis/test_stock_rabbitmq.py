"""Stock ``opentelemetry-instrumentation-aio-pika`` against the real RabbitMQ on loopback:
retries by nack/requeue, and a consumer whose producer dropped the headers. The spans
never heard of tracebraid; the analysis must still find attempts and stitch the island,
and say what it cannot know."""

from __future__ import annotations

import uuid

import pytest

from tracebraid.analysis import AttemptOutcome, IslandCause, WorkflowAnalysis, analyze

from .stock_rabbitmq import record_stock_workflow

pytestmark = pytest.mark.broker

TIMEOUT = "TimeoutError"


@pytest.fixture
async def rabbit_analysis() -> WorkflowAnalysis:
    spans = await record_stock_workflow(
        "tb", uuid.uuid4().hex[:8], failures=2, audit_inside_order=False
    )
    return analyze(spans)


async def test_retries_by_requeue_are_attempts_in_start_order(
    rabbit_analysis: WorkflowAnalysis,
) -> None:
    (reserve,) = rabbit_analysis.branches_of("evt_r1")
    assert [a.outcome for a in reserve.attempts] == [
        AttemptOutcome.ERROR,
        AttemptOutcome.ERROR,
        AttemptOutcome.OK,
    ]
    assert [a.number for a in reserve.attempts] == [1, 2, 3]
    assert all(a.reported_number is None for a in reserve.attempts)
    assert reserve.attempts[0].error is not None and TIMEOUT in reserve.attempts[0].error
    assert reserve.retries == 2
    assert reserve.consumer_identified_by.value == "service"
    assert reserve.producer is not None and not reserve.stitched
    assert rabbit_analysis.correlation_ids == ("order_7",)  # from the message's correlation_id


async def test_a_consumer_whose_producer_dropped_the_headers_is_stitched(
    rabbit_analysis: WorkflowAnalysis,
) -> None:
    (audit,) = rabbit_analysis.branches_of("evt_a1")
    assert audit.stitched and audit.producer is not None
    (island,) = rabbit_analysis.islands
    assert island.cause is IslandCause.STITCHED and island.event_id == "evt_a1"
    (broken,) = rabbit_analysis.breaks
    assert broken.count == 1 and broken.event_ids == ("evt_a1",)


async def test_stock_spans_say_what_they_cannot_tell(rabbit_analysis: WorkflowAnalysis) -> None:
    codes = {item.code for item in rabbit_analysis.limitations}
    assert {
        "consumer_group_unknown",
        "attempt_numbers_absent",
        "event_name_absent",
        "start_markers_absent",
    } <= codes
