"""The analysis' records as JSON-ready dicts (shapes in ``tracebraid.views.schema``).

One typed function per result dataclass, each building exactly the keys its
``TypedDict`` declares, so mypy checks the schema and nothing leaks through by
accident (a new dataclass field does not change v1 until it is added here). The
whole documents are built in ``tracebraid.views.documents`` from these.

Example::

    >>> from tracebraid.analysis import analyze
    >>> from tracebraid.testing.workflows import order_flow
    >>> webhook = analyze(order_flow().spans).branches[2]
    >>> [a["outcome"] for a in branch(webhook)["attempts"]]
    ['error', 'error', 'ok']
"""

from __future__ import annotations

from tracebraid.analysis import (
    Attempt,
    Branch,
    BranchId,
    BranchLatency,
    ChainStep,
    ClockSkew,
    CriticalPath,
    Cycle,
    DeadLetter,
    DeliveryLatency,
    DuplicatePublish,
    InFlight,
    Island,
    LaggingConsumer,
    Limitation,
    PathStep,
    PendingBranch,
    PropagationBreak,
    Segment,
    SegmentTotal,
    SpanRef,
    Unconsumed,
)
from tracebraid.views.schema import (
    AttemptJson,
    BranchJson,
    BranchKeyJson,
    BranchLatencyJson,
    ChainStepJson,
    ClockSkewJson,
    CriticalPathJson,
    CycleJson,
    DeadLetterJson,
    DeliveryLatencyJson,
    DuplicatePublishJson,
    InFlightJson,
    IslandJson,
    LaggingConsumerJson,
    LimitationJson,
    PathStepJson,
    PendingBranchJson,
    PropagationBreakJson,
    SegmentJson,
    SegmentTotalJson,
    SpanRefJson,
    UnconsumedJson,
)

__all__ = [
    "attempt",
    "branch",
    "branch_key",
    "branch_latency",
    "chain_step",
    "clock_skew",
    "critical_path",
    "cycle",
    "dead_letter",
    "delivery_latency",
    "duplicate_publish",
    "in_flight",
    "island",
    "lagging_consumer",
    "limitation",
    "path_step",
    "pending_branch",
    "propagation_break",
    "segment",
    "segment_total",
    "span_ref",
    "span_ref_or_none",
    "unconsumed",
]


def span_ref(ref: SpanRef) -> SpanRefJson:
    return {
        "trace_id": ref.trace_id,
        "span_id": ref.span_id,
        "name": ref.name,
        "service": ref.service,
    }


def span_ref_or_none(ref: SpanRef | None) -> SpanRefJson | None:
    return None if ref is None else span_ref(ref)


def branch_key(key: BranchId) -> BranchKeyJson:
    return {"event_id": key.event_id, "consumer": key.consumer}


def limitation(item: Limitation) -> LimitationJson:
    return {"code": item.code, "message": item.message, "count": item.count}


def attempt(item: Attempt) -> AttemptJson:
    return {
        "number": item.number,
        "reported_number": item.reported_number,
        "kind": item.kind.value,
        "outcome": item.outcome.value,
        "error": item.error,
        "span": span_ref(item.span),
        "start_ns": item.start_ns,
        "end_ns": item.end_ns,
        "duration_ns": item.duration_ns,
        "backoff_before_ns": item.backoff_before_ns,
    }


def branch(item: Branch) -> BranchJson:
    return {
        "event_id": item.event_id,
        "event_name": item.event_name,
        "consumer": item.consumer,
        "consumer_identified_by": item.consumer_identified_by.value,
        "service": item.service,
        "step": item.step,
        "destination": item.destination,
        "producer": span_ref_or_none(item.producer),
        "status": item.status.value,
        "retries": item.retries,
        "duplicates": item.duplicates,
        "redeliveries": item.redeliveries,
        "dead_lettered": item.dead_lettered,
        "stitched": item.stitched,
        "batch": item.batch,
        "caused_by": None if item.caused_by is None else branch_key(item.caused_by),
        "downstream_events": list(item.downstream_events),
        "attempts": [attempt(a) for a in item.attempts],
    }


def unconsumed(item: Unconsumed) -> UnconsumedJson:
    return {
        "event_id": item.event_id,
        "event_name": item.event_name,
        "destination": item.destination,
        "summary": item.summary,
        "producer": span_ref(item.producer),
        "published_ns": item.published_ns,
        "state": item.state.value,
        "deadline_ns": item.deadline_ns,
        "overdue_ns": item.overdue_ns,
    }


def pending_branch(item: PendingBranch) -> PendingBranchJson:
    return {
        "event_id": item.event_id,
        "event_name": item.event_name,
        "consumer": item.consumer,
        "state": item.state.value,
        "reason": item.reason.value,
        "expected_by": item.expected_by,
        "published_ns": item.published_ns,
        "deadline_ns": item.deadline_ns,
        "overdue_ns": item.overdue_ns,
        "attempts": item.attempts,
        "last_error": item.last_error,
        "producer": span_ref_or_none(item.producer),
    }


def in_flight(item: InFlight) -> InFlightJson:
    return {
        "span": span_ref(item.span),
        "started_ns": item.started_ns,
        "event_id": item.event_id,
        "consumer": item.consumer,
    }


def duplicate_publish(item: DuplicatePublish) -> DuplicatePublishJson:
    return {
        "event_id": item.event_id,
        "event_name": item.event_name,
        "producers": [span_ref(p) for p in item.producers],
    }


def dead_letter(item: DeadLetter) -> DeadLetterJson:
    return {
        "event_id": item.event_id,
        "event_name": item.event_name,
        "consumer": item.consumer,
        "span": span_ref(item.span),
        "destination": item.destination,
    }


def path_step(item: PathStep) -> PathStepJson:
    return {
        "span": span_ref(item.span),
        "role": item.role.value,
        "step": item.step,
        "via": None if item.via is None else item.via.value,
        "attempt": item.attempt,
    }


def segment(item: Segment) -> SegmentJson:
    return {
        "kind": item.kind.value,
        "span": span_ref(item.span),
        "start_ns": item.start_ns,
        "end_ns": item.end_ns,
        "duration_ns": item.duration_ns,
        "attempt": item.attempt,
        "clock_skew_ns": item.clock_skew_ns,
    }


def segment_total(item: SegmentTotal) -> SegmentTotalJson:
    return {"kind": item.kind.value, "duration_ns": item.duration_ns, "count": item.count}


def critical_path(path: CriticalPath) -> CriticalPathJson:
    """The path; ``ranked`` holds indices into ``segments``, longest first."""
    position = {id(s): number for number, s in enumerate(path.segments)}
    return {
        "start_ns": path.start_ns,
        "end_ns": path.end_ns,
        "duration_ns": path.duration_ns,
        "workflow_duration_ns": path.workflow_duration_ns,
        "steps": [path_step(s) for s in path.steps],
        "segments": [segment(s) for s in path.segments],
        "ranked": [position[id(s)] for s in path.ranked],
        "totals": [segment_total(t) for t in path.totals],
    }


def lagging_consumer(item: LaggingConsumer) -> LaggingConsumerJson:
    return {
        "event_id": item.event_id,
        "event_name": item.event_name,
        "consumer": item.consumer,
        "queue_wait_ns": item.queue_wait_ns,
        "baseline_ns": item.baseline_ns,
        "compared_with": item.compared_with,
        "ratio": item.ratio,
    }


def clock_skew(item: ClockSkew) -> ClockSkewJson:
    return {
        "producer": span_ref(item.producer),
        "consumer": span_ref(item.consumer),
        "skew_ns": item.skew_ns,
        "via": item.via.value,
        "same_service": item.same_service,
    }


def delivery_latency(item: DeliveryLatency) -> DeliveryLatencyJson:
    return {
        "event_id": item.event_id,
        "event_name": item.event_name,
        "consumer": item.consumer,
        "producer": span_ref(item.producer),
        "consumer_span": span_ref(item.consumer_span),
        "via": item.via.value,
        "attempt": item.attempt,
        "queue_wait_ns": item.queue_wait_ns,
        "processing_ns": item.processing_ns,
        "backoff_before_ns": item.backoff_before_ns,
        "clock_skew_ns": item.clock_skew_ns,
        "stitched": item.stitched,
    }


def branch_latency(item: BranchLatency) -> BranchLatencyJson:
    return {
        "event_id": item.event_id,
        "event_name": item.event_name,
        "consumer": item.consumer,
        "queue_wait_ns": item.queue_wait_ns,
        "processing_ns": item.processing_ns,
        "failed_attempts_ns": item.failed_attempts_ns,
        "backoff_ns": item.backoff_ns,
        "total_ns": item.total_ns,
        "clock_skewed": item.clock_skewed,
        "lagging": item.lagging,
    }


def propagation_break(item: PropagationBreak) -> PropagationBreakJson:
    return {
        "producer_service": item.producer_service,
        "producer_step": item.producer_step,
        "consumer_service": item.consumer_service,
        "consumer_step": item.consumer_step,
        "destination": item.destination,
        "count": item.count,
        "event_ids": list(item.event_ids),
        "consumer_trace_ids": list(item.consumer_trace_ids),
    }


def island(item: Island) -> IslandJson:
    return {
        "trace_id": item.trace_id,
        "root": span_ref(item.root),
        "event_id": item.event_id,
        "cause": item.cause.value,
        "producer": span_ref_or_none(item.producer),
        "span_count": item.span_count,
    }


def cycle(item: Cycle) -> CycleJson:
    return {
        "spans": [span_ref(s) for s in item.spans],
        "edge_kinds": [k.value for k in item.edge_kinds],
    }


def chain_step(item: ChainStep) -> ChainStepJson:
    return {
        "span": span_ref(item.span),
        "role": item.role.value,
        "step": item.step,
        "event_id": item.event_id,
        "event_name": item.event_name,
        "consumer": item.consumer,
        "via": None if item.via is None else item.via.value,
        "stitched": item.stitched,
    }
