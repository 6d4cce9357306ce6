"""``tracebraid import FILE...``: span files into the store, or to a remote ``serve``.

Formats are detected from the content (``files``): OTLP JSON lines, OTLP JSON,
OTLP protobuf, Jaeger JSON, Tempo JSON, plain or gzip-compressed. A malformed line or
span is reported with its file and line and skipped; everything valid is kept. Imports
are idempotent: importing a file twice stores nothing twice. A missing file stops the
import before anything is written; a file no span can be read from is named with the
formats expected; the store is created only when a span arrives. The import ends by
naming the workflows that arrived (their correlation IDs, or trace IDs).

Example::

    $ tracebraid import traces.jsonl jaeger-export.json --store sqlite:///spans.db
    $ tracebraid import traces.jsonl --endpoint http://collector:4318 --token "$TOKEN"
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from tracebraid.collector.files import EXPECTED_FORMATS, FileProblem, read_span_file
from tracebraid.collector.remote import OtlpHttpSender
from tracebraid.collector.server import DEFAULT_STORE, STORE_ENV, TOKEN_ENV
from tracebraid.errors import ConfigurationError, InputError, TracebraidError
from tracebraid.messaging import correlation_of
from tracebraid.model import Span

__all__ = ["Deliver", "Delivered", "ImportTotals", "import_files", "register"]

_PROGRESS_MIN_BYTES = 1 << 20  # smaller files are done before a bar would help
_SHOWN_PROBLEMS = 50  # per file; the rest are counted
_NAMED_WORKFLOWS = 10  # named at the end of an import; more are counted as "and more"


@dataclass(slots=True)
class ImportTotals:
    """What an import did across all files.

    ``kept`` spans are stored (``inserted`` of them new; None when a remote collector
    stored them, as it does not say which were new); ``skipped`` were malformed or
    refused; ``unreadable`` files could not be opened at all.
    """

    files: int = 0
    kept: int = 0
    inserted: int | None = 0
    skipped: int = 0
    unreadable: int = 0
    workflows: dict[str, None] = field(default_factory=dict)
    """The workflows that arrived, in order: correlation IDs, else trace IDs."""

    def saw(self, spans: Sequence[Span]) -> None:
        """Note the workflows ``spans`` belong to (up to ``_NAMED_WORKFLOWS`` + 1 kept)."""
        correlated: set[str] = set()
        for span in spans:
            correlation = correlation_of(span.attributes)
            if correlation:
                correlated.add(span.trace_id)
                self._add(correlation)
        for span in spans:
            if span.trace_id not in correlated and span.parent_span_id is None:
                self._add(span.trace_id)

    def _add(self, key: str) -> None:
        if len(self.workflows) <= _NAMED_WORKFLOWS:
            self.workflows[key] = None


@dataclass(frozen=True, slots=True)
class Delivered:
    """What the destination did with one batch."""

    kept: int
    inserted: int | None
    refusals: tuple[str, ...] = ()


Deliver = Callable[[Sequence[Span]], Delivered]
"""Sends a batch of spans to the store or a collector."""


def import_files(
    paths: Sequence[str],
    deliver: Deliver,
    *,
    console: Console,
    batch_spans: int = 5000,
) -> ImportTotals:
    """Read every file, deliver its spans in batches, report problems on ``console``."""
    totals = ImportTotals()
    sizes = {p: _size(p) for p in paths}
    show_bar = console.is_terminal and sum(sizes.values()) >= _PROGRESS_MIN_BYTES
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not show_bar,
    )
    with progress:
        for path in paths:
            totals.files += 1
            task = progress.add_task(os.path.basename(path), total=sizes[path] or None)
            shown = 0
            read = 0

            def report(problem: FileProblem | str) -> None:
                nonlocal shown
                shown += 1
                if shown <= _SHOWN_PROBLEMS:
                    console.print(str(problem), markup=False, highlight=False, soft_wrap=True)

            try:
                for chunk in read_span_file(path, chunk_spans=batch_spans):
                    for problem in chunk.problems:
                        totals.skipped += problem.count
                        report(problem)
                    if chunk.spans:
                        read += len(chunk.spans)
                        done = _deliver_storable(deliver, chunk.spans, path, report)
                        totals.saw(chunk.spans)
                        totals.kept += done.kept
                        totals.skipped += len(chunk.spans) - done.kept
                        if totals.inserted is not None and done.inserted is not None:
                            totals.inserted += done.inserted
                        else:
                            totals.inserted = None
                        for message in done.refusals:
                            report(f"{path}: refused by the collector: {message}")
                    progress.update(task, completed=chunk.position)
            except InputError as exc:  # the file cannot be opened or decompressed
                totals.unreadable += 1
                console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
            else:
                if not read:  # nothing here was a span: say what a span file is
                    totals.unreadable += 1
                    console.print(
                        f"{path}: no span could be read from it; expected {EXPECTED_FORMATS}",
                        markup=False,
                        highlight=False,
                        soft_wrap=True,
                    )
            if shown > _SHOWN_PROBLEMS:
                console.print(
                    f"{path}: {shown - _SHOWN_PROBLEMS} more problems not shown",
                    markup=False,
                    soft_wrap=True,
                )
    return totals


def _deliver_storable(
    deliver: Deliver, spans: Sequence[Span], path: str, report: Callable[[str], None]
) -> Delivered:
    """Deliver ``spans``; if the store refuses the batch, each span alone, skipping the bad.

    The decoders refuse what a store cannot hold, so this is the fallback for a store
    stricter than they know: one refused span costs itself, never its batch or file.
    """
    try:
        return deliver(spans)
    except InputError:
        pass
    kept = 0
    inserted: int | None = 0
    refusals: list[str] = []
    for span in spans:
        try:
            done = deliver([span])
        except InputError as exc:
            report(f"{path}: span {span.trace_id}/{span.span_id} skipped: {exc}")
            continue
        kept += done.kept
        inserted = None if inserted is None or done.inserted is None else inserted + done.inserted
        refusals.extend(done.refusals)
    return Delivered(kept, inserted, tuple(refusals))


def register(subparsers: Any) -> None:
    """Add the ``import`` sub-command."""
    parser = subparsers.add_parser(
        "import",
        help="import span files (OTLP JSON/protobuf, Jaeger JSON) into the store",
        description=(
            "Import span files: OTLP JSON lines (the OpenTelemetry Collector's file "
            "exporter), OTLP JSON, OTLP protobuf (length-delimited or one message), "
            "Jaeger JSON (the UI's download or the API's answer) and Tempo JSON "
            '(/api/traces: {"batches": [...]}), plain or gzip-compressed, detected from '
            "the content. Malformed lines and spans are reported with file and line and "
            "skipped; everything valid is kept. Exit status: 0 all imported; 1 something "
            "skipped, or a file held no span; 2 nothing imported (a missing file, no file "
            "holding a span, a bad store URL), and then no store is created. An SQLite URL's "
            "three slashes are relative (sqlite:///data/x.db), four absolute."
        ),
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="span files to import")
    parser.add_argument(
        "--store",
        default=os.environ.get(STORE_ENV, DEFAULT_STORE),
        help=f"store URL (%(default)s; env {STORE_ENV})",
    )
    parser.add_argument(
        "--endpoint",
        help="send to a running 'tracebraid serve' at this URL instead of the store",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV) or None,
        help=f"bearer token for --endpoint (env {TOKEN_ENV})",
    )
    parser.add_argument(
        "--batch-spans", type=int, default=2000, help="spans per write or request (%(default)s)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """The ``import`` handler: 0 all imported, 1 something skipped, 2 could not run."""
    console = Console(stderr=True)
    try:
        _all_exist(args.files)
        deliver, close = _destination(args)
    except TracebraidError as exc:
        console.print(f"tracebraid import: {exc}", markup=False, highlight=False, soft_wrap=True)
        return 2
    try:
        totals = import_files(
            args.files, deliver, console=console, batch_spans=max(1, args.batch_spans)
        )
    except TracebraidError as exc:
        console.print(f"tracebraid import: {exc}", markup=False, highlight=False, soft_wrap=True)
        return 2
    finally:
        close()
    where = args.endpoint or args.store
    new = (
        f"{totals.inserted:,} new, {totals.kept - totals.inserted:,} already there"
        if totals.inserted is not None
        else "accepted by the collector"
    )
    if not totals.kept and not args.endpoint and (totals.unreadable or totals.skipped):
        print(f"nothing imported into {where}", file=sys.stderr)
        return 2
    print(
        f"imported {totals.kept:,} spans from {totals.files} file(s) into {where} ({new});"
        f" {totals.skipped:,} skipped",
        file=sys.stderr,
    )
    if totals.workflows:
        names = list(totals.workflows)
        more = " and more" if len(names) > _NAMED_WORKFLOWS else ""
        print(
            f"workflows: {', '.join(names[:_NAMED_WORKFLOWS])}{more}"
            f" (then: tracebraid show {names[0]}"
            + ("" if args.endpoint else f" --store {args.store}")
            + ")",
            file=sys.stderr,
        )
    if not totals.kept and (totals.unreadable or totals.skipped):
        return 2
    return 1 if totals.skipped or totals.unreadable else 0


def _all_exist(paths: Sequence[str]) -> None:
    """Stop before anything is written when a file is missing: a typo, not a partial import."""
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise ConfigurationError(
            f"no such file: {', '.join(missing)}; nothing imported (expected {EXPECTED_FORMATS})"
        )


def _destination(args: argparse.Namespace) -> tuple[Deliver, Callable[[], None]]:
    if args.endpoint:
        sender = OtlpHttpSender(args.endpoint, token=args.token)

        def post(spans: Sequence[Span]) -> Delivered:
            result = sender.send(spans)
            return Delivered(result.accepted, None, tuple(result.messages))

        return post, sender.close
    from tracebraid.store import SpanStore, open_store

    opened: list[SpanStore] = []
    if "://" in args.store and not args.store.lower().startswith("sqlite:"):
        opened.append(open_store(args.store))  # a server: a bad URL is said at once

    def write(spans: Sequence[Span]) -> Delivered:
        if not opened:  # created when the first span arrives: a failed import leaves none
            opened.append(open_store(args.store))
        result = opened[0].write(spans)
        return Delivered(result.inserted + result.duplicates, result.inserted)

    def close() -> None:
        for store in opened:
            store.close()

    return write, close


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
