"""The causal tree as a Mermaid flowchart, in the seed's style (``flowchart TD``).

Nodes carry business names: the user action, each event, each consumer step with
its retry count. Pending, in-flight and lost branches are dashed; a stitched
delivery (the trace context was lost and the edge was found by event ID) is a
dotted edge labelled ``stitched``; the critical path's nodes are drawn bold.
Pure: a function of the analysis, no I/O.

Example::

    >>> from tracebraid.analysis import analyze
    >>> from tracebraid.testing.workflows import order_flow
    >>> text = to_mermaid(analyze(order_flow().spans))
    >>> text.splitlines()[0]
    'flowchart TD'
    >>> any("send-warehouse-webhook" in line and "2 retries" in line for line in text.splitlines())
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tracebraid.analysis import WorkflowAnalysis
from tracebraid.views.layout import BranchNode, EventNode, NodeState, build_tree

__all__ = ["to_mermaid"]

_CLASSES = (
    "classDef critical stroke-width:3px,font-weight:bold",
    "classDef pending stroke-dasharray:5 5",
    "classDef lost stroke-dasharray:5 5,stroke:#c00",
    "classDef failed stroke:#c00",
)
_NOTES = {
    NodeState.IN_FLIGHT: "in flight",
    NodeState.PENDING: "pending",
    NodeState.LOST: "lost",
    NodeState.FAILED: "failing",
    NodeState.DEAD_LETTERED: "dead-lettered",
    NodeState.UNKNOWN: "outcome unknown",
}
_CLASS_OF = {
    NodeState.IN_FLIGHT: "pending",
    NodeState.PENDING: "pending",
    NodeState.LOST: "lost",
    NodeState.FAILED: "failed",
    NodeState.DEAD_LETTERED: "failed",
}


def _label(text: str) -> str:
    """A quoted Mermaid label: quotes and angle brackets escaped as entities."""
    escaped = text.replace("&", "#amp;").replace('"', "#quot;")
    return '"' + escaped.replace("<", "#lt;").replace(">", "#gt;") + '"'


@dataclass(slots=True)
class _Chart:
    lines: list[str] = field(default_factory=list)
    classes: dict[str, list[str]] = field(default_factory=dict)
    count: int = 0

    def node(self, shape: str, text: str, *classes: str) -> str:
        name = f"n{self.count}"
        self.count += 1
        opening, closing = shape.split("|")
        self.lines.append(f"    {name}{opening}{_label(text)}{closing}")
        for css in classes:
            self.classes.setdefault(css, []).append(name)
        return name

    def edge(self, source: str, target: str, *, dashed: bool, stitched: bool) -> None:
        if stitched:
            arrow = "-. stitched .->"
        elif dashed:
            arrow = "-.->"
        else:
            arrow = "-->"
        self.lines.append(f"    {source} {arrow} {target}")

    def event(self, source: str, event: EventNode) -> None:
        name = self.node(
            "([|])",
            event.event_name or event.event_id,
            *(("critical",) if event.on_critical_path else ()),
        )
        self.edge(source, name, dashed=False, stitched=False)
        for branch in event.branches:
            self.branch(name, branch)

    def branch(self, source: str, node: BranchNode) -> None:
        notes: list[str] = []
        if node.branch is not None and node.branch.retries:
            retries = node.branch.retries
            notes.append(f"{retries} retr{'y' if retries == 1 else 'ies'}")
        if node.branch is not None and node.branch.duplicates:
            notes.append(f"{node.branch.duplicates} duplicate")
        if node.state in _NOTES:
            notes.append(_NOTES[node.state])
        if node.lagging is not None:
            notes.append("lagging")
        text = node.step + (f" ({', '.join(notes)})" if notes else "")
        classes = [_CLASS_OF[node.state]] if node.state in _CLASS_OF else []
        if node.on_critical_path:
            classes.append("critical")
        name = self.node("[|]", text, *classes)
        waiting = node.state in (NodeState.IN_FLIGHT, NodeState.PENDING, NodeState.LOST)
        self.edge(source, name, dashed=waiting, stitched=node.stitched)
        for event in node.events:
            self.event(name, event)


def to_mermaid(analysis: WorkflowAnalysis) -> str:
    """The workflow's causal tree as Mermaid ``flowchart TD`` text (ends with a newline)."""
    tree = build_tree(analysis)
    chart = _Chart(lines=["flowchart TD"])
    for root in tree.roots:
        name = chart.node("[|]", root.span.name, *(("critical",) if root.on_critical_path else ()))
        for event in root.events:
            chart.event(name, event)
    if tree.orphans:
        unknown = chart.node("[|]", "cause not among the spans", "pending")
        for event in tree.orphans:
            chart.event(unknown, event)
    used = [css for css in _CLASSES if css.split()[1] in chart.classes]
    chart.lines.extend(f"    {css}" for css in used)
    chart.lines.extend(
        f"    class {','.join(names)} {css}" for css, names in sorted(chart.classes.items())
    )
    return "\n".join(chart.lines) + "\n"
