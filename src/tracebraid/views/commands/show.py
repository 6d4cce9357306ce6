"""``tracebraid show TRACE_OR_CORRELATION``: one workflow's causal tree.

Every branch with every attempt, pending and in-flight branches, stitched
deliveries, and the critical path marked (``◆``) and summed up in one line.

Example::

    $ tracebraid show order_441 --store sqlite:///tracebraid.db
    $ tracebraid show 4bf92f3577b34da6a3ce929d0e0e4736 --ids
    $ tracebraid show order_441 --summary    # healthy branches folded
    $ tracebraid show order_441 --json | jq .summary
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.text import Text

from tracebraid.views.commands._options import (
    EXIT_OK,
    add_command,
    add_ids,
    add_json,
    add_key,
    add_store,
    add_topology,
    guarded,
    load_workflow,
    print_json,
    show,
)
from tracebraid.views.documents import workflow_document
from tracebraid.views.tree import SUMMARY_BRANCHES, render_tree

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``show`` sub-command."""
    add_command(
        subparsers,
        "show",
        run,
        __doc__,
        help="a workflow's causal tree: branches, attempts, pending work, critical path",
        options=(add_key, add_store, add_topology, add_ids, _add_summary, add_json),
    )


def _add_summary(parser: argparse.ArgumentParser) -> None:
    folding = parser.add_mutually_exclusive_group()
    folding.add_argument(
        "--summary",
        action="store_const",
        const=True,
        dest="summary",
        help="fold each event's healthy branches into one line (the default past "
        f"{SUMMARY_BRANCHES} branches)",
    )
    folding.add_argument(
        "--full",
        action="store_const",
        const=False,
        dest="summary",
        help="every branch, however many",
    )


@guarded("show")
def run(args: argparse.Namespace) -> int:
    """Print the tree (or ``tracebraid.workflow/v1``); 1 when the key names nothing."""
    loaded = load_workflow(args, topology=args.topology)
    if args.json:
        print_json(workflow_document(loaded.analysis, key=loaded.key))
        return EXIT_OK
    show(render_tree(loaded.analysis, ids=args.ids, summary=args.summary))
    if loaded.truncated:
        show(Text("note: the workflow spans more traces than were loaded", style="yellow"))
    return EXIT_OK
