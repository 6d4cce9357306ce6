"""The ``tracebraid`` command: one sub-command per question an operator asks.

Each sub-command lives in its own module that exposes ``register(subparsers)``;
``register`` adds a parser and sets ``handler`` (a ``Command``) as its default.
The modules are listed in ``COMMAND_MODULES``; they import only the core
dependencies at module level, and an optional extra (a broker client, chDB) only
inside the handler that needs it, so a missing extra breaks that command alone.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Sequence

from tracebraid import __version__

__all__ = ["COMMAND_MODULES", "Command", "main"]

Command = Callable[[argparse.Namespace], int]
"""A sub-command's handler: parsed arguments in, process exit code out."""

COMMAND_MODULES: tuple[str, ...] = (
    "tracebraid.collector.server",
    "tracebraid.collector.import_cli",
    "tracebraid.store.migrate_cli",
    "tracebraid.views.commands.demo",
    "tracebraid.views.commands.listing",
    "tracebraid.views.commands.show",
    "tracebraid.views.commands.why",
    "tracebraid.views.commands.pending",
    "tracebraid.views.commands.retries",
    "tracebraid.views.commands.latency",
    "tracebraid.views.commands.export",
    "tracebraid.views.lint_cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tracebraid",
        description="Causal tracing for asynchronous, event-driven systems.",
    )
    parser.add_argument("--version", action="version", version=f"tracebraid {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Command = args.handler
    return handler(args)
