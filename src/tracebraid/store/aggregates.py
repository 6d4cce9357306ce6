"""Fleet aggregates: the answers a store computes over every span, in its own engine.

A store that offers them implements ``FleetAggregates`` next to ``SpanStore``;
the ClickHouse store runs each as one SQL statement, so the table never travels
to Python. The definitions, shared by every store:

* spans are read as ``tracebraid.messaging`` reads them (role, message identity,
  consumer name, attempt, outcome), whatever convention generation they speak;
* a **delivery** is one message processed by one consumer, as the analysis groups a
  branch (``tracebraid.store._facts``): consumer spans of the same message (their
  parent producer's, else their own first strong identity) and consumer name (the
  group, else the service and queue, else the service); a batch consumer without a
  message of its own delivers those of the producers it links to; a start marker
  whose span has not arrived is an attempt in flight. Its **attempts** are those
  spans in start order; a **retry** is an attempt after a failed one (or a first
  one that counts itself 2 or more), as the analysis counts them; a **failed
  attempt** is one whose outcome failed;
* **queue wait** is a first attempt's start minus its producer's end (producer
  found by event ID, else as the consumer span's parent), never below zero;
  percentiles are nearest-rank over the exact values;
* an **island** is a trace whose root is a consumer span without links, whose
  event ID a producer span in another trace carries;
* a **workflow** is one correlation ID, with every span that carries it.

Example::

    >>> ConsumerRetries("inventory", deliveries=4, attempts=6, retries=2,
    ...                 failed_attempts=2, max_attempts=3).retried
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tracebraid.model import CorrelationId

__all__ = [
    "ConsumerRetries",
    "FleetAggregates",
    "QueueWait",
    "ServiceIslands",
    "WorkflowSummary",
    "nearest_rank",
]


@dataclass(frozen=True, slots=True)
class ConsumerRetries:
    """Retry counts of one consumer."""

    consumer: str
    deliveries: int
    attempts: int
    retries: int
    """Attempts after a failed one, summed over deliveries (as the analysis counts)."""
    failed_attempts: int
    max_attempts: int

    @property
    def retried(self) -> bool:
        """True when any delivery needed more than one attempt."""
        return self.retries > 0


@dataclass(frozen=True, slots=True)
class QueueWait:
    """How long deliveries to one destination waited before a consumer started them."""

    destination: str
    deliveries: int
    p50_ns: int
    p90_ns: int
    p99_ns: int
    max_ns: int


@dataclass(frozen=True, slots=True)
class ServiceIslands:
    """Broken causality seen from one consuming service."""

    service: str
    consumer_roots: int
    """Traces whose root is a consumer span of this service."""
    islands: int
    """Of those, traces whose event was produced in another trace (a propagation break)."""


@dataclass(frozen=True, slots=True)
class WorkflowSummary:
    """One workflow (correlation ID), as listed by ``recent_workflows``."""

    correlation_id: CorrelationId
    start_ns: int
    end_ns: int
    span_count: int
    trace_count: int
    error_count: int
    retry_count: int
    """Retries of the workflow's branches, as the analysis counts them."""
    services: tuple[str, ...]


def nearest_rank(sorted_values: list[int], fraction: float) -> int:
    """The nearest-rank percentile: the value at 1-based rank ceil(fraction * n)."""
    if not sorted_values:
        return 0
    rank = max(1, -(-int(fraction * 1000) * len(sorted_values) // 1000))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@runtime_checkable
class FleetAggregates(Protocol):
    """Fleet-wide answers a store computes in its own engine."""

    def retry_counts(
        self, since_ns: int | None = None, until_ns: int | None = None
    ) -> list[ConsumerRetries]:
        """Deliveries, attempts and retries per consumer, most retries first."""
        ...

    def queue_wait_percentiles(
        self, since_ns: int | None = None, until_ns: int | None = None
    ) -> list[QueueWait]:
        """Queue-wait percentiles per destination, slowest p99 first."""
        ...

    def islands_per_service(
        self, since_ns: int | None = None, until_ns: int | None = None
    ) -> list[ServiceIslands]:
        """Consumer-rooted traces and islands per service, most islands first."""
        ...

    def recent_workflows(
        self,
        limit: int = 50,
        before_ns: int | None = None,
        *,
        service: str | None = None,
        failed_only: bool = False,
        retried_only: bool = False,
    ) -> list[WorkflowSummary]:
        """The most recently started workflows, newest first, started before ``before_ns``."""
        ...
