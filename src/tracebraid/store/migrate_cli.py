"""``tracebraid migrate --store URL``: add tracebraid's tables to a ClickHouse store.

The only command that changes a ClickHouse schema: opening a store never adds
tracebraid's tables by itself. Each step is printed with what it did; a second
run does nothing. ``--dry-run`` prints the steps without running them. An SQLite
store is created complete, so there is nothing to migrate and the command says so.

Example::

    $ tracebraid migrate --store clickhouse://admin@ch1:8123/otel
    identity table: created `otel`.`otel_traces_tracebraid_ids`, backfilled
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tracebraid.errors import TracebraidError

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``migrate`` sub-command."""
    parser = subparsers.add_parser(
        "migrate",
        help="add tracebraid's look-up tables to a ClickHouse store",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument(
        "--store",
        required=True,
        metavar="URL",
        help="clickhouse://user:pass@host:8123/db or chdb:///path (?table=otel_traces)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would be done, change nothing"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Migrate ``args.store``; exit 0 when done (or nothing to do), 2 on a bad store."""
    url: str = args.store
    scheme = url.partition("://")[0].lower()
    if scheme not in ("clickhouse", "chdb"):
        print(f"{url}: SQLite stores are created complete; nothing to migrate")
        return 0
    from tracebraid.store.clickhouse import migrate_url

    try:
        steps = migrate_url(url, dry_run=args.dry_run)
    except TracebraidError as error:
        print(f"tracebraid migrate: {error}", file=sys.stderr)
        return 2
    for step in steps:
        state = step.detail if step.applied else f"already there ({step.detail})"
        print(f"{step.name}: {state}")
    if not any(step.applied for step in steps):
        print("nothing to do: the store has every table tracebraid uses")
    return 0
