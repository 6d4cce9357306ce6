"""The causal analysis: pure functions from spans to the four operator questions' answers.

``analyze(spans, topology=..., history=..., now_ns=...)`` builds the causal graph
(typed ``child``/``link``/``delivery`` edges), stitches broken traces, groups attempts
into branches, finds pending and lost work, latency and the critical path, and says
what the spans cannot tell. ``why``, ``pending``, ``retries`` and ``latency`` answer
the questions from its result. No I/O, no clock: pass ``now_ns``; read topology files
with ``load_topology`` at the edge.

Example::

    >>> from tracebraid.analysis import analyze, why
    >>> from tracebraid.testing.workflows import order_flow
    >>> flow = order_flow()
    >>> analysis = analyze(flow.spans, now_ns=flow.end_ns)
    >>> webhook = analysis.branches_of(flow.events["inventory.reserved"])[0]
    >>> [a.outcome.value for a in webhook.attempts]
    ['error', 'error', 'ok']
    >>> why(analysis, flow.events["payment.authorized"]).steps[0].step
    'POST /orders'
"""

from __future__ import annotations

from tracebraid.analysis.attempts import (
    Attempt,
    AttemptKind,
    Branch,
    Branches,
    BranchId,
    BranchStatus,
    find_branches,
)
from tracebraid.analysis.critical_path import (
    CriticalPath,
    Hop,
    PathStep,
    Segment,
    SegmentKind,
    SegmentTotal,
    find_critical_path,
)
from tracebraid.analysis.cycles import Cycle, find_cycles
from tracebraid.analysis.graph import CausalGraph, Edge, EdgeKind, MissingLink, build_graph
from tracebraid.analysis.hazards import DeadLetter, DuplicatePublish, InFlight
from tracebraid.analysis.limitations import find_limitations
from tracebraid.analysis.outstanding import (
    DEFAULT_DEADLINE_NS,
    PendingBranch,
    PendingReason,
    PendingState,
    Unconsumed,
    find_pending,
    find_unconsumed,
)
from tracebraid.analysis.questions import (
    CausalChain,
    ChainStep,
    LatencyReport,
    RetryReport,
    latency,
    pending,
    retries,
    why,
)
from tracebraid.analysis.records import Limitation, SpanRef
from tracebraid.analysis.stitching import (
    Island,
    IslandCause,
    PropagationBreak,
    find_breaks,
    find_islands,
)
from tracebraid.analysis.timing import (
    LAG_FACTOR,
    LAG_MIN_NS,
    BranchLatency,
    ClockSkew,
    DeliveryLatency,
    LaggingConsumer,
    Timing,
    measure,
)
from tracebraid.analysis.topology import (
    EventExpectation,
    Topology,
    learn_topology,
    load_topology,
    parse_duration,
    parse_topology,
)
from tracebraid.analysis.workflow import Frontier, MissingParent, WorkflowAnalysis, analyze
from tracebraid.messaging import (
    AttemptOutcome,
    ConsumerIdentity,
    MessagingView,
    Role,
    is_dead_letter_destination,
    is_start_marker,
    normalize,
)

__all__ = [
    "DEFAULT_DEADLINE_NS",
    "LAG_FACTOR",
    "LAG_MIN_NS",
    "Attempt",
    "AttemptKind",
    "AttemptOutcome",
    "Branch",
    "BranchId",
    "BranchLatency",
    "BranchStatus",
    "Branches",
    "CausalChain",
    "CausalGraph",
    "ChainStep",
    "ClockSkew",
    "ConsumerIdentity",
    "CriticalPath",
    "Cycle",
    "DeadLetter",
    "DeliveryLatency",
    "DuplicatePublish",
    "Edge",
    "EdgeKind",
    "EventExpectation",
    "Frontier",
    "Hop",
    "InFlight",
    "Island",
    "IslandCause",
    "LaggingConsumer",
    "LatencyReport",
    "Limitation",
    "MessagingView",
    "MissingLink",
    "MissingParent",
    "PathStep",
    "PendingBranch",
    "PendingReason",
    "PendingState",
    "PropagationBreak",
    "RetryReport",
    "Role",
    "Segment",
    "SegmentKind",
    "SegmentTotal",
    "SpanRef",
    "Timing",
    "Topology",
    "Unconsumed",
    "WorkflowAnalysis",
    "analyze",
    "build_graph",
    "find_branches",
    "find_breaks",
    "find_critical_path",
    "find_cycles",
    "find_islands",
    "find_limitations",
    "find_pending",
    "find_unconsumed",
    "is_dead_letter_destination",
    "is_start_marker",
    "latency",
    "learn_topology",
    "load_topology",
    "measure",
    "normalize",
    "parse_duration",
    "parse_topology",
    "pending",
    "retries",
    "why",
]
