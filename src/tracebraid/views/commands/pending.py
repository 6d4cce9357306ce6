"""``tracebraid pending``: which branches are still pending, in flight, or lost?

Looks at the workflows of the most recent traces. A branch is expected when the
topology file declares its consumer for the event, when history shows that
consumer took such events before (no topology), or when it started: it is
pending until it succeeds, and lost once its deadline has passed.

Example::

    $ tracebraid pending --store sqlite:///tracebraid.db --since 1h
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
    add_command,
    add_json,
    add_store,
    add_topology,
    add_window,
    guarded,
    load_recent,
    print_json,
    show,
)
from tracebraid.views.recent import pending_document
from tracebraid.views.reports import render_pending
from tracebraid.views.source import parse_since

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``pending`` sub-command."""
    add_command(
        subparsers,
        "pending",
        run,
        __doc__,
        help="pending, in-flight and lost branches across recent workflows",
        options=(add_store, add_topology, add_window, add_json),
    )


@guarded("pending")
def run(args: argparse.Namespace) -> int:
    """Print the pending branches (or ``tracebraid.pending/v1``); 1 when any is lost."""
    now = time.time_ns()
    since = parse_since(args.since, now_ns=now)
    loaded = load_recent(args, now_ns=now, since_ns=since, topology=args.topology)
    if args.json:
        print_json(pending_document(loaded, now_ns=now, since_ns=since))
    else:
        show(render_pending(loaded, now_ns=now))
    lost = any(p.state is PendingState.LOST for w in loaded for p in w.analysis.pending)
    return EXIT_FINDINGS if lost else EXIT_OK
