"""What every operator command shares: its options, its console, its errors and exit codes."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from rich.console import Console, RenderableType

from tracebraid.errors import ConfigurationError, InputError, TracebraidError
from tracebraid.views.documents import to_json
from tracebraid.views.source import STORE_ENV, UnknownKeyError, default_store

__all__ = [
    "EXIT_FINDINGS",
    "EXIT_OK",
    "EXIT_USAGE",
    "add_ids",
    "add_json",
    "add_key",
    "add_store",
    "add_topology",
    "console",
    "describe",
    "guarded",
    "print_json",
    "show",
    "store_url",
]

EXIT_OK = 0
EXIT_FINDINGS = 1
"""Nothing matches the key, or the answer holds findings that need attention."""
EXIT_USAGE = 2
"""A bad option, store URL or file: what argparse itself exits with."""

_PIPE_WIDTH = 120

Handler = Callable[[argparse.Namespace], int]


def add_store(parser: argparse.ArgumentParser, *, default: str | None = None) -> None:
    parser.add_argument(
        "--store",
        metavar="URL",
        default=default,
        help=f"span store, e.g. sqlite:///spans.db (default: ${STORE_ENV} or {default_store()})"
        if default is None
        else f"span store (default: {default})",
    )


def add_key(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "key", metavar="TRACE_OR_CORRELATION", help="a trace ID, correlation ID or event ID"
    )


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
    console().print(renderable)


def print_json(document: Mapping[str, Any]) -> None:
    sys.stdout.write(to_json(document) + "\n")
    sys.stdout.flush()


def store_url(args: argparse.Namespace) -> str:
    return str(args.store) if args.store else default_store()


def guarded(command: str) -> Callable[[Handler], Handler]:
    """Turn tracebraid's errors into a one-line message on stderr and the right exit code."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def run(args: argparse.Namespace) -> int:
            try:
                return handler(args)
            except UnknownKeyError as error:
                code, message = EXIT_FINDINGS, str(error)
            except InputError as error:
                # The ID was well-formed but is not in the workflow: "not found" as well.
                code, message = EXIT_FINDINGS, str(error)
            except (ConfigurationError, TracebraidError) as error:
                code, message = EXIT_USAGE, str(error)
            print(f"tracebraid {command}: {message}", file=sys.stderr)
            return code

        return run

    return decorate
