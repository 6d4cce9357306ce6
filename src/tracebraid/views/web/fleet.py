"""The fleet pages' documents: consumers' queue waits and lag, retries over time.

Two sources, each used where it holds:

- the store's pushed-down aggregates (``tracebraid.store.aggregates``: SQLite and
  ClickHouse compute them in their own engine, so they hold at millions of spans):
  deliveries, attempts and retries per consumer, queue-wait percentiles per
  destination, each over a time window, and so over a series of windows;
- the analysis of recent workflows (``LoadedWorkflow``, what ``/api/pending`` and
  ``/api/retries`` read): queue wait per consumer group and which deliveries lagged
  behind their siblings, which only the causal graph can tell.

- ``tracebraid.consumers/v1``: per consumer group, deliveries, queue wait p50/p95/p99
  and lagging deliveries (from the analysis), lagging ones first; per destination the
  store's percentiles, now and over time;
- ``tracebraid.retry_series/v1``: per consumer, retries and failed attempts in each
  window of a series, from the store's aggregates.

Example::

    >>> from tracebraid.analysis import analyze
    >>> from tracebraid.testing.workflows import order_flow
    >>> from tracebraid.views.source import LoadedWorkflow
    >>> flow = analyze(order_flow().spans)
    >>> groups = consumer_waits([LoadedWorkflow("order_441", flow, False)])
    >>> [(g.consumer, g.lagging) for g in groups][:1]
    [('summary', 1)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict

from tracebraid.store import FleetAggregates, SpanStore, SqliteAggregates, SqliteStore
from tracebraid.store.aggregates import nearest_rank
from tracebraid.views.source import LoadedWorkflow

__all__ = [
    "FLEET_SCHEMAS",
    "ConsumerWait",
    "ConsumersDocument",
    "RetrySeriesDocument",
    "Windows",
    "consumer_waits",
    "consumers_document",
    "fleet_aggregates",
    "retry_series_document",
    "windows",
]

FLEET_SCHEMAS = {kind: f"tracebraid.{kind}/v1" for kind in ("consumers", "retry_series")}
MAX_WINDOWS = 48


def fleet_aggregates(store: SpanStore) -> FleetAggregates | None:
    """The store's pushed-down aggregates, or ``None`` when it computes none."""
    if isinstance(store, FleetAggregates):
        return store
    if isinstance(store, SqliteStore):
        return SqliteAggregates(store)
    return None


@dataclass(frozen=True, slots=True)
class Windows:
    """``count`` equal windows from ``since_ns`` to ``until_ns``."""

    since_ns: int
    until_ns: int
    count: int

    def bounds(self) -> list[tuple[int, int]]:
        """Each window's ``[from, to)``, oldest first."""
        step = max(1, (self.until_ns - self.since_ns) // self.count)
        return [
            (self.since_ns + i * step, self.since_ns + (i + 1) * step if i < self.count - 1
             else self.until_ns)
            for i in range(self.count)
        ]  # fmt: skip


def windows(since_ns: int, until_ns: int, count: int) -> Windows:
    """A series of windows; ``count`` must be 1 to ``MAX_WINDOWS``.

    >>> windows(0, 100, 4).bounds()
    [(0, 25), (25, 50), (50, 75), (75, 100)]
    """
    if not 1 <= count <= MAX_WINDOWS:
        raise ValueError(f"windows must be between 1 and {MAX_WINDOWS}, not {count}")
    return Windows(since_ns, max(until_ns, since_ns + 1), count)


@dataclass(frozen=True, slots=True)
class ConsumerWait:
    """One consumer group's deliveries in the workflows looked at."""

    consumer: str
    service: str
    step: str
    deliveries: int
    waits: tuple[int, ...]
    """Queue waits, sorted (deliveries whose producer is known)."""
    lagging: int
    worst_ratio: float | None

    def percentile(self, fraction: float) -> int | None:
        """Nearest-rank percentile of the waits; ``None`` without any."""
        return nearest_rank(list(self.waits), fraction) if self.waits else None


def consumer_waits(loaded: Sequence[LoadedWorkflow]) -> list[ConsumerWait]:
    """Per consumer group, its waits and lagging deliveries; lagging groups first."""
    waits: dict[str, list[int]] = {}
    names: dict[str, tuple[str, str]] = {}
    deliveries: dict[str, int] = {}
    lagging: dict[str, int] = {}
    ratios: dict[str, float] = {}
    for workflow in loaded:
        analysis = workflow.analysis
        for branch in analysis.branches:
            names.setdefault(branch.consumer, (branch.service, branch.step))
            deliveries[branch.consumer] = deliveries.get(branch.consumer, 0) + 1
        for timing in analysis.branch_latencies:
            if timing.queue_wait_ns is not None:
                waits.setdefault(timing.consumer, []).append(timing.queue_wait_ns)
        for lag in analysis.lagging:
            lagging[lag.consumer] = lagging.get(lag.consumer, 0) + 1
            if lag.ratio is not None:
                ratios[lag.consumer] = max(ratios.get(lag.consumer, 0.0), lag.ratio)
    found = [
        ConsumerWait(
            consumer=consumer,
            service=service,
            step=step,
            deliveries=deliveries.get(consumer, 0),
            waits=tuple(sorted(waits.get(consumer, ()))),
            lagging=lagging.get(consumer, 0),
            worst_ratio=ratios.get(consumer),
        )
        for consumer, (service, step) in names.items()
    ]
    found.sort(key=lambda c: (-c.lagging, -(c.percentile(0.95) or 0), c.consumer))
    return found


class ConsumerWaitJson(TypedDict):
    consumer: str
    service: str
    step: str
    deliveries: int
    measured: int
    p50_ns: int | None
    p95_ns: int | None
    p99_ns: int | None
    max_ns: int | None
    lagging: int
    worst_ratio: float | None


class DestinationWaitJson(TypedDict):
    destination: str
    deliveries: int
    p50_ns: int
    p90_ns: int
    p99_ns: int
    max_ns: int


class WaitWindowJson(TypedDict):
    from_ns: int
    to_ns: int
    destinations: list[DestinationWaitJson]


class ConsumersDocument(TypedDict):
    schema: str
    now_ns: int
    since_ns: int
    workflows: int
    consumers: list[ConsumerWaitJson]
    pushed_down: bool
    destinations: list[DestinationWaitJson]
    series: list[WaitWindowJson]


class ConsumerCountJson(TypedDict):
    consumer: str
    deliveries: int
    attempts: int
    retries: int
    failed_attempts: int
    max_attempts: int


class RetryWindowJson(TypedDict):
    from_ns: int
    to_ns: int
    consumers: list[ConsumerCountJson]


class RetrySeriesDocument(TypedDict):
    schema: str
    now_ns: int
    since_ns: int
    pushed_down: bool
    totals: list[ConsumerCountJson]
    series: list[RetryWindowJson]


def _wait_json(group: ConsumerWait) -> ConsumerWaitJson:
    return {
        "consumer": group.consumer,
        "service": group.service,
        "step": group.step,
        "deliveries": group.deliveries,
        "measured": len(group.waits),
        "p50_ns": group.percentile(0.5),
        "p95_ns": group.percentile(0.95),
        "p99_ns": group.percentile(0.99),
        "max_ns": group.waits[-1] if group.waits else None,
        "lagging": group.lagging,
        "worst_ratio": group.worst_ratio,
    }


def _destinations(aggregates: FleetAggregates, since: int, until: int) -> list[DestinationWaitJson]:
    return [
        {
            "destination": w.destination,
            "deliveries": w.deliveries,
            "p50_ns": w.p50_ns,
            "p90_ns": w.p90_ns,
            "p99_ns": w.p99_ns,
            "max_ns": w.max_ns,
        }
        for w in aggregates.queue_wait_percentiles(since, until)
    ]


def consumers_document(
    loaded: Sequence[LoadedWorkflow],
    aggregates: FleetAggregates | None,
    *,
    now_ns: int,
    series: Windows,
) -> ConsumersDocument:
    """``tracebraid.consumers/v1``: consumer groups from ``loaded``, destinations from the store."""
    return {
        "schema": FLEET_SCHEMAS["consumers"],
        "now_ns": now_ns,
        "since_ns": series.since_ns,
        "workflows": len(loaded),
        "consumers": [_wait_json(group) for group in consumer_waits(loaded)],
        "pushed_down": aggregates is not None,
        "destinations": []
        if aggregates is None
        else _destinations(aggregates, series.since_ns, series.until_ns),
        "series": []
        if aggregates is None
        else [
            {"from_ns": a, "to_ns": b, "destinations": _destinations(aggregates, a, b)}
            for a, b in series.bounds()
        ],
    }


def _counts(aggregates: FleetAggregates, since: int, until: int) -> list[ConsumerCountJson]:
    return [
        {
            "consumer": c.consumer,
            "deliveries": c.deliveries,
            "attempts": c.attempts,
            "retries": c.retries,
            "failed_attempts": c.failed_attempts,
            "max_attempts": c.max_attempts,
        }
        for c in aggregates.retry_counts(since, until)
    ]


def retry_series_document(
    aggregates: FleetAggregates | None, *, now_ns: int, series: Windows
) -> RetrySeriesDocument:
    """``tracebraid.retry_series/v1``: retries per consumer over the whole window and per window."""
    return {
        "schema": FLEET_SCHEMAS["retry_series"],
        "now_ns": now_ns,
        "since_ns": series.since_ns,
        "pushed_down": aggregates is not None,
        "totals": []
        if aggregates is None
        else _counts(aggregates, series.since_ns, series.until_ns),
        "series": []
        if aggregates is None
        else [
            {"from_ns": a, "to_ns": b, "consumers": _counts(aggregates, a, b)}
            for a, b in series.bounds()
        ],
    }
