"""``tracebraid pending``: which branches are still pending, in flight, or lost?

Looks at the workflows of the most recent traces. A branch is expected when the
topology file declares its consumer for the event, when history shows that
consumer took such events before (no topology), or when it started: it is
pending until it succeeds, and lost once its deadline has passed.

Example::

    $ tracebraid pending --store sqlite:///tracebraid-demo.db --since 1h
    $ tracebraid pending --topology topology.yaml --json
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from tracebraid.analysis import PendingState
from tracebraid.views.commands._options import (
    EXIT_FINDINGS,
    EXIT_OK,
    add_json,
    add_store,
    add_topology,
    describe,
    guarded,
    print_json,
    show,
    store_url,
)
from tracebraid.views.recent import pending_document
from tracebraid.views.reports import render_pending
from tracebraid.views.source import parse_since, read_topology, reading, recent

__all__ = ["add_window", "register", "run"]


def add_window(parser: argparse.ArgumentParser) -> None:
    """``--since`` and ``--limit``: which recent workflows to look at."""
    parser.add_argument(
        "--since", metavar="DURATION", help="only traces started this long ago or later (10m, 2h)"
    )
    parser.add_argument(
        "--limit", type=int, default=50, metavar="N", help="look at the N most recent traces (50)"
    )


def register(subparsers: Any) -> None:
    """Add the ``pending`` sub-command."""
    parser = subparsers.add_parser(
        "pending",
        help="pending, in-flight and lost branches across recent workflows",
        description=describe(__doc__),
    )
    add_store(parser)
    add_topology(parser)
    add_window(parser)
    add_json(parser)
    parser.set_defaults(handler=run)


@guarded("pending")
def run(args: argparse.Namespace) -> int:
    """Print the pending branches (or ``tracebraid.pending/v1``); 1 when any is lost."""
    url = store_url(args)
    now = time.time_ns()
    since = parse_since(args.since, now_ns=now)
    topology = read_topology(args.topology)
    with reading(url) as store:
        loaded = recent(store, now_ns=now, topology=topology, since_ns=since, limit=args.limit)
    if args.json:
        print_json(pending_document(loaded, now_ns=now, since_ns=since))
    else:
        show(render_pending(loaded, now_ns=now))
    lost = any(p.state is PendingState.LOST for w in loaded for p in w.analysis.pending)
    return EXIT_FINDINGS if lost else EXIT_OK
