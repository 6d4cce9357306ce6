"""Propagation coverage per service: the share of delivery edges with intact context.

A delivery edge (producer span -> consumer span of one event) is *intact* when the
consumer continued the producer's context: child of it, or linked to it. It is
broken when the analysis had to stitch it by event ID, and a consumer that nothing
joins to a producer (an orphan) is a broken delivery with an unknown sender. Each
edge counts for the publishing service (``sent``) and the consuming one
(``received``), so a service sees both its own publishes' discipline and what it
receives.

Example::

    >>> from tracebraid.analysis import analyze
    >>> from tracebraid.testing.workflows import islands
    >>> tally = CoverageTally()
    >>> tally.add(analyze(islands(2).spans))
    >>> [(c.service, c.intact, c.deliveries) for c in tally.result()]
    [('audit', 0, 2), ('checkout-api', 2, 4), ('payment', 2, 2)]
"""

from __future__ import annotations

from dataclasses import dataclass

from tracebraid.analysis.graph import EdgeKind
from tracebraid.analysis.lint.rules.causality import is_unjoined
from tracebraid.analysis.stitching import IslandCause
from tracebraid.analysis.workflow import WorkflowAnalysis

__all__ = ["CoverageTally", "ServiceCoverage", "coverage"]


@dataclass(frozen=True, slots=True)
class ServiceCoverage:
    """One service's deliveries as sender and receiver, and how many kept their context."""

    service: str
    sent: int
    sent_intact: int
    received: int
    received_intact: int

    @property
    def deliveries(self) -> int:
        """Every delivery edge the service took part in, either end."""
        return self.sent + self.received

    @property
    def intact(self) -> int:
        """Those that kept their trace context."""
        return self.sent_intact + self.received_intact

    @property
    def ratio(self) -> float | None:
        """``intact / deliveries``; ``None`` for a service with no deliveries."""
        return self.intact / self.deliveries if self.deliveries else None


class CoverageTally:
    """Adds up coverage over many workflows in constant memory per service."""

    def __init__(self) -> None:
        self._counts: dict[str, list[int]] = {}

    def _bump(self, service: str, slot: int, intact: bool, sign: int) -> None:
        counts = self._counts.setdefault(service, [0, 0, 0, 0])
        counts[slot] += sign
        if intact:
            counts[slot + 1] += sign

    def add(self, analysis: WorkflowAnalysis, *, sign: int = 1) -> None:
        """Count the deliveries of ``analysis``; ``sign=-1`` takes them back out (a part of
        a workflow that was counted before)."""
        graph = analysis.graph
        for edge in graph.edges:
            if edge.kind is not EdgeKind.DELIVERY:
                continue
            consumer = graph.spans[edge.target]
            intact = not edge.stitched
            self._bump(graph.spans[edge.source].service, 0, intact, sign)
            self._bump(consumer.service, 2, intact, sign)
        for island in analysis.islands:
            node = graph.node(island.root.trace_id, island.root.span_id)
            if (
                island.cause in (IslandCause.NO_PRODUCER, IslandCause.NO_EVENT_ID)
                and node is not None
                and is_unjoined(graph, node)
            ):
                self._bump(island.root.service, 2, False, sign)

    def merge(self, other: CoverageTally) -> None:
        """Add another tally's counts to this one."""
        for service, counts in other._counts.items():
            mine = self._counts.setdefault(service, [0, 0, 0, 0])
            for slot, count in enumerate(counts):
                mine[slot] += count

    def result(self) -> tuple[ServiceCoverage, ...]:
        """Per service with any delivery, by service name."""
        return tuple(
            ServiceCoverage(service, *counts)
            for service, counts in sorted(self._counts.items())
            if counts[0] or counts[2]
        )


def coverage(analysis: WorkflowAnalysis) -> tuple[ServiceCoverage, ...]:
    """The propagation coverage of one workflow, per service."""
    tally = CoverageTally()
    tally.add(analysis)
    return tally.result()
