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

Business names first; ``summary=True`` folds each event's healthy branches (one attempt,
succeeded, not lagging, off the critical path, and so is everything below them) into
one line, which ``show`` does by default past ``SUMMARY_BRANCHES`` branches. Lines
wider than the terminal are elided in the middle, the guides kept; piped output
(rendered with ``soft_wrap``) is never cut. ``ids=True`` adds every identity (trace, span, event,
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

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderResult
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
from tracebraid.views.labels import destination_label, event_label
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

__all__ = [
    "CRITICAL",
    "SUMMARY_BRANCHES",
    "FittedLines",
    "branch_count",
    "header_line",
    "render_tree",
    "tree_lines",
]

SUMMARY_BRANCHES = 200
"""Past this many branches ``show`` folds the healthy ones unless asked for ``--full``."""
_GUIDES = frozenset("│├└─▶ ")
_ELLIPSIS = "…"

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
    summary: bool = False


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
    steps = [branch.step for branch in node.branches]
    line.append(event_label(node.event_name, node.destination, steps), style="bold blue")
    line.append(f"  {short_id(node.event_id, full=options.ids)}", style="dim")
    if node.destination:
        line.append(f"  → {destination_label(node.destination)}")
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
    # The guides are dim, not the line: a base style would dim the body (red failures too).
    line = Text()
    line.append(prefix, style="dim")
    line.append_text(body)
    return line


def _healthy(node: BranchNode) -> bool:
    """Nothing to look at: one attempt that succeeded, on time, and so below it."""
    branch = node.branch
    return (
        node.state is NodeState.SUCCEEDED
        and branch is not None
        and len(branch.attempts) == 1
        and node.lagging is None
        and not node.stitched
        and not node.on_critical_path
        and all(_healthy(child) for event in node.events for child in event.branches)
    )


def _folded(nodes: Sequence[BranchNode]) -> Text:
    steps = list(dict.fromkeys(node.step for node in nodes))
    named = ", ".join(steps[:3]) + (", …" if len(steps) > 3 else "")
    plural = "es" if len(nodes) > 1 else ""
    return Text(f"{_OK} {len(nodes)} healthy branch{plural} folded ({named})", style="green")


def branch_count(tree: WorkflowTree) -> int:
    """Every branch node in ``tree``, expected ones included (what ``SUMMARY_BRANCHES`` counts)."""

    def under(events: Sequence[EventNode]) -> int:
        return sum(1 + under(node.events) for event in events for node in event.branches)

    return sum(under(root.events) for root in tree.roots) + under(tree.orphans)


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
        healthy = [n for n in event.branches if _healthy(n)] if options.summary else []
        shown = [n for n in event.branches if n not in healthy]
        for number, node in enumerate(shown):
            final = number == len(shown) - 1 and not healthy
            yield _prefixed(inner + ("└─▶ " if final else "├─▶ "), _branch(node, options))
            below = inner + ("    " if final else "│   ")
            own = _under(below, bool(node.events))
            if options.ids:
                yield _prefixed(own, _branch_ids(node, options))
            for attempt in _attempt_lines(node, options):
                yield _prefixed(own, attempt)
            yield from _event_lines(node.events, below, options)
        if healthy:
            yield _prefixed(inner + "└─▶ ", _folded(healthy))


def tree_lines(
    analysis: WorkflowAnalysis, *, ids: bool = False, summary: bool | None = False
) -> list[Text]:
    """The tree's lines: each root action, then what it caused (no header, no notes).

    ``summary``: fold healthy branches; ``None`` folds them past ``SUMMARY_BRANCHES``.
    """
    tree: WorkflowTree = build_tree(analysis)
    if summary is None:
        summary = branch_count(tree) > SUMMARY_BRANCHES
    options = _Options(analysis.now_ns, ids, len(analysis.trace_ids) > 1, summary)
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


def render_tree(
    analysis: WorkflowAnalysis, *, ids: bool = False, summary: bool | None = False
) -> Group:
    """Header, tree, critical path line and notes (breaks, skew, limitations) of a workflow.

    ``summary`` as in ``tree_lines``; tree lines too wide are elided (``FittedLines``).
    """
    return Group(
        header_line(analysis, ids=ids),
        FittedLines(tree_lines(analysis, ids=ids, summary=summary)),
        *render_notes(analysis, ids=ids),
    )


class FittedLines:
    """Tree lines, each on one terminal line: a line wider than the terminal keeps its
    guides and loses the middle of the rest (``…``), so the tree's shape survives at 80
    columns. Printed with ``soft_wrap`` (piped output), lines are left whole.
    """

    def __init__(self, lines: Sequence[Text]) -> None:
        self.lines = tuple(lines)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in self.lines:
            yield line if options.no_wrap else _fit(line, options.max_width)


def _fit(line: Text, width: int) -> Text:
    """``line`` in ``width`` cells: the guides kept, the middle of the rest elided."""
    if cell_len(line.plain) <= width:
        return line
    plain = line.plain
    guides = len(plain) - len(plain.lstrip("".join(_GUIDES)))
    room = width - guides - 1  # the ellipsis takes one
    if room < 8:  # too deep to say anything: cut at the end
        return line[: max(width - 1, 0)] + Text(_ELLIPSIS)
    body = plain[guides:]
    head = (room * 2) // 3
    tail = room - head
    # Characters, not cells: the tree's names and IDs are narrow text.
    over = cell_len(body) - len(body)
    tail = max(tail - over, 1)
    fitted = line[: guides + head]
    fitted.append(_ELLIPSIS, style="dim")
    fitted.append_text(line[len(plain) - tail :])
    return fitted
