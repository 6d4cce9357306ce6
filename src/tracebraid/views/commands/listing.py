"""``tracebraid list``: what a store holds, one line per workflow, newest first.

Each workflow (its correlation ID, or the trace ID of an uncorrelated trace) with
when it started, its first trace's root action, and the counts the search page
shows: traces, spans, retries, failed branches, work in flight, error spans and
broken causality. The counts are ``tracebraid.store.search``'s, summed over the
workflow's traces among those listed.

Example::

    $ tracebraid list
    $ tracebraid list --limit 200 --since 1h --store sqlite:///spans.db
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from tracebraid.errors import ConfigurationError
from tracebraid.store.search import MAX_PAGE, TraceHit, TraceQuery, search_traces
from tracebraid.views.commands._options import (
    EXIT_OK,
    add_command,
    add_store,
    guarded,
    positive_int,
    program,
    reading,
    show,
    store_url,
)
from tracebraid.views.counts import analysed_counts
from tracebraid.views.source import parse_since

__all__ = ["WorkflowLine", "register", "run", "workflow_lines"]


@dataclass(frozen=True, slots=True)
class WorkflowLine:
    """One workflow as listed: its key, first trace's root, and the summed counts."""

    key: str
    start_ns: int
    root: str
    traces: int
    spans: int
    retries: int
    failed: int
    in_flight: int
    errors: int
    broken: int


def register(subparsers: Any) -> None:
    """Add the ``list`` sub-command."""
    add_command(
        subparsers,
        "list",
        run,
        __doc__,
        help="the workflows a store holds, newest first, with their counts",
        options=(add_store, _add_window),
    )


def _add_window(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since",
        metavar="WHEN",
        help="only traces started since then: a duration ago (10m, 2h) or an ISO 8601 time",
    )
    parser.add_argument(
        "--limit",
        type=positive_int,
        default=50,
        metavar="N",
        help=f"look at the N most recent traces, 1 to {MAX_PAGE} (50)",
    )


def workflow_lines(hits: tuple[TraceHit, ...]) -> list[WorkflowLine]:
    """Hits (newest first) folded into one line per workflow, in the order first seen."""
    lines: dict[str, WorkflowLine] = {}
    for hit in hits:
        summary, facts = hit.summary, hit.facts
        key = summary.workflow_key
        seen = lines.get(key)
        lines[key] = WorkflowLine(
            key=key,
            start_ns=min(summary.start_ns, seen.start_ns) if seen else summary.start_ns,
            root=summary.root_name if seen is None else seen.root,
            traces=(seen.traces if seen else 0) + 1,
            spans=(seen.spans if seen else 0) + summary.span_count,
            retries=(seen.retries if seen else 0) + facts.retries,
            failed=(seen.failed if seen else 0) + facts.failed,
            in_flight=(seen.in_flight if seen else 0) + facts.in_flight,
            errors=(seen.errors if seen else 0) + summary.error_count,
            broken=(seen.broken if seen else 0) + int(facts.broken),
        )
    return list(lines.values())


def _when(start_ns: int) -> str:
    return datetime.fromtimestamp(start_ns / 1e9).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _count(value: int, style: str) -> Text:
    return Text(str(value), style=style if value else "dim")


def _table(lines: list[WorkflowLine]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for title in ("started", "workflow", "root", "traces", "spans"):
        table.add_column(title, justify="right" if title in ("traces", "spans") else "left")
    for title in ("retries", "failed", "in flight", "errors", "broken"):
        table.add_column(title, justify="right")
    for line in lines:
        table.add_row(
            _when(line.start_ns),
            line.key,
            line.root,
            str(line.traces),
            str(line.spans),
            _count(line.retries, "yellow"),
            _count(line.failed, "red"),
            _count(line.in_flight, "cyan"),
            _count(line.errors, "red"),
            _count(line.broken, "red"),
        )
    return table


@guarded("list")
def run(args: argparse.Namespace) -> int:
    """Print the workflows; 0 even when there are none (it says so)."""
    if not 1 <= args.limit <= MAX_PAGE:
        raise ConfigurationError(f"--limit must be between 1 and {MAX_PAGE}, got {args.limit}")
    since = parse_since(args.since, now_ns=time.time_ns())
    url = store_url(args)
    with reading(url) as store:
        page = search_traces(
            store, TraceQuery(since_ns=since, limit=args.limit), facts=analysed_counts
        )
    lines = workflow_lines(page.hits)
    if not lines:
        show(Text(f"no traces in {url}" + (f" since {args.since}" if args.since else "")))
        return EXIT_OK
    show(_table(lines))
    more = f"; more with --limit {MAX_PAGE}" if page.next_cursor and args.limit < MAX_PAGE else ""
    show(Text(f"{len(lines)} workflow(s) in {url}{more}; then: {program()} show KEY", "dim"))
    return EXIT_OK
