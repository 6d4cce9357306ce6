"""``tracebraid latency TRACE_OR_CORRELATION``: where the time went in one workflow.

The critical path in one line, its segments ranked (processing, queue wait,
back-off, failed attempts), lagging consumers, and every delivery's queue wait,
processing time and back-off.

Example::

    $ tracebraid latency order_441 --store sqlite:///tracebraid-demo.db
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from tracebraid.analysis import latency
from tracebraid.views.commands._options import (
    EXIT_OK,
    add_json,
    add_store,
    describe,
    guarded,
    print_json,
    show,
    store_url,
)
from tracebraid.views.documents import latency_document
from tracebraid.views.reports import render_latency
from tracebraid.views.source import load, reading, require_key

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``latency`` sub-command."""
    parser = subparsers.add_parser(
        "latency",
        help="queue wait, processing and back-off per delivery; the critical path ranked",
        description=describe(__doc__),
    )
    parser.add_argument(
        "key", metavar="TRACE_OR_CORRELATION", help="trace, correlation or event ID"
    )
    add_store(parser)
    add_json(parser)
    parser.set_defaults(handler=run)


@guarded("latency")
def run(args: argparse.Namespace) -> int:
    """Print the latency report (or ``tracebraid.latency/v1``); 1 when the key names nothing."""
    url = store_url(args)
    with reading(url) as store:
        loaded = load(require_key(args.key), store, url=url, now_ns=time.time_ns(), learn=False)
    report = latency(loaded.analysis)
    if args.json:
        print_json(latency_document(report, key=loaded.key))
    else:
        show(render_latency(report, loaded.analysis))
    return EXIT_OK
