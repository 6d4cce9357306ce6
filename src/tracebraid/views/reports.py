"""The answers to ``why``, ``pending``, ``retries`` and ``latency`` as rich text and tables.

Each renderer takes the analysis' answer (``CausalChain``, ``LatencyReport``...) or
the loaded workflows and returns something ``rich.console.Console.print`` draws. As
with the tree, text carries every fact; colour only adds emphasis.

Example::

    >>> from rich.console import Console
    >>> from tracebraid.analysis import analyze, why
    >>> from tracebraid.testing.workflows import order_flow
    >>> flow = order_flow()
    >>> console = Console(width=120, color_system=None)
    >>> console.print(render_chain(why(analyze(flow.spans), flow.events["inventory.reserved"])))
    ... # doctest: +SKIP
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from tracebraid.analysis import (
    CausalChain,
    EdgeKind,
    LatencyReport,
    PendingState,
    Role,
    WorkflowAnalysis,
    retries,
)
from tracebraid.views.notes import critical_path_line
from tracebraid.views.recent import consumer_retries, error_type
from tracebraid.views.source import LoadedWorkflow
from tracebraid.views.units import format_duration, short_id

__all__ = ["render_chain", "render_latency", "render_pending", "render_retries"]

_RANKED_SHOWN = 10
_SEGMENT_NAMES = {
    "processing": "processing",
    "queue_wait": "queue wait",
    "backoff": "back-off",
    "failed_attempt": "failed attempt",
}


def _table(*columns: str, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", box=None, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column)
    return table


def _how(via: EdgeKind | None, stitched: bool) -> Text:
    if via is None:
        return Text("where it began")
    if stitched:
        return Text("⚠ delivered, stitched by event ID (trace context lost)", style="bold yellow")
    return Text(
        {EdgeKind.CHILD: "inside it", EdgeKind.LINK: "linked from it",
         EdgeKind.DELIVERY: "delivered to"}[via]
    )  # fmt: skip


def render_chain(chain: CausalChain, *, ids: bool = False) -> RenderableType:
    """The causal chain from the user action down to the target, one step a row."""
    table = _table("#", "step", "service", "how it follows", "event")
    for number, step in enumerate(chain.steps, 1):
        event = ""
        if step.event_id is not None:
            verb = "published" if step.role is Role.PRODUCER else "took"
            event = f"{verb} {step.event_name or 'event'} {short_id(step.event_id, full=ids)}"
        name = step.span.name if number == 1 else step.step
        if ids:
            name += f" (span {step.span.span_id} in trace {short_id(step.span.trace_id)})"
        table.add_row(str(number), name, step.span.service, _how(step.via, step.stitched), event)
    parts: list[RenderableType] = [Text(f"why {chain.target}", style="bold"), table]
    if chain.complete:
        parts.append(Text("the chain reaches the user action: nothing caused its first step"))
    else:
        parts.append(Text(f"the chain stops: {chain.gap}", style="yellow"))
    if chain.stitched_hops:
        parts.append(Text(
            f"{chain.stitched_hops} hop(s) crossed a propagation break: found by event ID, "
            "not by trace context (⚠ above)", style="yellow",
        ))  # fmt: skip
    for ref in chain.also_caused_by:
        parts.append(Text(f"also caused by: {ref.name} ({ref.service}), a fan-in link"))
    return Group(*parts)


def render_pending(loaded: Sequence[LoadedWorkflow], *, now_ns: int) -> RenderableType:
    """Every pending, in-flight and lost branch of the workflows, one row each."""
    table = _table("workflow", "event", "consumer", "state", "since publish", "deadline", "tried")
    rows = 0
    for workflow in loaded:
        for item in workflow.analysis.pending:
            rows += 1
            state = Text(
                f"{item.state.value} · {item.reason.value.replace('_', ' ')}",
                style="bold red" if item.state is PendingState.LOST else "yellow",
            )
            since = (
                "?" if item.published_ns is None else format_duration(now_ns - item.published_ns)
            )
            if item.deadline_ns is None:
                deadline = "none"
            elif item.state is PendingState.LOST:
                deadline = f"{format_duration(item.overdue_ns)} overdue"
            else:
                deadline = f"in {format_duration(item.deadline_ns - now_ns)}"
            tried = str(item.attempts) + (
                f" ({error_type(item.last_error)})" if item.last_error else ""
            )
            table.add_row(
                workflow.key, item.event_name or short_id(item.event_id), item.consumer, state,
                since, deadline, tried,
            )  # fmt: skip
    unread = [(w.key, u) for w in loaded for u in w.analysis.unconsumed]
    if not rows and not unread:
        return Text(f"nothing pending in {len(loaded)} workflow(s)", style="green")
    lost = sum(1 for w in loaded for p in w.analysis.pending if p.state is PendingState.LOST)
    footer = Text(f"{rows - lost} pending, {lost} lost, in {len(loaded)} workflow(s)")
    parts: list[RenderableType] = [table, footer] if rows else []
    if unread:
        # Apart from the expected branches: nobody said a consumer should come.
        parts.append(Text("published, no consumer seen:", style="bold"))
        for key, message in unread:
            overdue = message.overdue_ns
            note = f", lost ({format_duration(overdue)} overdue)" if overdue else ""
            parts.append(Text(
                f"  {key}  {message.event_name or short_id(message.event_id)}: "
                f"{message.summary} ({format_duration(now_ns - message.published_ns)} ago{note})",
                style="bold red" if overdue else "yellow",
            ))  # fmt: skip
    return Group(*parts)


def _retry_lines(analysis: WorkflowAnalysis, key: str) -> list[Text]:
    report = retries(analysis)
    lines: list[Text] = []
    for branch in report.branches:
        line = Text(f"{key}  ", style="bold")
        line.append(f"{branch.step} ({branch.service}) on {branch.event_name or 'event'}: ")
        count = len(branch.attempts)
        status = branch.status.value.replace("_", " ")
        line.append(f"{count} attempt{'' if count == 1 else 's'}, {status}")
        errors = Counter(error_type(a.error) for a in branch.attempts if a.outcome.failed)
        if errors:
            line.append(" · " + ", ".join(f"{name} ×{n}" for name, n in errors.most_common()))
        if branch.duplicates:
            line.append(f" · {branch.duplicates} duplicate processing(s)", style="bold yellow")
        lines.append(line)
    for duplicate in report.duplicate_publishes:
        lines.append(Text(
            f"{key}  duplicate publish: {duplicate.event_name or 'event'} "
            f"{short_id(duplicate.event_id)} by {len(duplicate.producers)} producers",
            style="yellow",
        ))  # fmt: skip
    for letter in report.dead_letters:
        where = f" → {letter.destination}" if letter.destination else ""
        lines.append(Text(
            f"{key}  dead letter: {letter.event_name or 'event'} {short_id(letter.event_id)} "
            f"({letter.consumer or 'consumer unknown'}){where}", style="red",
        ))  # fmt: skip
    return lines


def render_retries(loaded: Sequence[LoadedWorkflow]) -> RenderableType:
    """Per workflow the steps that retried, duplicated or dead-lettered; then per consumer."""
    lines = [line for w in loaded for line in _retry_lines(w.analysis, w.key)]
    consumers = _table(
        "consumer", "service", "branches", "retried", "retries", "duplicates", "dead letters",
        "failing", "errors", title="per consumer",
    )  # fmt: skip
    for row in consumer_retries(loaded):
        errors = ", ".join(f"{name} ×{count}" for name, count in row.errors) or "-"
        consumers.add_row(
            row.consumer, row.service, str(row.branches), str(row.retried_branches),
            str(row.retries), str(row.duplicates), str(row.dead_letters), str(row.failing), errors,
        )  # fmt: skip
    head = lines or [Text(f"no retries in {len(loaded)} workflow(s)", style="green")]
    return Group(*head, Text(""), consumers)


def render_latency(report: LatencyReport, analysis: WorkflowAnalysis) -> RenderableType:
    """Critical path, its segments ranked, lagging consumers, and every hand-off's timing."""
    path = report.critical_path
    ranked = _table("rank", "segment", "step", "service", "attempt", "time", "share",
                    title="critical path segments, longest first")  # fmt: skip
    for rank, segment in enumerate(path.ranked[:_RANKED_SHOWN], 1):
        share = f"{100 * segment.duration_ns / path.duration_ns:.0f} %" if path.duration_ns else "-"
        ranked.add_row(
            str(rank), _SEGMENT_NAMES.get(segment.kind.value, segment.kind.value),
            segment.span.name, segment.span.service,
            "" if segment.attempt is None else str(segment.attempt),
            format_duration(segment.duration_ns), share,
        )  # fmt: skip
    hand_offs = _table("event", "consumer", "attempt", "queue wait", "processing", "back-off",
                       "", title="deliveries")  # fmt: skip
    lagging = {(lag.event_id, lag.consumer) for lag in report.lagging}
    for item in report.deliveries:
        flags = []
        if (item.event_id, item.consumer) in lagging and item.queue_wait_ns is not None:
            flags.append("lagging")
        if item.stitched:
            flags.append("stitched")
        if item.clock_skew_ns:
            flags.append(f"clock skew {format_duration(item.clock_skew_ns)}")
        hand_offs.add_row(
            item.event_name or short_id(item.event_id), item.consumer,
            "" if item.attempt is None else str(item.attempt),
            "" if item.queue_wait_ns is None else format_duration(item.queue_wait_ns),
            format_duration(item.processing_ns),
            "" if item.backoff_before_ns is None else format_duration(item.backoff_before_ns),
            ", ".join(flags),
        )  # fmt: skip
    parts: list[RenderableType] = [critical_path_line(analysis), Text(""), ranked, Text("")]
    for lag in report.lagging:
        versus = "its siblings" if lag.compared_with == "siblings" else "the workflow's consumers"
        ratio = f" ({lag.ratio}×)" if lag.ratio is not None else ""
        parts.append(Text(
            f"lagging: {lag.consumer} waited {format_duration(lag.queue_wait_ns)} for "
            f"{lag.event_name or 'its event'}, against {format_duration(lag.baseline_ns)} "
            f"typical of {versus}{ratio}", style="bold yellow",
        ))  # fmt: skip
    if report.lagging:
        parts.append(Text(""))
    parts.append(hand_offs)
    return Group(*parts)
