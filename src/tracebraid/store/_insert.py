"""Writing one encoded batch inside the caller's transaction: spans, links, summaries.

``INSERT OR IGNORE`` on the (trace_id, span_id) key makes a write idempotent; the
per-trace summaries and correlation pairs are then brought up to date from the spans
that were actually inserted (``_summary``).

Rows go in as multi-row ``INSERT ... VALUES (...), (...), ...`` statements of up to
``_ROWS_PER_STATEMENT`` rows rather than one ``executemany`` step per row: fewer
statement steps, and ``sqlite3`` holds the GIL only to bind the values, so the writer
releases it for long stretches in which the collector's decoders run. ``rowcount`` of
one such statement is the number of rows it inserted, so the counts stay exact.
"""

from __future__ import annotations

import functools
import itertools
import operator
import sqlite3
from collections.abc import Sequence
from typing import Any

from tracebraid.store import _rows, _summary
from tracebraid.store._lookups import json_keys

__all__ = ["insert_batch"]

_INSERT_SPAN = f"INSERT OR IGNORE INTO spans ({', '.join(_rows.SPAN_COLUMNS)}) VALUES "
_INSERT_LINK = f"INSERT OR IGNORE INTO links ({', '.join(_rows.LINK_COLUMNS)}) VALUES "
_TRACE_COLUMNS = ", ".join(_summary.TRACE_COLUMNS)
# Merging a batch's fold into a stored summary: the same order as _summary.fold.
_NEW_ROOT = "(excluded.root_rank, excluded.root_start_ns) < (root_rank, root_start_ns)"
_INSERT_TRACE = f"INSERT INTO traces ({_TRACE_COLUMNS}) VALUES "
# Each trace occurs once in a fold, so a multi-row upsert merges each row with the stored one.
_MERGE_TRACE = (
    " ON CONFLICT (trace_id) DO UPDATE SET "
    "start_ns = min(start_ns, excluded.start_ns), "
    "end_ns = max(end_ns, excluded.end_ns), "
    "span_count = span_count + excluded.span_count, "
    "error_count = error_count + excluded.error_count, "
    f"root_rank = CASE WHEN {_NEW_ROOT} THEN excluded.root_rank ELSE root_rank END, "
    f"root_start_ns = CASE WHEN {_NEW_ROOT} THEN excluded.root_start_ns "
    "ELSE root_start_ns END, "
    f"root_name = CASE WHEN {_NEW_ROOT} THEN excluded.root_name ELSE root_name END, "
    f"root_service = CASE WHEN {_NEW_ROOT} THEN excluded.root_service ELSE root_service END"
)
_REPLACE_TRACE = f"INSERT OR REPLACE INTO traces ({_TRACE_COLUMNS}) VALUES "
_INSERT_CORRELATION = "INSERT OR IGNORE INTO trace_correlations (correlation_id, trace_id) VALUES "
_SELECT_SUMMARY_OF_TRACES = (
    f"SELECT {', '.join(_summary.SUMMARY_COLUMNS)} FROM spans "
    "WHERE trace_id IN (SELECT value FROM json_each(?)) ORDER BY rowid"
)
_SUMMARY_OF_ROW = operator.itemgetter(
    *(_rows.SPAN_COLUMNS.index(column) for column in _summary.SUMMARY_COLUMNS)
)
_INSERT_IDENTITY = "INSERT OR IGNORE INTO message_identities (value, trace_id, span_id) VALUES "
_INSERT_RESOURCE = "INSERT OR IGNORE INTO resources (id, body) VALUES "
_COUNT_SPANS = "UPDATE counters SET value = value + ? WHERE name = 'spans'"
# SQLite's bound-parameter limit is 32766 since 3.32; stay far below it (a span row
# binds 22 values). Measured: 128-512 rows per statement are equally fast, 1,000+ slower.
_ROWS_PER_STATEMENT = 256


@functools.lru_cache(maxsize=64)
def _values(width: int, rows: int) -> str:
    """``(?, ?), (?, ?)`` for ``rows`` rows of ``width`` values."""
    row = f"({', '.join('?' * width)})"
    return ", ".join(itertools.repeat(row, rows))


def _insert_rows(
    conn: sqlite3.Connection, head: str, rows: Sequence[Sequence[Any]], tail: str = ""
) -> int:
    """Run ``head VALUES ... tail`` over ``rows`` in multi-row statements; rows inserted."""
    if not rows:
        return 0
    width = len(rows[0])
    flat = itertools.chain.from_iterable
    changed = 0
    for i in range(0, len(rows), _ROWS_PER_STATEMENT):
        part = rows[i : i + _ROWS_PER_STATEMENT]
        sql = f"{head}{_values(width, len(part))}{tail}"
        changed += conn.execute(sql, list(flat(part))).rowcount
    return changed


def insert_batch(conn: sqlite3.Connection, batch: _rows.EncodedBatch) -> int:
    """Insert one encoded batch inside the caller's transaction; how many spans were new."""
    if batch.resources:
        _insert_rows(conn, _INSERT_RESOURCE, list(batch.resources.items()))
    inserted = _insert_rows(conn, _INSERT_SPAN, batch.spans)
    if not inserted:
        return 0
    if batch.links:
        _insert_rows(conn, _INSERT_LINK, batch.links)
    if batch.identities:
        _insert_rows(conn, _INSERT_IDENTITY, batch.identities)
    conn.execute(_COUNT_SPANS, (inserted,))
    if inserted == len(batch.spans):
        summary = _summary.fold(map(_SUMMARY_OF_ROW, batch.spans))
        _insert_rows(conn, _INSERT_TRACE, _trace_rows(summary), _MERGE_TRACE)
    else:
        # Replays in the batch: fold the touched traces again from what is stored.
        stored = conn.execute(
            _SELECT_SUMMARY_OF_TRACES, (json_keys(row[0] for row in batch.spans),)
        )
        summary = _summary.fold(stored.fetchall())
        _insert_rows(conn, _REPLACE_TRACE, _trace_rows(summary))
    _insert_rows(conn, _INSERT_CORRELATION, list(summary.correlations))
    return inserted


def _trace_rows(summary: _summary.TraceFold) -> list[tuple[Any, ...]]:
    return [row.values() for row in summary.traces.values()]
