"""The causal tree of one workflow, as rich text: what ``tracebraid show`` and ``demo`` print.

::

    order_441 · trace 4bf92f35… · 1.92 s · 2 retries · 1 pending · 0 broken links
    ◆ POST /orders  checkout-api  12 ms
    └─▶ ◆ order.placed  evt_5bc9444a…  → orders
        ├─▶ authorize-payment  payment  waited 3 ms · 45 ms ✓
        │   └─▶ payment.authorized  evt_23782a5f…  → payments
        │       ├─▶ project-order-summary  summary  waited 812 ms (lagging) · 20 ms ✓
        │       └─▶ award-loyalty-points  loyalty  waited 1 ms · ⋯ in flight for 1.20 s
        └─▶ ◆ reserve-inventory  inventory  waited 2 ms · 30 ms ✓
            └─▶ ◆ inventory.reserved  evt_d1d0d0c2…  → inventory
                └─▶ ◆ send-warehouse-webhook  warehouse  waited 2 ms · 3 attempts ✓
                      ◆ attempt 1 ✗ TimeoutError after 500 ms · back-off 200 ms
                      ◆ attempt 2 ✗ TimeoutError after 500 ms · back-off 400 ms
                      ◆ attempt 3 ✓ 80 ms
    critical path (◆): POST /orders → reserve-inventory → send-warehouse-webhook (3 attempts)
                       1.71 s of 1.92 s, of which back-off 0.60 s, failed attempts 1.00 s

Business names first; ``ids=True`` adds every identity (trace, span, event,
correlation and causation IDs). Styles only add emphasis: with no colour the text
says everything (``◆`` marks the critical path, ``✓``/``✗``/``⋯`` the outcomes).

Example::

    >>> from rich.console import Console
    >>> from tracebraid.analysis import analyze
    >>> from tracebraid.testing.workflows import order_flow
    >>> console = Console(record=True, width=120, color_system=None)
    >>> console.print(render_tree(analyze(order_flow().spans)))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from rich.console import Group
from rich.text import Text

from tracebraid.analysis import (
    Attempt,
    AttemptKind,
    AttemptOutcome,
    ConsumerIdentity,
    PendingState,
    SpanRef,
    WorkflowAnalysis,
)
from tracebraid.views.documents import summary
from tracebraid.views.layout import (
    ActionNode,
    BranchNode,
    EventNode,
    NodeState,
    WorkflowTree,
    build_tree,
)
from tracebraid.views.notes import render_notes
from tracebraid.views.units import format_duration, short_id

__all__ = ["CRITICAL", "header_line", "render_tree", "tree_lines"]

CRITICAL = "◆"
"""Marks the spans the critical path runs through."""

_ERROR_WIDTH = 60
_OK, _FAIL, _WAIT, _UNKNOWN = "✓", "✗", "⋯", "?"
_STYLE = {
    NodeState.SUCCEEDED: "green",
    NodeState.FAILED: "red",
    NodeState.DEAD_LETTERED: "red",
    NodeState.IN_FLIGHT: "yellow",
    NodeState.PENDING: "yellow",
    NodeState.LOST: "bold red",
    NodeState.UNKNOWN: "cyan",
}


def _error(text: str | None) -> str:
    if not text:
        return "failed"
    return text if len(text) <= _ERROR_WIDTH else text[: _ERROR_WIDTH - 1] + "…"


def header_line(analysis: WorkflowAnalysis, *, ids: bool = False) -> Text:
    """``order_441 · trace 4bf92f35… · 1.92 s · 2 retries · 1 pending · 0 broken links``."""
    parts: list[str] = []
    if analysis.correlation_ids:
        parts.append(", ".join(analysis.correlation_ids))
    traces = analysis.trace_ids
    if len(traces) == 1 or ids:
        parts.append("trace " + ", ".join(short_id(t, full=ids) for t in traces))
    else:
        parts.append(f"{len(traces)} traces")
    parts.append(format_duration(analysis.duration_ns))
    figures = summary(analysis)
    retries = figures["retries"]
    parts.append(f"{retries} retr{'y' if retries == 1 else 'ies'}")
    parts.append(f"{figures['pending']} pending")
    if figures["lost"]:
        parts.append(f"{figures['lost']} lost")
    if figures["dead_letters"]:
        parts.append(f"{figures['dead_letters']} dead-lettered")
    broken = figures["broken_links"]
    parts.append(f"{broken} broken link{'' if broken == 1 else 's'}")
    return Text(" · ".join(parts), style="bold")


@dataclass(frozen=True, slots=True)
class _Options:
    now_ns: int
    ids: bool
    many_traces: bool  # name the trace beside a span only when it is not the only one


def _mark(line: Text, critical: bool) -> None:
    if critical:
        line.append(CRITICAL + " ", style="bold magenta")


def _action(node: ActionNode) -> Text:
    line = Text()
    _mark(line, node.on_critical_path)
    line.append(node.span.name, style="bold")
    line.append(f"  {node.span.service}", style="cyan")
    line.append(f"  {format_duration(node.duration_ns)}")
    return line


def _span_id(ref: SpanRef, options: _Options) -> str:
    where = f" in trace {ref.trace_id}" if options.many_traces else ""
    return f"span {ref.span_id}{where}"


def _event(node: EventNode, options: _Options) -> Text:
    line = Text()
    _mark(line, node.on_critical_path)
    line.append(node.event_name or "(unnamed event)", style="bold blue")
    line.append(f"  {short_id(node.event_id, full=options.ids)}", style="dim")
    if node.destination:
        line.append(f"  → {node.destination}")
    if node.producer is None:
        line.append("  (its producer is not among the spans)", style="yellow")
    return line


def _event_ids(node: EventNode, options: _Options) -> Text | None:
    facts = []
    if node.causation_id:
        facts.append(f"caused by event {node.causation_id}")
    if node.producer is not None:
        facts.append(f"published by {_span_id(node.producer, options)}")
    return Text(" · ".join(facts), style="dim") if facts else None


def _branch_ids(node: BranchNode, options: _Options) -> Text:
    facts = [f"group {node.consumer}", f"event {node.event_id}"]
    branch = node.branch
    if branch is not None and len(branch.attempts) == 1:
        facts.append(_span_id(branch.attempts[0].span, options))
    return Text(" · ".join(facts), style="dim")


def _waited(node: BranchNode) -> int | None:
    if node.latency is not None and node.latency.queue_wait_ns is not None:
        return node.latency.queue_wait_ns
    published = node.pending.published_ns if node.pending else None
    if node.branch is not None and published is not None:
        return max(0, node.branch.first_start_ns - published)
    return None


def _deadline(node: BranchNode, now_ns: int) -> str | None:
    waiting = node.pending
    if waiting is None or waiting.deadline_ns is None:
        return None
    if waiting.state is PendingState.LOST:
        return f"lost: {format_duration(waiting.overdue_ns)} past its deadline"
    return f"due within {format_duration(max(0, waiting.deadline_ns - now_ns))}"


def _attempt_outcome(attempt: Attempt, now_ns: int, *, inline: bool = False) -> tuple[str, str]:
    """The outcome of one attempt as text, and its style."""
    if attempt.outcome is AttemptOutcome.IN_FLIGHT:
        return f"{_WAIT} in flight for {format_duration(now_ns - attempt.start_ns)}", "yellow"
    took = format_duration(attempt.duration_ns)
    if attempt.outcome is AttemptOutcome.OK:
        return (f"{took} {_OK}" if inline else f"{_OK} {took}"), "green"
    if attempt.outcome is AttemptOutcome.UNKNOWN:
        return f"{_UNKNOWN} delivered, outcome unknown (the span ends before handling)", "cyan"
    if attempt.outcome is AttemptOutcome.DEAD_LETTER:
        return f"{_FAIL} dead-lettered: {_error(attempt.error)} after {took}", "red"
    return f"{_FAIL} {_error(attempt.error)} after {took}", "red"


def _branch_facts(node: BranchNode, now_ns: int) -> list[tuple[str, str]]:
    facts: list[tuple[str, str]] = []
    waited = _waited(node)
    if waited is not None:
        lagging = node.lagging is not None
        facts.append(
            (f"waited {format_duration(waited)}" + (" (lagging)" if lagging else ""),
             "bold yellow" if lagging else "")
        )  # fmt: skip
    branch = node.branch
    if branch is None:
        assert node.pending is not None  # a node without a branch is an expected one
        facts.append((f"{_WAIT} not started, expected by {node.pending.expected_by}", "yellow"))
    elif len(branch.attempts) == 1:
        facts.append(_attempt_outcome(branch.attempts[0], now_ns, inline=True))
    else:
        count = len(branch.attempts)
        facts.append({
            NodeState.SUCCEEDED: (f"{count} attempts {_OK}", "green"),
            NodeState.DEAD_LETTERED: (f"{count} attempts, dead-lettered {_FAIL}", "red"),
            NodeState.IN_FLIGHT: (f"{count} attempts, last in flight {_WAIT}", "yellow"),
            NodeState.UNKNOWN: (f"{count} deliveries, outcome unknown {_UNKNOWN}", "cyan"),
        }.get(node.state, (f"{count} attempts, none succeeded {_FAIL}", "red")))  # fmt: skip
    if branch is not None and branch.batch:
        facts.append(("batch", "dim"))
    deadline = _deadline(node, now_ns)
    if deadline is not None and node.state is not NodeState.SUCCEEDED:
        facts.append((deadline, _STYLE[node.state]))
    if node.stitched:
        facts.append(("⚠ stitched: the trace context was lost on this delivery", "bold yellow"))
    return facts


def _branch(node: BranchNode, options: _Options) -> Text:
    line = Text()
    _mark(line, node.on_critical_path)
    line.append(node.step, style="bold")
    if node.service:
        line.append(f"  {node.service}", style="cyan")
    if node.consumer not in (node.step, node.service):
        # Say which identity named the consumer: a group, or the queue it reads.
        queue = node.branch is not None and (
            node.branch.consumer_identified_by is ConsumerIdentity.QUEUE
        )
        said = f"queue {node.consumer.partition(':')[2]}" if queue else f"group {node.consumer}"
        line.append(f"  {said}", style="dim")
    for position, (text, style) in enumerate(_branch_facts(node, options.now_ns)):
        line.append(" · " if position else "  ")
        line.append(text, style=style)
    return line


def _attempt_lines(node: BranchNode, options: _Options) -> Iterator[Text]:
    branch = node.branch
    if branch is None or len(branch.attempts) < 2:
        return
    attempts = branch.attempts
    for position, attempt in enumerate(attempts):
        line = Text()
        _mark(line, attempt.number in node.critical_attempts)
        line.append(f"attempt {attempt.number} ")
        text, style = _attempt_outcome(attempt, options.now_ns)
        line.append(text, style=style)
        following = attempts[position + 1] if position + 1 < len(attempts) else None
        if following is not None and following.backoff_before_ns is not None:
            line.append(f" · back-off {format_duration(following.backoff_before_ns)}")
        if attempt.kind in (AttemptKind.DUPLICATE, AttemptKind.REDELIVERY):
            line.append(f" · {attempt.kind.value}", style="bold yellow")
        if options.ids:
            line.append(f"  {_span_id(attempt.span, options)}", style="dim")
        yield line


def _prefixed(prefix: str, body: Text) -> Text:
    line = Text(prefix, style="dim")
    line.append_text(body)
    return line


def _under(prefix: str, has_children: bool) -> str:
    """The prefix of lines that belong to a node (its attempts, its identities)."""
    return prefix + ("│ " if has_children else "  ")


def _event_lines(events: tuple[EventNode, ...], prefix: str, options: _Options) -> Iterator[Text]:
    for position, event in enumerate(events):
        last = position == len(events) - 1
        yield _prefixed(prefix + ("└─▶ " if last else "├─▶ "), _event(event, options))
        inner = prefix + ("    " if last else "│   ")
        detail = _event_ids(event, options) if options.ids else None
        if detail is not None:
            yield _prefixed(_under(inner, bool(event.branches)), detail)
        for number, node in enumerate(event.branches):
            final = number == len(event.branches) - 1
            yield _prefixed(inner + ("└─▶ " if final else "├─▶ "), _branch(node, options))
            below = inner + ("    " if final else "│   ")
            own = _under(below, bool(node.events))
            if options.ids:
                yield _prefixed(own, _branch_ids(node, options))
            for attempt in _attempt_lines(node, options):
                yield _prefixed(own, attempt)
            yield from _event_lines(node.events, below, options)


def tree_lines(analysis: WorkflowAnalysis, *, ids: bool = False) -> list[Text]:
    """The tree's lines: each root action, then what it caused (no header, no notes)."""
    tree: WorkflowTree = build_tree(analysis)
    options = _Options(analysis.now_ns, ids, len(analysis.trace_ids) > 1)
    lines: list[Text] = []
    for root in tree.roots:
        lines.append(_action(root))
        if ids:
            detail = Text(_span_id(root.span, options), style="dim")
            lines.append(_prefixed(_under("", bool(root.events)), detail))
        lines.extend(_event_lines(root.events, "", options))
    if tree.orphans:
        lines.append(Text("(cause not among the spans)", style="bold yellow"))
        lines.extend(_event_lines(tree.orphans, "", options))
    if not lines:
        lines.append(Text("(no spans)", style="dim"))
    return lines


def render_tree(analysis: WorkflowAnalysis, *, ids: bool = False) -> Group:
    """Header, tree, critical path line and notes (breaks, skew, limitations) of a workflow."""
    return Group(
        header_line(analysis, ids=ids),
        *tree_lines(analysis, ids=ids),
        *render_notes(analysis, ids=ids),
    )
