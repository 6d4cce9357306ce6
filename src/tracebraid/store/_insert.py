"""Writing one encoded batch inside the caller's transaction: spans, links, summaries.

``INSERT OR IGNORE`` on the (trace_id, span_id) key makes a write idempotent; the
per-trace summaries and correlation pairs are then brought up to date from the spans
that were actually inserted (``_summary``).
"""

from __future__ import annotations

import operator
import sqlite3

from tracebraid.store import _rows, _summary

__all__ = ["insert_batch"]

_INSERT_SPAN = (
    f"INSERT OR IGNORE INTO spans ({', '.join(_rows.SPAN_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_rows.SPAN_COLUMNS))})"
)
_INSERT_LINK = f"INSERT OR IGNORE INTO links ({', '.join(_rows.LINK_COLUMNS)}) VALUES (?, ?, ?, ?)"
_TRACE_COLUMNS = ", ".join(_summary.TRACE_COLUMNS)
_TRACE_MARKS = ", ".join("?" * len(_summary.TRACE_COLUMNS))
# Merging a batch's fold into a stored summary: the same order as _summary.fold.
_NEW_ROOT = "(excluded.root_rank, excluded.root_start_ns) < (root_rank, root_start_ns)"
_MERGE_TRACE = (
    f"INSERT INTO traces ({_TRACE_COLUMNS}) VALUES ({_TRACE_MARKS}) "
    "ON CONFLICT (trace_id) DO UPDATE SET "
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
_REPLACE_TRACE = f"INSERT OR REPLACE INTO traces ({_TRACE_COLUMNS}) VALUES ({_TRACE_MARKS})"
_INSERT_CORRELATION = (
    "INSERT OR IGNORE INTO trace_correlations (correlation_id, trace_id) VALUES (?, ?)"
)
_SELECT_SUMMARY = f"SELECT {', '.join(_summary.SUMMARY_COLUMNS)} FROM spans"
_SUMMARY_OF_ROW = operator.itemgetter(
    *(_rows.SPAN_COLUMNS.index(column) for column in _summary.SUMMARY_COLUMNS)
)
_INSERT_RESOURCE = "INSERT OR IGNORE INTO resources (id, body) VALUES (?, ?)"
_COUNT_SPANS = "UPDATE counters SET value = value + ? WHERE name = 'spans'"
# SQLite's bound-parameter limit is 32766 since 3.32; stay far below it.
_IN_CHUNK = 500


def insert_batch(conn: sqlite3.Connection, batch: _rows.EncodedBatch) -> int:
    """Insert one encoded batch inside the caller's transaction; how many spans were new."""
    if batch.resources:
        conn.executemany(_INSERT_RESOURCE, batch.resources.items())
    inserted = conn.executemany(_INSERT_SPAN, batch.spans).rowcount
    if not inserted:
        return 0
    if batch.links:
        conn.executemany(_INSERT_LINK, batch.links)
    conn.execute(_COUNT_SPANS, (inserted,))
    if inserted == len(batch.spans):
        summary = _summary.fold(map(_SUMMARY_OF_ROW, batch.spans))
        conn.executemany(_MERGE_TRACE, (row.values() for row in summary.traces.values()))
    else:
        # Replays in the batch: fold the touched traces again from what is stored.
        trace_ids = sorted({row[0] for row in batch.spans})
        stored: list[_summary.SummaryInput] = []
        for i in range(0, len(trace_ids), _IN_CHUNK):
            chunk = trace_ids[i : i + _IN_CHUNK]
            stored += conn.execute(
                f"{_SELECT_SUMMARY} WHERE trace_id IN ({', '.join('?' * len(chunk))}) "
                "ORDER BY rowid",
                chunk,
            ).fetchall()
        summary = _summary.fold(stored)
        conn.executemany(_REPLACE_TRACE, (row.values() for row in summary.traces.values()))
    conn.executemany(_INSERT_CORRELATION, summary.correlations)
    return inserted
