"""``tracebraid latency TRACE_OR_CORRELATION``: where the time went in one workflow.

The critical path in one line, its segments ranked (processing, queue wait,
back-off, failed attempts), lagging consumers, and every delivery's queue wait,
processing time and back-off.

Example::

    $ tracebraid latency order_441 --store sqlite:///tracebraid.db
"""

from __future__ import annotations

import argparse
from typing import Any

from tracebraid.analysis import latency
from tracebraid.views.commands._options import (
    EXIT_OK,
    add_command,
    add_json,
    add_key,
    add_store,
    guarded,
    load_workflow,
    print_json,
    show,
)
from tracebraid.views.documents import latency_document
from tracebraid.views.reports import render_latency

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``latency`` sub-command."""
    add_command(
        subparsers,
        "latency",
        run,
        __doc__,
        help="queue wait, processing and back-off per delivery; the critical path ranked",
        options=(add_key, add_store, add_json),
    )


@guarded("latency")
def run(args: argparse.Namespace) -> int:
    """Print the latency report (or ``tracebraid.latency/v1``); 1 when the key names nothing."""
    loaded = load_workflow(args, learn=False)
    report = latency(loaded.analysis)
    if args.json:
        print_json(latency_document(report, key=loaded.key))
    else:
        show(render_latency(report, loaded.analysis))
    return EXIT_OK
