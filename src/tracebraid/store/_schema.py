"""The embedded store's SQLite schema, its version, and the checks made when a file is opened.

A tracebraid store is marked with ``PRAGMA application_id`` (so another program's
database is refused rather than written into) and versioned with ``PRAGMA
user_version``: a file from a newer tracebraid is refused with a message that says
so, an older one is migrated forward in one transaction.

Why the tables look as they do:

- ``spans`` is an ordinary rowid table with a unique (trace_id, span_id) key rather
  than ``WITHOUT ROWID``: inserts then append to the table b-tree and only the
  indexes take random writes, and every secondary index stores an 8-byte rowid
  instead of a 48-byte key.
- The derived columns (correlation, event and causation IDs, event name, consumer,
  attempt, destination, role, operation, outcome, dead letter, the span a start
  marker announces) are the span's ``tracebraid.messaging`` view (``_rows.derived``),
  so SQL over them counts what the analysis counts. They are indexed only where a
  query needs them, because every index costs write throughput: event and causation
  IDs per span (partial indexes: many spans carry neither), correlation IDs per
  trace (``trace_correlations``). The counter ``derivation`` records which rules derived
  them; a store derived by other rules is derived again when opened
  (``tracebraid.store._derive``), inside one transaction.
- ``traces`` is a per-trace summary that ``write`` maintains from the spans it
  actually inserted (``_summary``), so ``recent_traces`` reads one small index
  however large the store grows, and a replayed span never counts twice.
- ``links`` answers "who links to span X" from one index range.
"""

from __future__ import annotations

import sqlite3

from tracebraid.errors import StoreError
from tracebraid.store._derive import derive, derive_again_if_stale

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "ensure_schema"]

APPLICATION_ID = 0x54425244  # "TBRD"
SCHEMA_VERSION = 2

_SCHEMA_V1 = """
CREATE TABLE resources (
    id   INTEGER PRIMARY KEY,  -- 64-bit content hash of body
    body BLOB NOT NULL         -- MessagePack map
);

CREATE TABLE spans (
    trace_id       TEXT    NOT NULL,
    span_id        TEXT    NOT NULL,
    parent_span_id TEXT,
    name           TEXT    NOT NULL,
    kind           INTEGER NOT NULL,
    service        TEXT    NOT NULL,
    start_ns       INTEGER NOT NULL,
    end_ns         INTEGER NOT NULL,
    status         INTEGER NOT NULL,
    status_message TEXT    NOT NULL,
    correlation_id TEXT,
    event_id       TEXT,
    causation_id   TEXT,
    event_name     TEXT,
    consumer       TEXT,
    attempt        INTEGER,
    destination    TEXT,
    scope          TEXT    NOT NULL,
    resource_id    INTEGER NOT NULL,
    attributes     BLOB,   -- MessagePack map, NULL when there are none
    events         BLOB,   -- MessagePack [[name, time_ns, attributes], ...]
    links          BLOB,   -- MessagePack [[trace_id, span_id, attributes], ...]
    PRIMARY KEY (trace_id, span_id)
);
CREATE INDEX spans_by_event ON spans (event_id) WHERE event_id IS NOT NULL;
CREATE INDEX spans_by_causation ON spans (causation_id) WHERE causation_id IS NOT NULL;

CREATE TABLE links (
    linked_trace_id TEXT NOT NULL,
    linked_span_id  TEXT NOT NULL,
    trace_id        TEXT NOT NULL,
    span_id         TEXT NOT NULL,
    PRIMARY KEY (linked_trace_id, linked_span_id, trace_id, span_id)
) WITHOUT ROWID;

CREATE TABLE traces (
    trace_id      TEXT    NOT NULL PRIMARY KEY,
    start_ns      INTEGER NOT NULL,
    end_ns        INTEGER NOT NULL,
    span_count    INTEGER NOT NULL,
    error_count   INTEGER NOT NULL,
    -- The trace's root: a span without parent (rank 0) beats any other (rank 1), then
    -- the earliest start wins. Until the root arrives, the earliest span stands in
    -- (tracebraid.store._summary.fold, and the upsert in sqlite.py).
    root_rank     INTEGER NOT NULL,
    root_start_ns INTEGER NOT NULL,
    root_name     TEXT    NOT NULL,
    root_service  TEXT    NOT NULL
) WITHOUT ROWID;
CREATE INDEX traces_by_start ON traces (start_ns);

-- Correlation -> traces, one row per pair rather than an index entry per span: a
-- workflow's spans share a few traces, so this is many times smaller to maintain.
CREATE TABLE trace_correlations (
    correlation_id TEXT NOT NULL,
    trace_id       TEXT NOT NULL,
    PRIMARY KEY (correlation_id, trace_id)
) WITHOUT ROWID;
CREATE INDEX trace_correlations_by_trace ON trace_correlations (trace_id);

-- Running totals kept by ``write`` in the same transaction: count(*) over millions of
-- spans is a full index scan, too slow for a stats endpoint.
CREATE TABLE counters (
    name  TEXT    NOT NULL PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counters (name, value) VALUES ('spans', 0);
"""

# Index i migrates schema version i + 1 to i + 2. Version 2 added the derived columns
# that the messaging vocabulary gives (role, operation, outcome, dead letter, the
# span a start marker announces); the
# counter 'derivation' is then missing, so ``_derive`` fills them on the first open.
_MIGRATIONS: tuple[str, ...] = (
    """
ALTER TABLE spans ADD COLUMN role TEXT;
ALTER TABLE spans ADD COLUMN operation TEXT;
ALTER TABLE spans ADD COLUMN outcome TEXT;
ALTER TABLE spans ADD COLUMN dead_letter INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spans ADD COLUMN marker_for TEXT;

-- A span's strong message identities after its first (its event_id): a Kafka offset
-- beside a message ID, a CloudEvents ID. Most spans have none, so this stays small.
CREATE TABLE message_identities (
    value    TEXT NOT NULL,
    trace_id TEXT NOT NULL,
    span_id  TEXT NOT NULL,
    PRIMARY KEY (value, trace_id, span_id)
) WITHOUT ROWID;
""",
)


def _pragma(conn: sqlite3.Connection, name: str) -> int:
    value = conn.execute(f"PRAGMA {name}").fetchone()[0]
    return int(value)


def _check(conn: sqlite3.Connection, where: str) -> int:
    """The file's schema version, after refusing files that are not tracebraid stores."""
    try:
        version = _pragma(conn, "user_version")
        application_id = _pragma(conn, "application_id")
        tables = conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            f"{where} is not a tracebraid store ({exc}); "
            "point --store at a new file or an existing tracebraid store"
        ) from exc
    if application_id != APPLICATION_ID and (application_id != 0 or version != 0 or tables):
        raise StoreError(
            f"{where} is an SQLite database of another program, not a tracebraid store; "
            "point --store at a new file or an existing tracebraid store"
        )
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{where} was written by a newer tracebraid (store schema v{version}; this "
            f"version reads up to v{SCHEMA_VERSION}); upgrade tracebraid to open it"
        )
    return version


def ensure_schema(conn: sqlite3.Connection, where: str) -> None:
    """Create or migrate the schema on ``conn`` (autocommit mode), or raise ``StoreError``.

    The check runs once without a lock, so a reader opening an up-to-date store never
    writes; creation and migration re-check under ``BEGIN IMMEDIATE`` because another
    process may be doing the same at the same moment.
    """
    if _check(conn, where) == SCHEMA_VERSION:
        derive_again_if_stale(conn, where)
        return
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = _check(conn, where)
            if version == 0:
                # executescript() would COMMIT first, so statements run one by one.
                for statement in _statements(_SCHEMA_V1):
                    conn.execute(statement)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                version = 1
            for migration in _MIGRATIONS[version - 1 :]:
                for statement in _statements(migration):
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            derive(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise StoreError(f"cannot create the store schema in {where}: {exc}") from exc


def _statements(script: str) -> list[str]:
    """Split a schema script into statements (``sqlite3.complete_statement`` knows triggers)."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        statements.append(pending.strip())
    return statements
