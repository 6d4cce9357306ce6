"""``tracebraid show TRACE_OR_CORRELATION``: one workflow's causal tree.

Every branch with every attempt, pending and in-flight branches, stitched
deliveries, and the critical path marked (``◆``) and summed up in one line.

Example::

    $ tracebraid show order_441 --store sqlite:///tracebraid-demo.db
    $ tracebraid show 4bf92f3577b34da6a3ce929d0e0e4736 --ids
    $ tracebraid show order_441 --json | jq .summary
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from rich.text import Text

from tracebraid.views.commands._options import (
    EXIT_OK,
    add_ids,
    add_json,
    add_store,
    add_topology,
    describe,
    guarded,
    print_json,
    show,
    store_url,
)
from tracebraid.views.documents import workflow_document
from tracebraid.views.source import load, read_topology, reading, require_key
from tracebraid.views.tree import render_tree

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``show`` sub-command."""
    parser = subparsers.add_parser(
        "show",
        help="a workflow's causal tree: branches, attempts, pending work, critical path",
        description=describe(__doc__),
    )
    parser.add_argument(
        "key", metavar="TRACE_OR_CORRELATION", help="trace, correlation or event ID"
    )
    add_store(parser)
    add_topology(parser)
    add_ids(parser)
    add_json(parser)
    parser.set_defaults(handler=run)


@guarded("show")
def run(args: argparse.Namespace) -> int:
    """Print the tree (or ``tracebraid.workflow/v1``); 1 when the key names nothing."""
    url = store_url(args)
    topology = read_topology(args.topology)
    with reading(url) as store:
        loaded = load(require_key(args.key), store, url=url, topology=topology,
                      now_ns=time.time_ns())  # fmt: skip
    if args.json:
        print_json(workflow_document(loaded.analysis, key=loaded.key))
        return EXIT_OK
    show(render_tree(loaded.analysis, ids=args.ids))
    if loaded.truncated:
        show(Text("note: the workflow spans more traces than were loaded", style="yellow"))
    return EXIT_OK
