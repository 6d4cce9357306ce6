"""What follows the tree: where the time went in one line, then what needs saying.

The critical path line answers "where did the time go" (DESIGN.md's fourth
question) in business names; the notes list propagation breaks, duplicate
publishes, clock skew, cycles, islands that could not be stitched, and the
analysis' limitations ("no correlation ID on any span ..."): what the spans could
not tell, said rather than hidden.

Example::

    >>> from tracebraid.analysis import analyze
    >>> from tracebraid.testing.workflows import order_flow
    >>> critical_path_line(analyze(order_flow().spans)).plain.splitlines()[0]
    'critical path (◆): POST /orders → reserve-inventory → send-warehouse-webhook (3 attempts)'
"""

from __future__ import annotations

from rich.text import Text

from tracebraid.analysis import IslandCause, SegmentKind, WorkflowAnalysis
from tracebraid.views.layout import path_stops
from tracebraid.views.units import format_duration, short_id

__all__ = ["critical_path_line", "render_notes"]

_LABEL = "critical path (◆): "
_SHARES = (
    (SegmentKind.BACKOFF, "back-off"),
    (SegmentKind.FAILED_ATTEMPT, "failed attempts"),
    (SegmentKind.QUEUE_WAIT, "queue wait"),
)


def critical_path_line(analysis: WorkflowAnalysis) -> Text:
    """``critical path (◆): A → B → C (3 attempts)`` and, below, its length and make-up.

    Shares under 1 % of the path are left out: they are noise, not an answer.
    """
    path = analysis.critical_path
    if not path.steps:
        return Text("critical path: (no spans)", style="dim")
    stops = [
        stop.name + (f" ({stop.attempts} attempts)" if stop.attempts > 1 else "")
        for stop in path_stops(path)
    ]
    line = Text(_LABEL, style="bold magenta")
    line.append(" → ".join(stops), style="bold")
    seconds = path.workflow_duration_ns >= 1_000_000_000

    def span(ns: int) -> str:
        return f"{ns / 1e9:.2f} s" if seconds else format_duration(ns)

    totals = {total.kind: total.duration_ns for total in path.totals}
    shares = [
        f"{label} {span(totals[kind])}"
        for kind, label in _SHARES
        if totals.get(kind, 0) * 100 >= path.duration_ns > 0
    ]
    line.append("\n" + " " * len(_LABEL))
    line.append(f"{span(path.duration_ns)} of {span(path.workflow_duration_ns)}")
    if shares:
        line.append(", of which " + ", ".join(shares))
    return line


def _note(label: str, text: str, style: str = "yellow") -> Text:
    line = Text(f"{label}: ", style=f"bold {style}")
    line.append(text)
    return line


def render_notes(analysis: WorkflowAnalysis, *, ids: bool = False) -> list[Text]:
    """The critical path line, then one line per break, duplicate, skew, cycle, limitation."""
    notes = [critical_path_line(analysis)]
    for item in analysis.breaks:
        where = f" on {item.destination}" if item.destination else ""
        notes.append(_note(
            "broken link",
            f"{item.producer_service} {item.producer_step!r} → {item.consumer_service} "
            f"{item.consumer_step!r}{where}, {item.count}×: the consumer started a new trace "
            "(stitched back by event ID); propagate traceparent when publishing",
        ))  # fmt: skip
    for island in analysis.islands:
        if island.cause is IslandCause.STITCHED:
            continue
        notes.append(_note(
            "island",
            f"trace {short_id(island.trace_id, full=ids)} starts at {island.root.name!r} "
            f"({island.root.service}) and cannot be joined to its cause ({island.cause.value})",
        ))  # fmt: skip
    for duplicate in analysis.duplicate_publishes:
        producers = ", ".join(f"{p.name} ({p.service})" for p in duplicate.producers)
        notes.append(_note(
            "duplicate publish",
            f"{duplicate.event_name or 'event'} {short_id(duplicate.event_id, full=ids)} was "
            f"published {len(duplicate.producers)} times: {producers}",
        ))  # fmt: skip
    for skew in analysis.clock_skews:
        notes.append(_note(
            "clock skew",
            f"{skew.consumer.name} ({skew.consumer.service}) started "
            f"{format_duration(skew.skew_ns)} before {skew.producer.name} "
            f"({skew.producer.service}) ended; its wait counts as 0",
        ))  # fmt: skip
    for cycle in analysis.cycles:
        names = " → ".join(ref.name for ref in cycle.spans)
        notes.append(_note("cycle", f"{names} cause each other (an instrumentation bug)", "red"))
    for limitation in analysis.limitations:
        notes.append(_note("note", limitation.message, "cyan"))
    return notes
