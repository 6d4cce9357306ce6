"""``tracebraid lint``: find where propagation discipline breaks, and gate CI on it.

Lints every workflow of a store (``--store``), or of span files (OTLP JSON, OTLP
protobuf, Jaeger JSON; plain or gzip), against the project's conventions file
(``--conventions``, the seed's YAML form; default: the seed's conventions). Prints
each finding with its rule ID, service, step, why it matters and the fix, then the
propagation coverage per service. Exit status: 0 clean or below --fail-on, 1 findings
at or above --fail-on, 2 bad usage, conventions file or span file, 3 the store cannot
be opened or read, 4 nothing was linted (no spans in the store, files or --since/--until
window: a CI gate must not pass on nothing, which is what a wrong --store looks like).

Example::

    $ tracebraid lint --store sqlite:///tracebraid.db --fail-on error
    $ tracebraid lint traces.jsonl jaeger.json --conventions trace-conventions.yaml --json
    $ tracebraid lint --since 1h --until 10m --fail-on warning
    $ tracebraid lint --rules
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from tracebraid.analysis.lint import (
    CATALOG,
    DEFAULT_CONVENTIONS,
    Conventions,
    Finding,
    LintReport,
    LintTally,
    Severity,
    lint_store,
    lint_store_url,
    load_conventions,
)
from tracebraid.collector.files import read_span_file
from tracebraid.errors import ConfigurationError, InputError, StoreError, TracebraidError
from tracebraid.store import SpanStore, open_store
from tracebraid.views.commands._options import console, describe, print_json, store_url
from tracebraid.views.lint_json import LINT_SCHEMA, lint_document
from tracebraid.views.source import STORE_ENV, default_store, open_for_reading, parse_when

__all__ = [
    "EXIT_CLEAN",
    "EXIT_FINDINGS",
    "EXIT_NOTHING",
    "EXIT_STORE",
    "EXIT_USAGE",
    "FAIL_ON",
    "LINT_SCHEMA",
    "lint_document",
    "register",
    "run",
]

EXIT_CLEAN = 0
"""No finding at or above --fail-on."""
EXIT_FINDINGS = 1
"""Findings at or above --fail-on."""
EXIT_USAGE = 2
"""Bad options, conventions file or span file (argparse exits 2 as well)."""
EXIT_STORE = 3
"""The store cannot be opened or read."""

EXIT_NOTHING = 4
"""No spans in the store, files or window: nothing was linted, so nothing passed."""

FAIL_ON = ("info", "warning", "error", "never")
_PROGRESS_EVERY = 50
_STYLES = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def register(subparsers: Any) -> None:
    """Add the ``lint`` sub-command."""
    parser = subparsers.add_parser(
        "lint",
        help="lint propagation and conventions: broken causality, lost correlation, ...",
        description=describe(__doc__),
    )
    parser.add_argument(
        "files", nargs="*", metavar="FILE", help="span files to lint instead of the store"
    )
    parser.add_argument(
        "--store",
        metavar="URL",
        help=f"span store to lint (default: ${STORE_ENV} or {default_store()})",
    )
    parser.add_argument(
        "--conventions", metavar="FILE", help="conventions YAML (default: the seed's)"
    )
    parser.add_argument(
        "--since",
        metavar="WHEN",
        help="only workflows with a trace started at or after WHEN: a duration ago (10m, "
        "2h, 7d) or an ISO 8601 time",
    )
    parser.add_argument(
        "--until", metavar="WHEN", help="only traces started before WHEN (same forms)"
    )
    parser.add_argument(
        "--fail-on",
        choices=FAIL_ON,
        default="error",
        help="exit 1 when a finding reaches this severity (default: error)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="processes that analyse workflows at once (default 1; use the cores you have "
        "for a large store)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON document instead")
    parser.add_argument("--rules", action="store_true", help="list the rules and exit")
    parser.set_defaults(handler=run)


def _conventions(path: str | None) -> Conventions:
    return DEFAULT_CONVENTIONS if path is None else load_conventions(path)


def _import(paths: Sequence[str], store: SpanStore, errors: Console) -> int:
    """Read span files into ``store``; how many spans were skipped as malformed."""
    skipped = 0
    for path in paths:
        for chunk in read_span_file(path):
            for problem in chunk.problems:
                skipped += problem.count
                errors.print(
                    f"tracebraid lint: {problem}", markup=False, highlight=False, soft_wrap=True
                )
            if chunk.spans:
                store.write(chunk.spans)
    return skipped


def _with_progress(
    store: SpanStore,
    url: str,
    conventions: Conventions,
    window: dict[str, Any],
    workers: int,
) -> LintReport:
    """Lint the store (``workers`` processes), counting on stderr when it is a terminal."""
    errors = Console(stderr=True)

    def run(progress: Callable[[LintTally], None] | None) -> LintReport:
        if workers > 1:
            return lint_store_url(url, conventions, workers=workers, progress=progress, **window)
        return lint_store(store, conventions, progress=progress, **window)

    if not errors.is_terminal:
        return run(None)
    with errors.status("linting…") as status:

        def progress(tally: LintTally) -> None:
            if tally.workflows % _PROGRESS_EVERY == 0:
                status.update(f"linted {tally.workflows:,} workflows, {tally.spans:,} spans…")

        return run(progress)


def _lint_files(
    args: argparse.Namespace, conventions: Conventions, window: dict[str, Any]
) -> LintReport:
    errors = Console(stderr=True)
    missing = [p for p in args.files if not Path(p).is_file()]
    if missing:
        raise InputError(f"no such span file: {', '.join(missing)}")
    with tempfile.TemporaryDirectory(prefix="tracebraid-lint-") as scratch:
        # On disk, not in memory: a large export is linted one workflow at a time too.
        url = f"sqlite:///{scratch}/spans.db"
        store = open_store(url)
        try:
            _import(args.files, store, errors)
            return _with_progress(store, url, conventions, window, args.workers)
        finally:
            store.close()


def _lint_store(
    url: str, conventions: Conventions, window: dict[str, Any], workers: int
) -> LintReport:
    try:
        store = open_for_reading(url)
    except ConfigurationError as exc:
        raise StoreError(str(exc)) from None
    try:
        return _with_progress(store, url, conventions, window, workers)
    finally:
        store.close()


def _finding(finding: Finding) -> RenderableType:
    times = f"  ×{finding.count:,}" if finding.count > 1 else ""
    head = Text.assemble(
        (f"{finding.severity.value.upper():<7}", _STYLES[finding.severity]),
        (f" {finding.rule} {finding.name}", "bold"),
        f"  {finding.service} › {finding.step}",
        (times, "dim"),
    )
    body: list[RenderableType] = [
        Text(finding.message),
        Text(f"why: {finding.why}", style="dim"),
        Text(f"fix: {finding.fix}", style="green"),
    ]
    body += [
        Text(f"at {s.service} {s.name!r} trace {s.trace_id} span {s.span_id}", style="dim")
        for s in finding.spans[:3]
    ]
    return Group(head, Padding(Group(*body), (0, 0, 0, 8), expand=False))


def _coverage(report: LintReport) -> Table:
    table = Table(title="propagation coverage per service", title_justify="left", box=None)
    for column in ("service", "sent intact", "received intact", "coverage"):
        table.add_column(column, justify="left" if column == "service" else "right")
    for c in report.coverage:
        ratio = c.ratio if c.ratio is not None else 1.0
        style = "green" if ratio == 1.0 else "yellow" if ratio >= 0.9 else "red"
        table.add_row(
            c.service,
            f"{c.sent_intact:,}/{c.sent:,}",
            f"{c.received_intact:,}/{c.received:,}",
            Text(f"{ratio:.0%}", style=style),
        )
    return table


def _render(
    report: LintReport, *, source: str, fail_on: str, exit_code: int, windowed: bool = False
) -> RenderableType:
    parts: list[RenderableType] = [
        Text(
            f"linted {report.workflows:,} workflows ({report.traces:,} traces, "
            f"{report.spans:,} spans) from {source}",
            style="dim",
        ),
        Text(""),
    ]
    for finding in report.findings:
        parts += [_finding(finding), Text("")]
    if report.coverage:
        parts += [_coverage(report), Text("")]
    counts = ", ".join(f"{report.count(s)} {s.value}" for s in reversed(Severity))
    extra = f"; {report.suppressed} allowed by the conventions" if report.suppressed else ""
    if exit_code == EXIT_NOTHING:
        return Text(
            f"nothing linted: no spans in {source}" + (" in the window" if windowed else "")
            + "; check --store (or the files) and --since/--until",
            style="bold yellow",
        )  # fmt: skip
    verdict = (
        Text(f"failing: findings at or above {fail_on}", style="bold red")
        if exit_code == EXIT_FINDINGS
        else Text("passing", style="bold green")
    )
    parts.append(Text.assemble(f"{counts}{extra} · ", verdict))
    return Group(*parts)


def _rules_table() -> Table:
    table = Table(box=None)
    for column in ("rule", "name", "severity", "what"):
        table.add_column(column)
    for spec in CATALOG:
        table.add_row(spec.id, spec.name, spec.severity.value, spec.title)
    return table


def _exit_code(report: LintReport, fail_on: str) -> int:
    if report.spans == 0:
        return EXIT_NOTHING
    if fail_on == "never":
        return EXIT_CLEAN
    return EXIT_FINDINGS if report.at_or_above(Severity(fail_on)) else EXIT_CLEAN


def run(args: argparse.Namespace) -> int:
    """The ``lint`` handler; see the module docstring for exit codes."""
    out = console()
    if args.rules:
        out.print(_rules_table())
        return EXIT_CLEAN
    try:
        if args.files and args.store:
            raise ConfigurationError("give span files or --store, not both")
        if args.workers < 1:
            raise ConfigurationError(f"--workers must be at least 1, got {args.workers}")
        now = time.time_ns()
        window = {
            "since_ns": parse_when(args.since, now_ns=now, option="--since"),
            "until_ns": parse_when(args.until, now_ns=now, option="--until"),
        }
        conventions = _conventions(args.conventions)
        if args.files:
            source = ", ".join(args.files)
            report = _lint_files(args, conventions, window)
        else:
            source = store_url(args)
            report = _lint_store(source, conventions, window, args.workers)
    except StoreError as exc:
        print(f"tracebraid lint: {exc}", file=sys.stderr)
        return EXIT_STORE
    except TracebraidError as exc:
        print(f"tracebraid lint: {exc}", file=sys.stderr)
        return EXIT_USAGE
    code = _exit_code(report, args.fail_on)
    if args.json:
        document = lint_document(
            report, source=source, conventions=conventions, fail_on=args.fail_on, exit_code=code
        )
        print_json(document)
    else:
        windowed = args.since is not None or args.until is not None
        out.print(
            _render(report, source=source, fail_on=args.fail_on, exit_code=code, windowed=windowed)
        )
    return code
