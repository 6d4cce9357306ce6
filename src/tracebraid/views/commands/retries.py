"""``tracebraid retries [KEY]``: which steps retried, how often, and why?

Per workflow, every branch that needed more than one attempt, processed an event
twice (a duplicate), was dead-lettered or has not succeeded, with its error
types; duplicate publishes and dead letters; then totals per consumer. Without a
KEY it looks at the workflows of the most recent traces.

Example::

    $ tracebraid retries --store sqlite:///tracebraid.db
    $ tracebraid retries order_441 --json
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from tracebraid.views.commands._options import (
    EXIT_FINDINGS,
    EXIT_OK,
    add_command,
    add_json,
    add_key_or_recent,
    add_store,
    add_window,
    guarded,
    load_recent,
    load_workflow,
    print_json,
    show,
)
from tracebraid.views.recent import needs_attention, retries_document
from tracebraid.views.reports import render_retries
from tracebraid.views.source import parse_since

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``retries`` sub-command."""
    add_command(
        subparsers,
        "retries",
        run,
        __doc__,
        help="retried steps, duplicates, duplicate publishes and dead letters",
        options=(add_key_or_recent, add_store, add_window, add_json),
    )


@guarded("retries")
def run(args: argparse.Namespace) -> int:
    """Print the retry report (or ``tracebraid.retries/v1``); 1 on a dead letter or a
    branch that never succeeded."""
    if args.key is not None:
        loaded = [load_workflow(args, learn=False)]
    else:
        now = time.time_ns()
        since = parse_since(args.since, now_ns=now)
        loaded = load_recent(args, now_ns=now, since_ns=since)
    if args.json:
        print_json(retries_document(loaded))
    else:
        show(render_retries(loaded))
    return EXIT_FINDINGS if needs_attention(loaded) else EXIT_OK
