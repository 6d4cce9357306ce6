"""``tracebraid retries [KEY]``: which steps retried, how often, and why?

Per workflow, every branch that needed more than one attempt, processed an event
twice (a duplicate), was dead-lettered or has not succeeded, with its error
types; duplicate publishes and dead letters; then totals per consumer. Without a
KEY it looks at the workflows of the most recent traces.

Example::

    $ tracebraid retries --store sqlite:///tracebraid-demo.db
    $ tracebraid retries order_441 --json
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from tracebraid.views.commands._options import (
    EXIT_FINDINGS,
    EXIT_OK,
    add_json,
    add_store,
    describe,
    guarded,
    print_json,
    show,
    store_url,
)
from tracebraid.views.commands.pending import add_window
from tracebraid.views.recent import needs_attention, retries_document
from tracebraid.views.reports import render_retries
from tracebraid.views.source import load, parse_since, reading, recent, require_key

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``retries`` sub-command."""
    parser = subparsers.add_parser(
        "retries",
        help="retried steps, duplicates, duplicate publishes and dead letters",
        description=describe(__doc__),
    )
    parser.add_argument(
        "key", nargs="?", metavar="TRACE_OR_CORRELATION", help="one workflow (default: recent)"
    )
    add_store(parser)
    add_window(parser)
    add_json(parser)
    parser.set_defaults(handler=run)


@guarded("retries")
def run(args: argparse.Namespace) -> int:
    """Print the retry report (or ``tracebraid.retries/v1``); 1 on a dead letter or a
    branch that never succeeded."""
    url = store_url(args)
    now = time.time_ns()
    with reading(url) as store:
        if args.key is not None:
            loaded = [load(require_key(args.key), store, url=url, now_ns=now, learn=False)]
        else:
            since = parse_since(args.since, now_ns=now)
            loaded = recent(store, now_ns=now, topology=None, since_ns=since, limit=args.limit)
    if args.json:
        print_json(retries_document(loaded))
    else:
        show(render_retries(loaded))
    return EXIT_FINDINGS if needs_attention(loaded) else EXIT_OK
