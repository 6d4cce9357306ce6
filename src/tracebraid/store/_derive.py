"""Deriving the ``spans`` table's messaging columns again when the vocabulary changed.

The derived columns (``_rows.DERIVED_COLUMNS``) are what ``tracebraid.messaging``
made of each span when it was written. When its rules change (``_rows.DERIVATION``),
spans already stored would be searched, counted and looked up by the old rules, so
opening a store derived by other rules derives every span's columns again from its
stored attributes, and the correlation index with them, in one transaction: a
crash leaves the old columns, never a mix, and nothing stored is rewritten but the
derived columns. The rules a store follows are the counter ``derivation``.

Example::

    >>> import sqlite3
    >>> from tracebraid.store.sqlite import SqliteStore
    >>> store = SqliteStore(":memory:")
    >>> store.query("SELECT value FROM counters WHERE name = 'derivation'") == [(DERIVATION,)]
    True
    >>> store.close()
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from tracebraid.errors import StoreError
from tracebraid.store import _rows
from tracebraid.store._rows import DERIVATION, DERIVED_COLUMNS

__all__ = ["DERIVATION", "derive", "derive_again_if_stale", "stored_derivation"]

_log = logging.getLogger(__name__)
_PAGE = 5000
_SELECT = f"SELECT rowid, {', '.join(_rows.SPAN_SELECT_COLUMNS)} FROM spans"
_UPDATE = (
    f"UPDATE spans SET ({', '.join(DERIVED_COLUMNS)}) = "
    f"({', '.join('?' * len(DERIVED_COLUMNS))}) WHERE rowid = ?"
)


def stored_derivation(conn: sqlite3.Connection) -> int:
    """The rules the stored columns follow (0: derived before the counter existed)."""
    row = conn.execute("SELECT value FROM counters WHERE name = 'derivation'").fetchone()
    return 0 if row is None else int(row[0])


def derive(conn: sqlite3.Connection) -> int:
    """Derive every span's columns again, inside the caller's write transaction; how many.

    Pages through the table by rowid, so memory stays bounded whatever its size.
    """
    if stored_derivation(conn) == DERIVATION:
        return 0
    resources: _rows.Resources = {
        key: _rows.decode_attributes(body)
        for key, body in conn.execute("SELECT id, body FROM resources")
    }
    after = -(2**63)
    count = 0
    identities: list[tuple[str, str, str]] = []
    conn.execute("DELETE FROM message_identities")
    while True:
        rows = conn.execute(f"{_SELECT} WHERE rowid > ? ORDER BY rowid LIMIT ?", (after, _PAGE))
        page: list[tuple[Any, ...]] = rows.fetchall()
        if not page:
            break
        updates = []
        for row in page:
            span = _rows.span_from_row(row[1:], resources)
            columns, others = _rows.derived_with_identities(span)
            updates.append((*columns, row[0]))
            identities.extend((other, span.trace_id, span.span_id) for other in others)
        conn.executemany(_UPDATE, updates)
        count += len(page)
        after = page[-1][0]
    conn.executemany(
        "INSERT OR IGNORE INTO message_identities (value, trace_id, span_id) VALUES (?, ?, ?)",
        identities,
    )
    # The correlation index is derived too: rebuild it from the new columns.
    conn.execute("DELETE FROM trace_correlations")
    conn.execute(
        "INSERT OR IGNORE INTO trace_correlations (correlation_id, trace_id) "
        "SELECT DISTINCT correlation_id, trace_id FROM spans WHERE correlation_id IS NOT NULL"
    )
    conn.execute(
        "INSERT INTO counters (name, value) VALUES ('derivation', ?) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (DERIVATION,),
    )
    if count:
        _log.info("derived the messaging columns of %d stored spans again", count)
    return count


def derive_again_if_stale(conn: sqlite3.Connection, where: str) -> None:
    """``derive`` under the write lock when the store follows other rules (autocommit
    ``conn``); a store that is up to date is only read. ``StoreError`` names ``where``."""
    try:
        if stored_derivation(conn) == DERIVATION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            derive(conn)  # re-checks under the lock: another process may have done it
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise StoreError(
            f"cannot derive the messaging columns of {where} again: {exc}; nothing was "
            "changed, open it again to retry"
        ) from exc
