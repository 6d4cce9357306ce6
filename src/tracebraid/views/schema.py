"""The JSON output's shapes, version 1: one ``TypedDict`` per record, checked by mypy.

Every document names its shape in ``"schema"`` (``tracebraid.workflow/v1``...). Rules
(also in ``docs/json-schema.md``):

- v1 only ever gains keys; removing or changing one makes v2. Ignore unknown keys.
- Every key listed here is always present; what is unknown is ``null``.
- ``*_ns`` are integers: Unix-epoch nanoseconds for instants, nanoseconds for durations.
- Enumerations are their lowercase string values (``"retry"``, ``"in_flight"``).

``tracebraid.views.serialize`` builds these from the analysis' frozen dataclasses;
the web UI answers with the same documents.

Example::

    >>> SCHEMAS["workflow"]
    'tracebraid.workflow/v1'
"""

from __future__ import annotations

from typing import TypedDict

__all__ = [
    "SCHEMAS",
    "ActionNodeJson",
    "AttemptJson",
    "BranchJson",
    "BranchKeyJson",
    "BranchLatencyJson",
    "BranchNodeJson",
    "ChainStepJson",
    "ClockSkewJson",
    "ConsumerRetriesJson",
    "CriticalPathJson",
    "CycleJson",
    "DeadLetterJson",
    "DeliveryLatencyJson",
    "DemoDocument",
    "DemoOrderJson",
    "DuplicatePublishJson",
    "EventNodeJson",
    "InFlightJson",
    "IslandJson",
    "LaggingConsumerJson",
    "LatencyDocument",
    "LimitationJson",
    "MermaidDocument",
    "PathStepJson",
    "PendingBranchJson",
    "PendingDocument",
    "PendingTotalsJson",
    "PendingWorkflowJson",
    "PropagationBreakJson",
    "RetriesDocument",
    "RetryWorkflowJson",
    "SegmentJson",
    "SegmentTotalJson",
    "SpanRefJson",
    "SummaryJson",
    "TreeJson",
    "UnconsumedJson",
    "WhyDocument",
    "WorkflowDocument",
]

SCHEMAS = {
    kind: f"tracebraid.{kind}/v1"
    for kind in ("workflow", "why", "pending", "retries", "latency", "mermaid", "demo")
}
"""The ``"schema"`` value of each document kind."""


class SpanRefJson(TypedDict):
    trace_id: str
    span_id: str
    name: str
    service: str


class BranchKeyJson(TypedDict):
    event_id: str
    consumer: str


class LimitationJson(TypedDict):
    code: str
    message: str
    count: int


class AttemptJson(TypedDict):
    number: int
    reported_number: int | None
    kind: str
    outcome: str
    error: str | None
    span: SpanRefJson
    start_ns: int
    end_ns: int | None
    duration_ns: int | None
    backoff_before_ns: int | None


class BranchJson(TypedDict):
    event_id: str
    event_name: str | None
    consumer: str
    consumer_identified_by: str
    service: str
    step: str
    destination: str | None
    producer: SpanRefJson | None
    status: str
    retries: int
    duplicates: int
    redeliveries: int
    dead_lettered: bool
    stitched: bool
    batch: bool
    caused_by: BranchKeyJson | None
    downstream_events: list[str]
    attempts: list[AttemptJson]


class PendingBranchJson(TypedDict):
    event_id: str
    event_name: str | None
    consumer: str
    state: str
    reason: str
    expected_by: str
    published_ns: int | None
    deadline_ns: int | None
    overdue_ns: int
    attempts: int
    last_error: str | None
    producer: SpanRefJson | None


class UnconsumedJson(TypedDict):
    event_id: str
    event_name: str | None
    destination: str | None
    summary: str
    producer: SpanRefJson
    published_ns: int
    state: str
    deadline_ns: int
    overdue_ns: int


class InFlightJson(TypedDict):
    span: SpanRefJson
    started_ns: int
    event_id: str | None
    consumer: str | None


class DuplicatePublishJson(TypedDict):
    event_id: str
    event_name: str | None
    producers: list[SpanRefJson]


class DeadLetterJson(TypedDict):
    event_id: str
    event_name: str | None
    consumer: str | None
    span: SpanRefJson
    destination: str | None


class PathStepJson(TypedDict):
    span: SpanRefJson
    role: str
    step: str
    via: str | None
    attempt: int | None


class SegmentJson(TypedDict):
    kind: str
    span: SpanRefJson
    start_ns: int
    end_ns: int
    duration_ns: int
    attempt: int | None
    clock_skew_ns: int


class SegmentTotalJson(TypedDict):
    kind: str
    duration_ns: int
    count: int


class CriticalPathJson(TypedDict):
    start_ns: int
    end_ns: int
    duration_ns: int
    workflow_duration_ns: int
    steps: list[PathStepJson]
    segments: list[SegmentJson]
    ranked: list[int]
    totals: list[SegmentTotalJson]


class LaggingConsumerJson(TypedDict):
    event_id: str
    event_name: str | None
    consumer: str
    queue_wait_ns: int
    baseline_ns: int
    compared_with: str
    ratio: float | None


class ClockSkewJson(TypedDict):
    producer: SpanRefJson
    consumer: SpanRefJson
    skew_ns: int
    via: str
    same_service: bool


class DeliveryLatencyJson(TypedDict):
    event_id: str
    event_name: str | None
    consumer: str
    producer: SpanRefJson
    consumer_span: SpanRefJson
    via: str
    attempt: int | None
    queue_wait_ns: int | None
    processing_ns: int
    backoff_before_ns: int | None
    clock_skew_ns: int
    stitched: bool


class BranchLatencyJson(TypedDict):
    event_id: str
    event_name: str | None
    consumer: str
    queue_wait_ns: int | None
    processing_ns: int
    failed_attempts_ns: int
    backoff_ns: int
    total_ns: int | None
    clock_skewed: bool
    lagging: bool


class PropagationBreakJson(TypedDict):
    producer_service: str
    producer_step: str
    consumer_service: str
    consumer_step: str
    destination: str | None
    count: int
    event_ids: list[str]
    consumer_trace_ids: list[str]


class IslandJson(TypedDict):
    trace_id: str
    root: SpanRefJson
    event_id: str | None
    cause: str
    producer: SpanRefJson | None
    span_count: int


class CycleJson(TypedDict):
    spans: list[SpanRefJson]
    edge_kinds: list[str]


class BranchNodeJson(TypedDict):
    event_id: str
    consumer: str
    step: str
    service: str | None
    state: str
    pending_reason: str | None
    queue_wait_ns: int | None
    lagging: bool
    stitched: bool
    on_critical_path: bool
    attempt_count: int
    events: list[EventNodeJson]


class EventNodeJson(TypedDict):
    event_id: str
    event_name: str | None
    destination: str | None
    producer: SpanRefJson | None
    causation_id: str | None
    published_ns: int | None
    on_critical_path: bool
    branches: list[BranchNodeJson]


class ActionNodeJson(TypedDict):
    span: SpanRefJson
    start_ns: int
    duration_ns: int
    on_critical_path: bool
    events: list[EventNodeJson]


class TreeJson(TypedDict):
    roots: list[ActionNodeJson]
    orphans: list[EventNodeJson]


class SummaryJson(TypedDict):
    correlation_ids: list[str]
    trace_ids: list[str]
    span_count: int
    start_ns: int
    end_ns: int
    duration_ns: int
    now_ns: int
    retries: int
    pending: int
    lost: int
    in_flight: int
    broken_links: int
    dead_letters: int
    duplicates: int


class WorkflowDocument(TypedDict):
    schema: str
    key: str | None
    summary: SummaryJson
    roots: list[SpanRefJson]
    branches: list[BranchJson]
    pending: list[PendingBranchJson]
    unconsumed: list[UnconsumedJson]
    in_flight: list[InFlightJson]
    duplicate_publishes: list[DuplicatePublishJson]
    dead_letters: list[DeadLetterJson]
    critical_path: CriticalPathJson
    lagging: list[LaggingConsumerJson]
    breaks: list[PropagationBreakJson]
    islands: list[IslandJson]
    cycles: list[CycleJson]
    clock_skews: list[ClockSkewJson]
    limitations: list[LimitationJson]
    tree: TreeJson


class ChainStepJson(TypedDict):
    span: SpanRefJson
    role: str
    step: str
    event_id: str | None
    event_name: str | None
    consumer: str | None
    via: str | None
    stitched: bool


class WhyDocument(TypedDict):
    schema: str
    key: str | None
    target: str
    complete: bool
    gap: str | None
    stitched_hops: int
    steps: list[ChainStepJson]
    also_caused_by: list[SpanRefJson]


class PendingTotalsJson(TypedDict):
    pending: int
    lost: int
    in_flight: int
    unconsumed: int


class PendingWorkflowJson(TypedDict):
    key: str
    correlation_ids: list[str]
    trace_ids: list[str]
    pending: list[PendingBranchJson]
    unconsumed: list[UnconsumedJson]


class PendingDocument(TypedDict):
    schema: str
    now_ns: int
    since_ns: int | None
    totals: PendingTotalsJson
    workflows: list[PendingWorkflowJson]


class RetryWorkflowJson(TypedDict):
    key: str
    correlation_ids: list[str]
    trace_ids: list[str]
    total_retries: int
    branches: list[BranchJson]
    duplicate_publishes: list[DuplicatePublishJson]
    dead_letters: list[DeadLetterJson]


class ConsumerRetriesJson(TypedDict):
    consumer: str
    service: str
    step: str
    branches: int
    retried_branches: int
    retries: int
    duplicates: int
    dead_letters: int
    failing: int
    errors: dict[str, int]


class RetriesDocument(TypedDict):
    schema: str
    workflows: list[RetryWorkflowJson]
    consumers: list[ConsumerRetriesJson]


class LatencyDocument(TypedDict):
    schema: str
    key: str | None
    critical_path: CriticalPathJson
    lagging: list[LaggingConsumerJson]
    branches: list[BranchLatencyJson]
    deliveries: list[DeliveryLatencyJson]
    clock_skews: list[ClockSkewJson]


class MermaidDocument(TypedDict):
    schema: str
    key: str | None
    mermaid: str


class DemoOrderJson(TypedDict):
    correlation_id: str
    trace_id: str
    event_id: str


class DemoDocument(TypedDict):
    schema: str
    store: str
    orders: list[DemoOrderJson]
    workflow: WorkflowDocument
