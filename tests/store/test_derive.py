"""The SQLite store's derived columns follow the messaging vocabulary, and a store written
by other rules (an older schema, an older vocabulary) is derived again when opened,
losing nothing it held."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from tracebraid.messaging import normalize
from tracebraid.model import Span
from tracebraid.store import SqliteStore
from tracebraid.store._rows import DERIVATION, DERIVED_COLUMNS, derived
from tracebraid.store._schema import SCHEMA_VERSION
from tracebraid.store.search import TraceFacts, TraceQuery, search_traces
from tracebraid.testing.workflows import (
    duplicates,
    fan_in,
    islands,
    order_flow,
    spread_over_traces,
)

# What DERIVATION names: the derived columns of the reference spans below. When the
# vocabulary derives other values, this fails: bump _rows.DERIVATION (stored spans are
# then derived again when a store is opened) and put the new digest here.
PINNED = (1, "32ff27b751ac61b6")


def reference_spans() -> list[Span]:
    spans: list[Span] = []
    for workflow in (
        order_flow(seed=3),
        order_flow(seed=4, stock=True),
        fan_in(3),
        duplicates(),
        spread_over_traces(3, propagate=False),
        islands(2, orphans=1),
    ):
        spans += workflow.spans
    return spans


def digest(spans: list[Span]) -> str:
    text = repr([derived(span) for span in spans]).encode()
    return hashlib.blake2b(text, digest_size=8).hexdigest()


def test_the_derivation_version_names_the_rules() -> None:
    got = (DERIVATION, digest(reference_spans()))
    assert got == PINNED, (
        "tracebraid.messaging now derives other columns: bump _rows.DERIVATION so stored "
        f"spans are derived again, and pin {got} here"
    )


def test_derived_columns_are_the_messaging_view() -> None:
    columns = dict(zip(DERIVED_COLUMNS, derived(order_flow().spans[3]), strict=True))
    view = normalize(order_flow().spans[3])
    assert columns["consumer"] == view.consumer
    assert columns["event_id"] == view.event_id
    assert columns["outcome"] == view.outcome.value
    assert columns["role"] == view.role.value


def _columns(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as raw:
        return raw.execute(
            f"SELECT trace_id, span_id, {', '.join(DERIVED_COLUMNS)} FROM spans ORDER BY rowid"
        ).fetchall()


def _spans_and_facts(store: SqliteStore) -> tuple[list[Span], list[TraceFacts]]:
    spans = store.spans_of_traces(list(store.iter_trace_ids()))
    facts = [h.facts for h in search_traces(store, TraceQuery(limit=200)).hits]
    return spans, facts


def test_a_version_1_store_is_migrated_and_derived_again(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with SqliteStore(path) as store:
        store.write(reference_spans())
        expected = _spans_and_facts(store)
    derived_now = _columns(path)
    # Turn the file into what tracebraid wrote before schema 2: no role, operation,
    # outcome or dead-letter columns, no derivation counter, and its own (older)
    # rules for the rest: a consumer column only where a group was named.
    with sqlite3.connect(path) as raw:
        for column in ("role", "operation", "outcome", "dead_letter", "marker_for"):
            raw.execute(f"ALTER TABLE spans DROP COLUMN {column}")
        raw.execute("DROP TABLE message_identities")
        raw.execute("UPDATE spans SET consumer = NULL, attempt = NULL")
        raw.execute("DELETE FROM trace_correlations")
        raw.execute("DELETE FROM counters WHERE name = 'derivation'")
        raw.execute("PRAGMA user_version = 1")
    with SqliteStore(path) as store:
        assert _spans_and_facts(store) == expected
        assert store.query("SELECT value FROM counters WHERE name = 'derivation'") == [
            (DERIVATION,)
        ]
    assert _columns(path) == derived_now
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_store_derived_by_other_rules_is_derived_again(tmp_path: Path) -> None:
    path = tmp_path / "stale.db"
    with SqliteStore(path) as store:
        store.write(reference_spans())
        correlations = store.query("SELECT * FROM trace_correlations ORDER BY 1, 2")
        events = {v.event_id for s in reference_spans() if (v := normalize(s)).event_id}
        by_event = store.spans_by_events(events)
    derived_now = _columns(path)
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE spans SET consumer = 'old rules', outcome = 'ok', event_id = NULL")
        raw.execute("DELETE FROM trace_correlations")
        raw.execute("DELETE FROM message_identities")
        raw.execute(f"UPDATE counters SET value = {DERIVATION - 1} WHERE name = 'derivation'")
    with SqliteStore(path) as store:
        assert store.query("SELECT * FROM trace_correlations ORDER BY 1, 2") == correlations
        assert store.spans_by_events(events) == by_event
    assert _columns(path) == derived_now
