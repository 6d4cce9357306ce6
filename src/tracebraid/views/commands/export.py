"""``tracebraid export TRACE_OR_CORRELATION --mermaid``: the causal tree as a Mermaid flowchart.

Business step names as nodes, retry counts on nodes, pending branches dashed,
stitched edges marked, the critical path bold: paste it into a design review or
a Markdown file (GitHub renders ```mermaid blocks).

Example::

    $ tracebraid export order_441 --mermaid -o order_441.mmd
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tracebraid.errors import ConfigurationError
from tracebraid.views.commands._options import (
    EXIT_OK,
    add_command,
    add_json,
    add_key,
    add_store,
    add_topology,
    guarded,
    load_workflow,
    print_json,
)
from tracebraid.views.documents import mermaid_document
from tracebraid.views.mermaid import to_mermaid

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``export`` sub-command."""
    add_command(
        subparsers,
        "export",
        run,
        __doc__,
        help="export a workflow's causal tree (Mermaid flowchart)",
        options=(add_key, _add_format, add_store, add_topology, add_json),
    )


def _add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mermaid",
        dest="format",
        action="store_const",
        const="mermaid",
        default="mermaid",
        help="Mermaid flowchart text (the default, and for now the only format)",
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")


@guarded("export")
def run(args: argparse.Namespace) -> int:
    """Write the flowchart (or ``tracebraid.mermaid/v1``); 1 when the key names nothing."""
    loaded = load_workflow(args, topology=args.topology)
    text = to_mermaid(loaded.analysis)
    if args.json:
        print_json(mermaid_document(text, key=loaded.key))
        return EXIT_OK
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as error:
        raise ConfigurationError(
            f"cannot write {args.output!r}: {error.strerror or error}; check the -o path"
        ) from error
    print(f"wrote {args.output} ({len(text.splitlines())} lines of Mermaid)", file=sys.stderr)
    return EXIT_OK
