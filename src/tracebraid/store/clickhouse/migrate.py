"""``tracebraid migrate``: add what tracebraid reads fast with, and nothing silently.

Steps, each skipped when already done:

1. the exporter's own tables, when the database has none (as the Collector would);
2. the exporter's ``otel_traces_trace_id_ts`` lookup and its view, when an older or
   hand-made schema lacks them, backfilled from the rows already stored;
3. tracebraid's identity table (correlation, event and causation IDs, linked
   spans -> span) and its view, backfilled likewise;
4. an identity view from before the messaging vocabulary (message IDs only, read on
   every span) is replaced by one that reads every strong message identity, and the
   message identities of the rows already stored are indexed again.

Only new tables and views: no ``ALTER`` and no mutation touches ``otel_traces``,
so the Collector keeps writing while this runs. A row inserted during a backfill
may be indexed twice; look-ups de-duplicate, so that costs nothing.

Example::

    >>> from tracebraid.store.clickhouse.backends import ChdbBackend
    >>> backend = ChdbBackend.open(None)
    >>> [step.name for step in migrate(backend, TableNames("doc_migrate"), dry_run=True)]
    ['exporter tables', 'trace-id lookup', 'identity table']
    >>> backend.close()
"""

from __future__ import annotations

from dataclasses import dataclass

from tracebraid.store.clickhouse.backends import Backend
from tracebraid.store.clickhouse.schema import (
    FULL_TEXT_SEARCH_SINCE,
    TableNames,
    addition_ddl,
    exporter_ddl,
    identity_select,
    lookup_ddl,
)
from tracebraid.store.clickhouse.status import read_status, server_version
from tracebraid.store.clickhouse.url import parse_url

__all__ = ["MigrationStep", "create_exporter_tables", "migrate", "migrate_url"]


@dataclass(frozen=True, slots=True)
class MigrationStep:
    """One step of a migration: what, whether it changed anything, and how."""

    name: str
    applied: bool
    detail: str


def migrate(
    backend: Backend, names: TableNames, *, dry_run: bool = False, ttl_days: int | None = None
) -> list[MigrationStep]:
    """Bring ``names`` up to what tracebraid reads fast with; returns each step's outcome."""
    verb = "would create" if dry_run else "created"
    status = read_status(backend, names) if _database_exists(backend, names) else None
    steps: list[MigrationStep] = []

    if status is not None and status.traces:
        steps.append(MigrationStep("exporter tables", False, f"{names.traces} exists"))
        has_lookup = status.lookup
    else:
        if not dry_run:
            create_exporter_tables(backend, names, ttl_days=ttl_days)
        steps.append(
            MigrationStep("exporter tables", True, f"{verb} {names.traces} and its lookup")
        )
        has_lookup = True

    if has_lookup:
        steps.append(MigrationStep("trace-id lookup", False, f"{names.lookup} exists"))
    else:
        if not dry_run:
            for statement in lookup_ddl(names, ttl_days=ttl_days):
                backend.command(statement)
            backend.command(
                f"INSERT INTO {names.lookup} SELECT TraceId, min(toDateTime(Timestamp)), "
                f"max(toDateTime(Timestamp)) FROM {names.traces} WHERE TraceId != '' "
                "GROUP BY TraceId"
            )
        steps.append(MigrationStep("trace-id lookup", True, f"{verb} {names.lookup}, backfilled"))

    if status is not None and status.identities:
        steps.append(MigrationStep("identity table", False, f"{names.identities} exists"))
        steps.append(_upgrade_identity_view(backend, names, dry_run=dry_run))
    else:
        if not dry_run:
            for statement in addition_ddl(names, ttl_days=ttl_days):
                backend.command(statement)
            backend.command(f"INSERT INTO {names.identities} {identity_select(names)}")
        steps.append(
            MigrationStep("identity table", True, f"{verb} {names.identities}, backfilled")
        )
    return steps


_VOCABULARY_MARK = "'kafka:'"  # in the select of a view that reads every strong identity


def _upgrade_identity_view(backend: Backend, names: TableNames, *, dry_run: bool) -> MigrationStep:
    rows = backend.rows(
        "SELECT as_select FROM system.tables WHERE database = {db:String} AND name = {v:String}",
        {"db": names.database, "v": names.bare("_tracebraid_ids_mv")},
    )
    if rows and _VOCABULARY_MARK in str(rows[0][0]):
        return MigrationStep("identity view", False, "reads every strong message identity")
    if not dry_run:
        backend.command(f"DROP VIEW IF EXISTS {names.identities_view}")
        backend.command(addition_ddl(names)[1])
        # Rows stored meanwhile are indexed twice at worst: look-ups de-duplicate.
        backend.command(
            f"INSERT INTO {names.identities} SELECT * FROM ({identity_select(names)}) "
            "WHERE Kind IN ('event', 'causation')"
        )
    verb = "would replace" if dry_run else "replaced"
    return MigrationStep(
        "identity view", True, f"{verb} {names.identities_view}, message identities backfilled"
    )


def create_exporter_tables(backend: Backend, names: TableNames, *, ttl_days: int | None) -> None:
    """The database and the exporter's tables, as its ``create_schema`` makes them."""
    backend.command(f"CREATE DATABASE IF NOT EXISTS `{names.database}`")
    full_text = server_version(backend) >= FULL_TEXT_SEARCH_SINCE
    for statement in exporter_ddl(names, full_text_search=full_text, ttl_days=ttl_days):
        backend.command(statement)


def _database_exists(backend: Backend, names: TableNames) -> bool:
    rows = backend.rows(
        "SELECT count() FROM system.databases WHERE name = {db:String}", {"db": names.database}
    )
    return bool(rows[0][0])


def migrate_url(url: str, *, dry_run: bool = False) -> list[MigrationStep]:
    """``migrate`` the store a ``clickhouse://`` or ``chdb://`` URL names."""
    from tracebraid.store.clickhouse.store import connect

    parsed = parse_url(url)
    backend = connect(parsed)
    try:
        return migrate(
            backend,
            TableNames(parsed.database, parsed.table),
            dry_run=dry_run,
            ttl_days=parsed.ttl_days,
        )
    finally:
        backend.close()
