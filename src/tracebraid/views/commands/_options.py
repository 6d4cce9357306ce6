"""What every operator command shares: its options, the workflows they name, its console,
its errors and exit codes.

A command registers itself with ``add_command``, naming the options it takes as a
tuple of ``add_*`` functions (each adds one option, or one pair that belongs
together), and loads what they name with ``load_workflow`` or ``load_recent``.

Example::

    def register(subparsers: Any) -> None:
        add_command(subparsers, "latency", run, __doc__, help="where the time went",
                    options=(add_key, add_store, add_json))
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rich.console import Console, RenderableType

from tracebraid.errors import InputError, TracebraidError
from tracebraid.views.cli import Command
from tracebraid.views.documents import to_json
from tracebraid.views.source import (
    SQLITE_URLS,
    STORE_ENV,
    LoadedWorkflow,
    default_store,
    load,
    program,
    read_topology,
    reading,
    recent,
    require_key,
)

__all__ = [
    "EXIT_FINDINGS",
    "EXIT_OK",
    "EXIT_USAGE",
    "AddOption",
    "add_command",
    "add_ids",
    "add_json",
    "add_key",
    "add_key_or_recent",
    "add_store",
    "add_topology",
    "add_window",
    "console",
    "describe",
    "guarded",
    "load_recent",
    "load_workflow",
    "positive_int",
    "print_json",
    "program",
    "reading",
    "show",
    "store_url",
]

EXIT_OK = 0
EXIT_FINDINGS = 1
"""Nothing matches the key, or the answer holds findings that need attention."""
EXIT_USAGE = 2
"""A bad option, store URL or file: what argparse itself exits with."""

_PIPE_WIDTH = 120

_KEY_METAVAR = "TRACE_OR_CORRELATION"

AddOption = Callable[[argparse.ArgumentParser], None]
"""Adds one option (or a pair that belongs together) to a command's parser."""


def add_command(
    subparsers: Any,
    name: str,
    handler: Command,
    doc: str | None,
    *,
    help: str,
    options: Sequence[AddOption],
) -> None:
    """Add sub-command ``name``: ``help`` in the command list, ``--help`` from its module
    docstring ``doc`` (see ``describe``), ``options`` in the order ``--help`` lists them."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help, description=describe(doc)
    )
    for add_option in options:
        add_option(parser)
    parser.set_defaults(handler=handler)


def add_store(parser: argparse.ArgumentParser, *, default: str | None = None) -> None:
    parser.add_argument(
        "--store",
        metavar="URL",
        default=default,
        help=f"span store (default: ${STORE_ENV} or {default_store()}); {SQLITE_URLS}"
        if default is None
        else f"span store (default: {default}); {SQLITE_URLS}",
    )


def add_key(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("key", metavar=_KEY_METAVAR, help="trace, correlation or event ID")


def add_key_or_recent(parser: argparse.ArgumentParser) -> None:
    """The key, for a command that looks at the recent workflows without one."""
    parser.add_argument(
        "key", nargs="?", metavar=_KEY_METAVAR, help="one workflow (default: recent)"
    )


def add_window(parser: argparse.ArgumentParser) -> None:
    """``--since`` and ``--limit``: which recent workflows to look at."""
    parser.add_argument(
        "--since",
        metavar="WHEN",
        help="only traces started since then: a duration ago (10m, 2h) or an ISO 8601 time "
        "(2026-01-31T12:00:00Z)",
    )
    parser.add_argument(
        "--limit",
        type=positive_int,
        default=50,
        metavar="N",
        help="look at the N most recent traces (50)",
    )


def positive_int(text: str) -> int:
    """An option's value as a whole number of at least 1, or argparse's usage error (exit 2).

    >>> positive_int("3")
    3
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_topology(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--topology",
        metavar="FILE",
        help="YAML of expected consumers per event (and deadlines); "
        "without it they are learned from the store's recent history",
    )


def add_ids(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ids",
        action="store_true",
        help="show every identity: trace, span, event, correlation and causation IDs",
    )


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the versioned JSON document instead (see docs/json-schema.md)",
    )


def describe(doc: str | None) -> str | None:
    """A command's ``--help`` description: its module docstring's second paragraph."""
    if not doc or "\n\n" not in doc:
        return None
    return doc.split("\n\n")[1].replace("``", "")


def console() -> Console:
    """stdout as rich sees it; piped output is 120 columns wide unless COLUMNS says."""
    out = Console()
    if not out.is_terminal and "COLUMNS" not in os.environ:
        return Console(width=_PIPE_WIDTH)
    return out


def show(renderable: RenderableType) -> None:
    """Print to stdout: fitted to a terminal; piped, every line whole (no hard wrap, and
    no padding, so no trailing spaces)."""
    out = console()
    out.print(renderable, soft_wrap=not out.is_terminal)


def print_json(document: Mapping[str, Any]) -> None:
    sys.stdout.write(to_json(document) + "\n")
    sys.stdout.flush()


def store_url(args: argparse.Namespace) -> str:
    return str(args.store) if args.store else default_store()


def load_workflow(
    args: argparse.Namespace, *, topology: str | None = None, learn: bool = True
) -> LoadedWorkflow:
    """The workflow ``args.key`` names, from ``--store``, analysed now with the
    ``topology`` file (its path) or, when ``learn``, the consumers the store's history
    expects. Raises ``UnknownKeyError`` when the key names nothing."""
    url = store_url(args)
    expected = read_topology(topology)
    with reading(url) as store:
        return load(require_key(args.key), store, url=url, topology=expected, learn=learn,
                    now_ns=time.time_ns())  # fmt: skip


def load_recent(
    args: argparse.Namespace, *, now_ns: int, since_ns: int | None, topology: str | None = None
) -> list[LoadedWorkflow]:
    """The workflows of the ``--limit`` most recent traces from ``--store``, started at
    ``since_ns`` or later, with the ``topology`` file (its path) or learned consumers."""
    url = store_url(args)
    expected = read_topology(topology)
    with reading(url) as store:
        return recent(store, now_ns=now_ns, topology=expected, since_ns=since_ns, limit=args.limit)


def guarded(command: str) -> Callable[[Command], Command]:
    """Turn tracebraid's errors into a one-line message on stderr and the right exit code."""

    def decorate(handler: Command) -> Command:
        @functools.wraps(handler)
        def run(args: argparse.Namespace) -> int:
            try:
                return handler(args)
            except InputError as error:
                # UnknownKeyError, or an ID well-formed but not in the workflow: "not found".
                code, message = EXIT_FINDINGS, str(error)
            except TracebraidError as error:  # ConfigurationError and the rest: usage
                code, message = EXIT_USAGE, str(error)
            print(f"tracebraid {command}: {message}", file=sys.stderr)
            return code

        return run

    return decorate
