"""The interface every span store implements (SQLite embedded, ClickHouse at scale).

A store is append-only and idempotent on (trace ID, span ID): writing a span that is
already stored is a no-op, so an exporter's retry never duplicates anything.
``write`` returns only once the spans are durable (committed).

Example::

    >>> from tracebraid.store import open_store
    >>> store = open_store("sqlite:///:memory:")
    >>> store.write([]).inserted
    0
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tracebraid.model import CorrelationId, EventId, Span, SpanId, TraceId

__all__ = [
    "ReadsThrough",
    "SharedWrites",
    "SpanStore",
    "StoreReopener",
    "TraceSummary",
    "WriteResult",
]


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a ``write`` did: spans newly stored and spans already present (replays)."""

    inserted: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class TraceSummary:
    """One trace, as listed by ``recent_traces``."""

    trace_id: TraceId
    root_name: str
    root_service: str
    start_ns: int
    end_ns: int
    span_count: int
    error_count: int
    correlation_ids: tuple[CorrelationId, ...]

    @property
    def workflow_key(self) -> str:
        """What its workflow is loaded by: its first correlation ID, else its trace ID.

        Example::

            >>> TraceSummary(TraceId("4bf9" * 8), "POST /orders", "checkout-api", 0, 1, 1, 0,
            ...              (CorrelationId("order_441"),)).workflow_key
            'order_441'
        """
        return self.correlation_ids[0] if self.correlation_ids else self.trace_id


@runtime_checkable
class SpanStore(Protocol):
    """Where finished spans live. Implementations: ``SqliteStore``, ``ClickHouseStore``,
    ``RemoteStore`` (a ``tracebraid serve`` elsewhere, through its API)."""

    def write(self, spans: Sequence[Span]) -> WriteResult:
        """Store ``spans`` durably; a span already stored (same trace and span ID) is skipped."""
        ...

    def spans_of_trace(self, trace_id: TraceId) -> list[Span]:
        """Every span of one trace, in start order."""
        ...

    def spans_of_traces(self, trace_ids: Collection[TraceId]) -> list[Span]:
        """Every span of the given traces, in start order: one round trip for many traces."""
        ...

    def spans_of_correlation(self, correlation_id: CorrelationId) -> list[Span]:
        """Every span carrying this correlation ID, in start order."""
        ...

    def spans_by_event(self, event_id: EventId) -> list[Span]:
        """Every span whose event ID (``messaging.message.id``) or causation ID is ``event_id``."""
        ...

    def spans_by_events(self, event_ids: Collection[EventId]) -> list[Span]:
        """Every span whose event ID or causation ID is one of ``event_ids``, in start
        order: one round trip for many events."""
        ...

    def spans_linking_to(self, trace_id: TraceId, span_id: SpanId) -> list[Span]:
        """Every span holding a link to (``trace_id``, ``span_id``)."""
        ...

    def trace_ids_with(
        self,
        *,
        correlation_ids: Collection[CorrelationId] = (),
        event_ids: Collection[EventId] = (),
        link_targets: Collection[tuple[TraceId, SpanId]] = (),
    ) -> set[TraceId]:
        """The traces holding a span that carries one of ``correlation_ids``, whose event
        or causation ID is one of ``event_ids``, or that links to one of the spans
        ``link_targets`` names; ``set()`` when no key is given.

        One round trip for any number of keys, and only trace IDs travel back: it is
        how ``load_workflow`` widens a workflow, a round of keys at a time.

        Example::

            >>> from tracebraid.store import open_store
            >>> open_store("sqlite:///:memory:").trace_ids_with(event_ids=["evt_8821"])
            set()
        """
        ...

    def recent_traces(self, limit: int = 50, before_ns: int | None = None) -> list[TraceSummary]:
        """The most recently started traces, newest first, started before ``before_ns``."""
        ...

    def iter_trace_ids(self) -> Iterator[TraceId]:
        """Every stored trace ID, streamed (for fleet-wide passes such as lint)."""
        ...

    def span_count(self) -> int:
        """How many spans are stored."""
        ...

    def close(self) -> None:
        """Release the store's connections."""
        ...


StoreReopener = Callable[[], SpanStore]
"""Opens a store again in another process; what ``SharedWrites.reopener`` returns."""


@runtime_checkable
class SharedWrites(Protocol):
    """A store that other processes can open and write at the same time as this one.

    The collector's ingest processes each open the store with ``reopener()`` and
    write what they decode themselves; the stores it opens take turns writing without
    busy-waiting on each other. ``reopener`` returns a picklable callable, or None
    when the store cannot be shared (a SQLite store in memory).

    Example::

        >>> from tracebraid.store import SqliteStore
        >>> isinstance(SqliteStore(":memory:"), SharedWrites)
        True
        >>> SqliteStore(":memory:").reopener() is None
        True
    """

    def reopener(self) -> StoreReopener | None:
        """A picklable callable opening this same store elsewhere; None if it cannot."""
        ...


class ReadsThrough:
    """Every ``SpanStore`` read, answered by the wrapped ``store``: the base of a store
    that changes only how spans are written (the collector's retention holds them first).

    A subclass defines ``write`` and ``close``; what it reads is what ``store`` holds.

    Example::

        >>> from tracebraid.store import SqliteStore
        >>> class Counting(ReadsThrough):
        ...     def write(self, spans: Sequence[Span]) -> WriteResult:
        ...         return self.store.write(spans)
        ...     def close(self) -> None:
        ...         self.store.close()
        >>> Counting(SqliteStore(":memory:")).span_count()
        0
    """

    def __init__(self, store: SpanStore) -> None:
        self.store = store

    def spans_of_trace(self, trace_id: TraceId) -> list[Span]:
        """See ``SpanStore``."""
        return self.store.spans_of_trace(trace_id)

    def spans_of_traces(self, trace_ids: Collection[TraceId]) -> list[Span]:
        """See ``SpanStore``."""
        return self.store.spans_of_traces(trace_ids)

    def spans_of_correlation(self, correlation_id: CorrelationId) -> list[Span]:
        """See ``SpanStore``."""
        return self.store.spans_of_correlation(correlation_id)

    def spans_by_event(self, event_id: EventId) -> list[Span]:
        """See ``SpanStore``."""
        return self.store.spans_by_event(event_id)

    def spans_by_events(self, event_ids: Collection[EventId]) -> list[Span]:
        """See ``SpanStore``."""
        return self.store.spans_by_events(event_ids)

    def spans_linking_to(self, trace_id: TraceId, span_id: SpanId) -> list[Span]:
        """See ``SpanStore``."""
        return self.store.spans_linking_to(trace_id, span_id)

    def trace_ids_with(
        self,
        *,
        correlation_ids: Collection[CorrelationId] = (),
        event_ids: Collection[EventId] = (),
        link_targets: Collection[tuple[TraceId, SpanId]] = (),
    ) -> set[TraceId]:
        """See ``SpanStore``."""
        return self.store.trace_ids_with(
            correlation_ids=correlation_ids, event_ids=event_ids, link_targets=link_targets
        )

    def recent_traces(self, limit: int = 50, before_ns: int | None = None) -> list[TraceSummary]:
        """See ``SpanStore``."""
        return self.store.recent_traces(limit, before_ns)

    def iter_trace_ids(self) -> Iterator[TraceId]:
        """See ``SpanStore``."""
        return self.store.iter_trace_ids()

    def span_count(self) -> int:
        """See ``SpanStore``."""
        return self.store.span_count()
