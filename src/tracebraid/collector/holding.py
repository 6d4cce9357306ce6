"""The holding file: spans waiting for their workflow's retention decision, on disk.

A side SQLite file (WAL, ``synchronous=NORMAL``: a commit survives the process being
killed) with four tables: ``held`` (span chunks per workflow, encoded with the store's
exact wire format), ``workflows`` (first and last arrival, spans held), ``traces``
(which workflow a trace belongs to, so spans without a correlation ID join their
trace's workflow) and ``decisions`` (kept or dropped, remembered for late spans).

Every method runs one transaction; the caller serialises them (``Retention``'s lock).
Nothing is cached in memory, so memory stays flat however many workflows are held.

Example::

    >>> holding = HoldingFile(":memory:")
    >>> holding.held_totals()
    (0, 0)
    >>> holding.close()
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from tracebraid.errors import StoreError
from tracebraid.model import Span, TraceId
from tracebraid.store.wire import decode_spans, encode_spans

__all__ = ["Decision", "HoldingFile", "trace_key"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS held (workflow TEXT NOT NULL, spans INTEGER NOT NULL,
                                 body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS held_by_workflow ON held (workflow);
CREATE TABLE IF NOT EXISTS workflows (workflow TEXT PRIMARY KEY, first_s REAL NOT NULL,
                                      last_s REAL NOT NULL, spans INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS workflows_by_last ON workflows (last_s);
CREATE INDEX IF NOT EXISTS workflows_by_first ON workflows (first_s);
CREATE TABLE IF NOT EXISTS traces (trace_id TEXT PRIMARY KEY, workflow TEXT NOT NULL,
                                   seen_s REAL NOT NULL);
CREATE INDEX IF NOT EXISTS traces_by_seen ON traces (seen_s);
CREATE TABLE IF NOT EXISTS decisions (workflow TEXT PRIMARY KEY, kept INTEGER NOT NULL,
                                      reasons TEXT NOT NULL, decided_s REAL NOT NULL);
CREATE INDEX IF NOT EXISTS decisions_by_time ON decisions (decided_s);
"""


@dataclass(frozen=True, slots=True)
class Decision:
    """A workflow's retention decision: kept (and why: its reasons, or ``sampled``)."""

    kept: bool
    reasons: tuple[str, ...]


class HoldingFile:
    """The durable holding area of one collector (see the module docstring)."""

    def __init__(self, path: str) -> None:
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the retention holding file {path!r}: {exc}") from None
        self.path = path

    # -- arrivals --------------------------------------------------------------------

    def workflows_of_traces(self, trace_ids: Collection[TraceId]) -> dict[str, str]:
        """The workflow each of ``trace_ids`` is known to belong to."""
        if not trace_ids:
            return {}
        found: dict[str, str] = {}
        ids = list(trace_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT trace_id, workflow FROM traces WHERE trace_id IN ({marks})", chunk
            )
            found.update(rows.fetchall())
        return found

    def decisions_of(self, workflows: Collection[str]) -> dict[str, Decision]:
        """The decisions already taken for any of ``workflows``."""
        found: dict[str, Decision] = {}
        ids = list(workflows)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT workflow, kept, reasons FROM decisions WHERE workflow IN ({marks})",
                chunk,
            )
            for workflow, kept, reasons in rows:
                found[workflow] = Decision(bool(kept), tuple(r for r in reasons.split(",") if r))
        return found

    def hold(
        self, groups: Mapping[str, Sequence[Span]], new_traces: Mapping[str, str], now_s: float
    ) -> None:
        """Hold each group's spans under its workflow, and remember ``new_traces``' workflows;
        spans held under a trace's own key join its workflow once it is known. Durable
        when this returns."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            for trace_id, workflow in new_traces.items():
                db.execute(
                    "INSERT OR IGNORE INTO traces VALUES (?, ?, ?)", (trace_id, workflow, now_s)
                )
                self._rekey(trace_key(trace_id), workflow)
            for workflow, spans in groups.items():
                db.execute(
                    "INSERT INTO held VALUES (?, ?, ?)", (workflow, len(spans), encode_spans(spans))
                )
                db.execute(
                    "INSERT INTO workflows VALUES (?, ?, ?, ?) ON CONFLICT (workflow) DO UPDATE "
                    "SET last_s = excluded.last_s, spans = spans + excluded.spans",
                    (workflow, now_s, now_s, len(spans)),
                )
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            db.execute("ROLLBACK")
            raise StoreError(f"the retention holding file could not be written: {exc}") from None

    def _rekey(self, old: str, new: str) -> None:
        row = self._db.execute(
            "SELECT first_s, last_s, spans FROM workflows WHERE workflow = ?", (old,)
        ).fetchone()
        if row is None:
            return
        self._db.execute("UPDATE held SET workflow = ? WHERE workflow = ?", (new, old))
        self._db.execute("DELETE FROM workflows WHERE workflow = ?", (old,))
        self._db.execute(
            "INSERT INTO workflows VALUES (?, ?, ?, ?) ON CONFLICT (workflow) DO UPDATE SET "
            "first_s = min(first_s, excluded.first_s), last_s = max(last_s, excluded.last_s), "
            "spans = spans + excluded.spans",
            (new, *row),
        )

    # -- decisions -------------------------------------------------------------------

    def due(self, quiet_before_s: float, started_before_s: float, limit: int) -> list[str]:
        """Workflows quiet since ``quiet_before_s`` or held since ``started_before_s``."""
        rows = self._db.execute(
            "SELECT workflow FROM workflows WHERE last_s <= ? OR first_s <= ? "
            "ORDER BY first_s LIMIT ?",
            (quiet_before_s, started_before_s, limit),
        )
        return [workflow for (workflow,) in rows]

    def oldest(self, limit: int) -> list[str]:
        """The workflows held longest (decided early when the holding file is full)."""
        rows = self._db.execute("SELECT workflow FROM workflows ORDER BY first_s LIMIT ?", (limit,))
        return [workflow for (workflow,) in rows]

    def spans_of(self, workflow: str) -> list[Span]:
        """Every span held for ``workflow``."""
        rows = self._db.execute("SELECT body FROM held WHERE workflow = ?", (workflow,))
        return [span for (body,) in rows for span in decode_spans(body)]

    def decide(self, workflow: str, decision: Decision, now_s: float) -> None:
        """Record ``decision`` and release the workflow's held spans, in one transaction
        (the caller has already stored them if kept: a crash before this commits only
        makes the decision be taken again, and the store ignores spans it has)."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT OR REPLACE INTO decisions VALUES (?, ?, ?, ?)",
                (workflow, int(decision.kept), ",".join(decision.reasons), now_s),
            )
            db.execute("DELETE FROM held WHERE workflow = ?", (workflow,))
            db.execute("DELETE FROM workflows WHERE workflow = ?", (workflow,))
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            db.execute("ROLLBACK")
            raise StoreError(f"the retention holding file could not be written: {exc}") from None

    def forget(self, before_s: float) -> None:
        """Forget decisions and trace mappings older than ``before_s`` (bounds the file)."""
        self._db.execute("DELETE FROM decisions WHERE decided_s < ?", (before_s,))
        self._db.execute(
            "DELETE FROM traces WHERE seen_s < ? AND workflow NOT IN "
            "(SELECT workflow FROM workflows)",
            (before_s,),
        )

    # -- figures ---------------------------------------------------------------------

    def held_totals(self) -> tuple[int, int]:
        """(workflows held, spans held)."""
        row = self._db.execute("SELECT count(*), coalesce(sum(spans), 0) FROM workflows")
        workflows, spans = row.fetchone()
        return int(workflows), int(spans)

    def decided_totals(self) -> tuple[int, int]:
        """(workflows remembered as kept, as dropped)."""
        row = self._db.execute(
            "SELECT coalesce(sum(kept), 0), count(*) - coalesce(sum(kept), 0) FROM decisions"
        )
        kept, dropped = row.fetchone()
        return int(kept), int(dropped)

    def close(self) -> None:
        """Close the file (what is held stays held, for the next start)."""
        self._db.close()


def trace_key(trace_id: str) -> str:
    """The key a trace's spans are held under before any of them names a workflow."""
    return "trace:" + trace_id
