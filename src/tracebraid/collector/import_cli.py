"""``tracebraid import FILE...``: span files into the store, or to a remote ``serve``.

Formats are detected from the content (``files``): OTLP JSON lines, OTLP JSON,
OTLP protobuf, Jaeger JSON, plain or gzip-compressed. A malformed line or span is
reported with its file and line and skipped; everything valid is kept. Imports are
idempotent: importing a file twice stores nothing twice.

Example::

    $ tracebraid import traces.jsonl jaeger-export.json --store sqlite:///spans.db
    $ tracebraid import traces.jsonl --endpoint http://collector:4318 --token "$TOKEN"
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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

from tracebraid.collector.files import FileProblem, read_span_file
from tracebraid.collector.remote import OtlpHttpSender
from tracebraid.collector.server import DEFAULT_STORE, STORE_ENV, TOKEN_ENV
from tracebraid.errors import InputError, TracebraidError
from tracebraid.model import Span

__all__ = ["Deliver", "Delivered", "ImportTotals", "import_files", "register"]

_PROGRESS_MIN_BYTES = 1 << 20  # smaller files are done before a bar would help
_SHOWN_PROBLEMS = 50  # per file; the rest are counted


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
                        done = _deliver_storable(deliver, chunk.spans, path, report)
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
            "exporter), OTLP JSON, OTLP protobuf (length-delimited or one message), and "
            "Jaeger JSON (the UI's download), plain or gzip-compressed, detected from "
            "the content. Malformed lines and spans are reported with file and line and "
            "skipped; everything valid is kept. Exit status 1 when anything was skipped."
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
    print(
        f"imported {totals.kept:,} spans from {totals.files} file(s) into {where} ({new});"
        f" {totals.skipped:,} skipped",
        file=sys.stderr,
    )
    return 1 if totals.skipped or totals.unreadable else 0


def _destination(args: argparse.Namespace) -> tuple[Deliver, Callable[[], None]]:
    if args.endpoint:
        sender = OtlpHttpSender(args.endpoint, token=args.token)

        def post(spans: Sequence[Span]) -> Delivered:
            result = sender.send(spans)
            return Delivered(result.accepted, None, tuple(result.messages))

        return post, sender.close
    from tracebraid.store import open_store

    store = open_store(args.store)

    def write(spans: Sequence[Span]) -> Delivered:
        result = store.write(spans)
        return Delivered(result.inserted + result.duplicates, result.inserted)

    return write, store.close


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
