"""What can go wrong with an event besides a failed attempt: duplicate publishes,
dead letters, and work that started but never finished.

- ``DuplicatePublish``: two or more producer spans that are *origins* of one event
  ID (a retry queue or dead-letter republish from the event's own consumer does not
  count: ``tracebraid.analysis.graph``).
- ``DeadLetter``: evidence that an event was given up on: an attempt with outcome
  ``dead_letter`` (``tracebraid.outcome``, or ``tracebraid.dead_letter=true``), a
  republish to a dead-letter destination (``orders.dlq``, ``orders-dlx``, ...: see
  ``messaging.is_dead_letter_destination``), or a consumer reading one.
- ``InFlight``: a start marker whose span has not arrived: running, or stuck.

Example::

    >>> from tracebraid.analysis.graph import build_graph
    >>> from tracebraid.testing.workflows import duplicates
    >>> [d.event_id for d in find_duplicate_publishes(build_graph(duplicates().spans))]
    ['evt_8821']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tracebraid.analysis.graph import CausalGraph
from tracebraid.analysis.records import SpanRef
from tracebraid.messaging import AttemptOutcome
from tracebraid.model import EventId, SpanId

__all__ = [
    "DeadLetter",
    "DuplicatePublish",
    "InFlight",
    "find_duplicate_publishes",
    "find_in_flight",
    "unattributed_dead_letters",
]


@dataclass(frozen=True, slots=True)
class DuplicatePublish:
    """One event ID published by more than one producer span (not counting retries/DLQ)."""

    event_id: EventId
    event_name: str | None
    producers: tuple[SpanRef, ...]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Evidence that an event was dead-lettered; ``consumer`` is ``None`` when unknown."""

    event_id: EventId
    event_name: str | None
    consumer: str | None
    span: SpanRef
    destination: str | None


@dataclass(frozen=True, slots=True)
class InFlight:
    """Work a start marker announced that has no finished span: running, or stuck."""

    span: SpanRef
    started_ns: int
    event_id: EventId | None
    consumer: str | None


def find_duplicate_publishes(graph: CausalGraph) -> tuple[DuplicatePublish, ...]:
    """Every event ID with more than one origin producer."""
    return tuple(
        DuplicatePublish(
            event_id, graph.views[producers[0]].event_name, tuple(map(graph.ref, producers))
        )
        for event_id, producers in graph.origin_producers.items()
        if len(producers) > 1
    )


def marker_ref(graph: CausalGraph, position: int) -> SpanRef:
    """The span an open start marker announces: its ID, its step name, its service."""
    marker, view = graph.open_markers[position], graph.open_marker_views[position]
    return SpanRef(marker.trace_id, SpanId(view.marker_for or marker.span_id), view.step,
                   marker.service)  # fmt: skip


def find_in_flight(graph: CausalGraph) -> tuple[InFlight, ...]:
    """Every open start marker, in start order."""
    return tuple(
        InFlight(marker_ref(graph, n), marker.start_ns, view.event_id, view.consumer)
        for n, (marker, view) in enumerate(
            zip(graph.open_markers, graph.open_marker_views, strict=True)
        )
    )


def unattributed_dead_letters(
    graph: CausalGraph, known: Sequence[DeadLetter]
) -> tuple[DeadLetter, ...]:
    """Dead-letter evidence no branch accounts for: dead-letter republishes outside
    any branch, and consumers reading a dead-letter destination."""
    seen = {(d.event_id, d.span.span_id) for d in known}
    covered = {d.event_id for d in known}
    extra: list[DeadLetter] = []
    for event_id, producers in graph.republishers.items():
        for producer in producers:
            view = graph.views[producer]
            if view.dead_letter and (event_id, graph.spans[producer].span_id) not in seen:
                extra.append(
                    DeadLetter(event_id, view.event_name, None, graph.ref(producer),
                               view.destination)
                )  # fmt: skip
                covered.add(event_id)
    for event_id, readers in graph.consumers.items():
        if event_id in covered:
            continue
        for reader in readers:
            view = graph.views[reader]
            if view.dead_letter and view.outcome is not AttemptOutcome.DEAD_LETTER:
                extra.append(
                    DeadLetter(event_id, view.event_name, None, graph.ref(reader),
                               view.destination)
                )  # fmt: skip
                break
    return tuple(extra)
