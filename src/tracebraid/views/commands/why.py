"""``tracebraid why EVENT_OR_SPAN``: what caused this? The chain back to the user action.

Give an event ID (``messaging.message.id``), a span ID, or ``TRACE_ID:SPAN_ID``.
The chain follows parents, span links and deliveries, across traces: a hop that
had to be stitched by event ID (its trace context was lost) is marked ``⚠``.

Example::

    $ tracebraid why evt_8823 --store sqlite:///tracebraid.db
    $ tracebraid why 4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7 --json
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from tracebraid.analysis import why
from tracebraid.model import is_valid_span_id
from tracebraid.views.commands._options import (
    EXIT_OK,
    add_command,
    add_ids,
    add_json,
    add_store,
    guarded,
    print_json,
    show,
    store_url,
)
from tracebraid.views.documents import why_document
from tracebraid.views.reports import render_chain
from tracebraid.views.source import (
    SPAN_SEARCH_TRACES,
    UnknownKeyError,
    load,
    reading,
    require_key,
    trace_of_span,
)

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``why`` sub-command."""
    add_command(
        subparsers,
        "why",
        run,
        __doc__,
        help="the causal chain from the user action to an event or span",
        options=(_add_target, add_store, add_ids, add_json),
    )


def _add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target", metavar="EVENT_OR_SPAN", help="event ID, span ID, or TRACE_ID:SPAN_ID"
    )


@guarded("why")
def run(args: argparse.Namespace) -> int:
    """Print the chain (or ``tracebraid.why/v1``); 1 when the target is not in the store."""
    url = store_url(args)
    target = require_key(args.target)
    trace_id, colon, _ = target.rpartition(":")
    key = trace_id if colon else target
    with reading(url) as store:
        if not colon and is_valid_span_id(target):
            found = trace_of_span(store, target)
            if found is None:
                raise UnknownKeyError(
                    f"no span {target!r} among the {SPAN_SEARCH_TRACES} most recent traces of "
                    f"store {url}; give it as TRACE_ID:SPAN_ID, or give an event ID"
                )
            key = found
        loaded = load(key, store, url=url, now_ns=time.time_ns(), learn=False)
    if not colon and key == target:
        target = loaded.key  # a shortened event ID, resolved by ``load`` to the full one
    chain = why(loaded.analysis, target)
    if args.json:
        print_json(why_document(chain, key=loaded.key))
    else:
        show(render_chain(chain, ids=args.ids))
    return EXIT_OK
