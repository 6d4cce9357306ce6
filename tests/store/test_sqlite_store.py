"""The embedded SQLite store: idempotency, queries, summaries, encoding, errors, threads."""

from __future__ import annotations

import dataclasses
import math
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_factories import MS, T0, consumer, make_span, new_trace_id, producer, trace_of
from workflow_fleet import build_fleet

from tracebraid.errors import ConfigurationError, InputError, StoreError
from tracebraid.model import (
    CorrelationId,
    EventId,
    Span,
    SpanEvent,
    SpanKind,
    SpanLink,
    StatusCode,
    TraceId,
)
from tracebraid.store import SpanStore, SqliteStore, load_workflow
from tracebraid.store.sqlite import SqlParams
from tracebraid.testing.workflows import order_flow


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "spans.db") as opened:
        yield opened


def _by_start(spans: list[Span]) -> list[Span]:
    return sorted(spans, key=lambda s: (s.start_ns, s.trace_id, s.span_id))


# -- idempotency --------------------------------------------------------------------


def test_is_a_span_store(store: SqliteStore) -> None:
    assert isinstance(store, SpanStore)


def test_replayed_batch_is_stored_once(store: SqliteStore) -> None:
    spans = trace_of(5)
    first = store.write(spans)
    assert (first.inserted, first.duplicates) == (5, 0)
    replay = store.write(spans)
    assert (replay.inserted, replay.duplicates) == (0, 5)
    assert store.span_count() == 5
    assert store.spans_of_trace(spans[0].trace_id) == spans
    [summary] = store.recent_traces()
    assert summary.span_count == 5


def test_overlapping_batches_and_copies_inside_a_batch(store: SqliteStore) -> None:
    spans = trace_of(10)
    first = store.write(spans[:6])
    second = store.write([*spans[4:], spans[9], spans[0]])
    assert (first.inserted, first.duplicates) == (6, 0)
    assert (second.inserted, second.duplicates) == (4, 4)
    assert store.span_count() == 10
    [summary] = store.recent_traces()
    assert (summary.span_count, summary.start_ns) == (10, spans[0].start_ns)
    assert summary.end_ns == max(s.end_ns for s in spans)


def test_a_replay_with_other_content_keeps_the_first(store: SqliteStore) -> None:
    target = make_span()
    original = make_span(name="first", attributes={"messaging.conversation_id": "order_1"})
    changed = dataclasses.replace(
        original,
        name="second",
        attributes={"messaging.conversation_id": "order_2"},
        links=(SpanLink(target.trace_id, target.span_id),),
    )
    store.write([original])
    assert store.write([changed, target]).duplicates == 1
    assert store.spans_of_trace(original.trace_id) == [original]
    assert store.spans_linking_to(target.trace_id, target.span_id) == []
    assert store.spans_of_correlation(CorrelationId("order_2")) == []
    summaries = {s.trace_id: s for s in store.recent_traces()}
    assert summaries[original.trace_id].correlation_ids == ("order_1",)


def test_counts_survive_reopening(tmp_path: Path) -> None:
    spans = trace_of(7)
    with SqliteStore(tmp_path / "spans.db") as first:
        first.write(spans)
    with SqliteStore(tmp_path / "spans.db") as again:
        assert again.span_count() == 7
        assert again.write(spans).duplicates == 7
        assert again.spans_of_trace(spans[0].trace_id) == spans


# -- queries ------------------------------------------------------------------------


def test_spans_of_trace_in_start_order(store: SqliteStore) -> None:
    spans = trace_of(6)
    store.write(list(reversed(spans)))
    store.write(trace_of(3))
    assert store.spans_of_trace(spans[0].trace_id) == spans
    assert store.spans_of_trace(new_trace_id()) == []


def test_spans_of_traces_fetches_many_at_once(store: SqliteStore) -> None:
    traces = [trace_of(2, start_ms=i) for i in range(1200)]  # more than one IN (...) chunk
    store.write([span for trace in traces for span in trace])
    wanted = traces[::2]
    got = store.spans_of_traces([trace[0].trace_id for trace in wanted])
    assert got == _by_start([span for trace in wanted for span in trace])
    assert store.spans_of_traces([]) == []


def test_spans_of_correlation_reads_every_convention_generation(store: SqliteStore) -> None:
    current = make_span(attributes={"messaging.message.conversation_id": "order_1"})
    older = make_span(start_ms=1, attributes={"messaging.conversation_id": "order_1"})
    numeric = make_span(start_ms=2, attributes={"messaging.conversation_id": 441})
    same_trace_other = make_span(
        current.trace_id, start_ms=3, attributes={"messaging.conversation_id": "order_2"}
    )
    store.write([numeric, same_trace_other, older, current])
    assert store.spans_of_correlation(CorrelationId("order_1")) == [current, older]
    assert store.spans_of_correlation(CorrelationId("441")) == [numeric]
    assert store.spans_of_correlation(CorrelationId("order_3")) == []


def test_spans_by_event_finds_event_and_causation(store: SqliteStore) -> None:
    published = producer(None, "evt_1", correlation_id="order_1")
    attempts = [consumer(published, "evt_1", "payment", attempt=i, start_ms=5 + i) for i in (1, 2)]
    # The older spelling, on a consumer span: the vocabulary reads a message's identity
    # on producer and consumer spans only.
    stitched = make_span(
        start_ms=20, kind=SpanKind.CONSUMER, attributes={"messaging.message_id": "evt_1"}
    )
    follow_up = producer(attempts[1], "evt_2", causation_id="evt_1", start_ms=30)
    store.write([follow_up, stitched, *attempts, published])
    assert store.spans_by_event(EventId("evt_1")) == [published, *attempts, stitched, follow_up]
    assert store.spans_by_event(EventId("evt_2")) == [follow_up]
    assert store.spans_by_event(EventId("evt_3")) == []


def test_spans_linking_to(store: SqliteStore) -> None:
    published = [producer(None, f"evt_{i}", start_ms=i) for i in range(3)]
    batch = consumer(None, "batch", "summary", start_ms=10, links=tuple(published[:2]))
    other = consumer(None, "evt_2", "summary", start_ms=11, links=(published[2],))
    store.write([*published, batch, other])
    assert store.spans_linking_to(published[0].trace_id, published[0].span_id) == [batch]
    assert store.spans_linking_to(published[2].trace_id, published[2].span_id) == [other]
    assert store.spans_linking_to(batch.trace_id, batch.span_id) == []


def test_identity_columns_use_convention_aliases(store: SqliteStore) -> None:
    span = make_span(
        kind=SpanKind.CONSUMER,
        status=StatusCode.ERROR,
        attributes={
            "messaging.kafka.consumer.group": "payments",
            "messaging.destination": "orders",
            "tracebraid.attempt": "3",
            "tracebraid.event_name": "order.placed",
        },
    )
    store.write([span])
    with sqlite3.connect(store_path(store)) as raw:
        row = raw.execute(
            "SELECT consumer, destination, attempt, event_name, role, outcome FROM spans"
        ).fetchone()
    assert row == ("payments", "orders", 3, "order.placed", "consumer", "error")


def store_path(store: SqliteStore) -> str:
    return repr(store).removeprefix("SqliteStore('").removesuffix("')")


# -- recent traces ------------------------------------------------------------------


def test_recent_traces_summarise_each_trace(store: SqliteStore) -> None:
    root = make_span(name="POST /orders", service="checkout-api", start_ms=5)
    early_child = make_span(parent=root, start_ms=1, status=StatusCode.ERROR)
    late_child = make_span(
        parent=root,
        start_ms=6,
        duration_ms=100,
        status=StatusCode.ERROR,
        attributes={"messaging.conversation_id": "order_1"},
    )
    # The child arrives first and stands in for the root until the root comes.
    store.write([early_child])
    [before] = store.recent_traces()
    assert (before.root_name, before.span_count) == (early_child.name, 1)
    store.write([late_child, root])
    [summary] = store.recent_traces()
    assert (summary.root_name, summary.root_service) == ("POST /orders", "checkout-api")
    assert (summary.start_ns, summary.end_ns) == (early_child.start_ns, late_child.end_ns)
    assert (summary.span_count, summary.error_count) == (3, 2)
    assert summary.correlation_ids == ("order_1",)


def test_recent_traces_pages_newest_first(store: SqliteStore) -> None:
    traces = [trace_of(2, start_ms=i * 10) for i in range(23)]
    store.write([span for trace in traces for span in trace])
    newest_first = [trace[0].trace_id for trace in reversed(traces)]
    seen: list[TraceId] = []
    before: int | None = None
    while page := store.recent_traces(limit=5, before_ns=before):
        seen += [summary.trace_id for summary in page]
        before = page[-1].start_ns
    assert seen == newest_first
    assert store.recent_traces(limit=3, before_ns=traces[10][0].start_ns)[0].trace_id == (
        traces[9][0].trace_id
    )


def test_iter_trace_ids_streams_every_trace(store: SqliteStore) -> None:
    spans = [make_span(start_ms=i) for i in range(2500)]  # more than two pages
    store.write(spans)
    streamed = store.iter_trace_ids()
    assert next(streamed) == min(s.trace_id for s in spans)
    assert list(store.iter_trace_ids()) == sorted(s.trace_id for s in spans)


# -- encoding -----------------------------------------------------------------------

_texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_floats = st.floats(allow_nan=False)
_values = st.one_of(
    _texts,
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    _floats,
    st.lists(_texts, max_size=3).map(tuple),
    st.lists(st.booleans(), max_size=3).map(tuple),
    st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3).map(tuple),
    st.lists(_floats, max_size=3).map(tuple),
)
_attributes = st.dictionaries(_texts, _values, max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    attributes=_attributes,
    event_attributes=_attributes,
    resource=_attributes,
    name=_texts,
    kind=st.sampled_from(SpanKind),
    status=st.sampled_from(StatusCode),
)
def test_every_field_round_trips_exactly(
    attributes: dict[str, object],
    event_attributes: dict[str, object],
    resource: dict[str, object],
    name: str,
    kind: SpanKind,
    status: StatusCode,
) -> None:
    target = make_span()
    span = dataclasses.replace(
        make_span(links=(target,)),
        name=name,
        kind=kind,
        status=status,
        status_message=name,
        attributes=attributes,
        events=(SpanEvent("exception", T0 + MS, event_attributes),),
        links=(SpanLink(target.trace_id, target.span_id, event_attributes),),
        resource=resource,
        scope=name,
    )
    with SqliteStore(":memory:") as store:
        store.write([span])
        [stored] = store.spans_of_trace(span.trace_id)
    assert stored == span
    # Types survive too (1 == 1.0 == True in Python, so compare them explicitly).
    assert [type(v) for v in stored.attributes.values()] == [type(v) for v in attributes.values()]


def test_non_finite_floats_round_trip(store: SqliteStore) -> None:
    span = make_span(attributes={"nan": math.nan, "inf": math.inf, "ninf": (-math.inf, 1.5)})
    store.write([span])
    [stored] = store.spans_of_trace(span.trace_id)
    assert math.isnan(stored.attributes["nan"])  # type: ignore[arg-type]
    assert stored.attributes["inf"] == math.inf
    assert stored.attributes["ninf"] == (-math.inf, 1.5)


def test_resources_are_stored_once(store: SqliteStore) -> None:
    resource = {"service.name": "inventory", "host.name": "node-1"}
    spans = [dataclasses.replace(s, resource=dict(resource)) for s in trace_of(50)]
    store.write(spans[:20])
    store.write(spans[20:])
    with sqlite3.connect(store_path(store)) as raw:
        assert raw.execute("SELECT count(*) FROM resources").fetchone() == (1,)
    assert all(s.resource == resource for s in store.spans_of_trace(spans[0].trace_id))


# -- bad input and bad files ---------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"name": "bad \udcff text"},
        {"attributes": {"big": 2**64}},
        {"attributes": {"object": object()}},
        {"start_ns": 2**63},
    ],
    ids=["surrogate", "int-over-64-bits", "object", "start-over-64-bits"],
)
def test_unstorable_span_rejects_the_batch_and_keeps_the_rest(
    store: SqliteStore, change: dict[str, object]
) -> None:
    accepted = trace_of(3)
    store.write(accepted)
    good = make_span()
    bad = dataclasses.replace(make_span(), **change)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="cannot store"):
        store.write([good, bad])
    assert store.span_count() == 3
    assert store.spans_of_trace(good.trace_id) == []
    assert store.spans_of_trace(accepted[0].trace_id) == accepted
    assert store.write([good]).inserted == 1  # the store is still usable


def test_a_rejected_batch_leaves_no_dangling_resource(store: SqliteStore) -> None:
    resource = {"service.name": "payment"}
    good = dataclasses.replace(make_span(), resource=resource)
    bad = dataclasses.replace(make_span(), resource=resource, name="bad \udcff")
    with pytest.raises(InputError):
        store.write([good, bad])
    store.write([good])  # the same resource, first seen in the rejected batch
    assert store.spans_of_trace(good.trace_id) == [good]
    with SqliteStore(store_path(store)) as reader:  # a fresh cache reads it from the file
        assert reader.spans_of_trace(good.trace_id) == [good]


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database" * 200)
    with pytest.raises(StoreError, match="not a tracebraid store"):
        SqliteStore(path)
    assert path.read_bytes().startswith(b"these are my notes")


def test_another_programs_database_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE users (name TEXT)")
    with pytest.raises(StoreError, match="another program"):
        SqliteStore(path)
    with sqlite3.connect(path) as raw:
        tables = raw.execute("SELECT name FROM sqlite_schema").fetchall()
    assert tables == [("users",)]


def test_a_store_from_a_newer_tracebraid(tmp_path: Path) -> None:
    path = tmp_path / "spans.db"
    with SqliteStore(path) as store:
        store.write(trace_of(2))
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match=r"newer tracebraid \(store schema v99.*upgrade"):
        SqliteStore(path)


def test_a_closed_store_says_so(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "spans.db")
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.write(trace_of(1))
    with pytest.raises(StoreError, match="closed"):
        store.span_count()


def test_the_workflow_closure_searches_indexes_only(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = build_fleet()
    for spans in vars(fleet).values():
        store.write(spans)
    statements: list[tuple[str, SqlParams]] = []
    original = store.query

    def capture(sql: str, params: SqlParams = ()) -> list[tuple[Any, ...]]:
        statements.append((sql, params))
        return original(sql, params)

    monkeypatch.setattr(store, "query", capture)
    assert load_workflow(store, "order_1") == fleet.order_1
    assert any("json_each" in sql for sql, _ in statements)
    for sql, params in statements:
        plan = [row[3] for row in original(f"EXPLAIN QUERY PLAN {sql}", params)]
        # Only the key lists themselves are read through; every table is searched.
        assert not [step for step in plan if step.startswith("SCAN ") and "json_each" not in step]


@pytest.mark.parametrize("where", ["file", "memory"])
def test_query_reads_and_refuses_writes(tmp_path: Path, where: str) -> None:
    with SqliteStore(tmp_path / "spans.db" if where == "file" else ":memory:") as store:
        spans = trace_of(3)
        store.write(spans)
        assert store.query(
            "SELECT count(*) FROM spans WHERE trace_id = ?", [spans[0].trace_id]
        ) == [(3,)]
        assert store.query(
            "SELECT name FROM spans WHERE span_id = :span", {"span": spans[0].span_id}
        ) == [(spans[0].name,)]
        with pytest.raises(StoreError, match=r"readonly|read-only"):
            store.query("DELETE FROM spans")
        with pytest.raises(StoreError, match="no such table"):
            store.query("SELECT * FROM missing_table")
        # Nothing was lost, and the store still writes.
        assert store.write(trace_of(2)).inserted == 2
        assert store.span_count() == 5


def test_bad_synchronous_setting() -> None:
    with pytest.raises(ConfigurationError, match="NORMAL"):
        SqliteStore(":memory:", synchronous="OFF")  # type: ignore[arg-type]


def test_file_is_in_wal_mode(store: SqliteStore) -> None:
    with sqlite3.connect(store_path(store)) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


# -- threads ------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["file", "memory"])
def test_threads_write_and_read_at_once(tmp_path: Path, where: str) -> None:
    store = SqliteStore(tmp_path / "spans.db" if where == "file" else ":memory:")
    traces = [trace_of(4, start_ms=i) for i in range(200)]
    errors: list[BaseException] = []

    def writer(part: int) -> None:
        try:
            for trace in traces[part::4]:
                store.write(trace)
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        try:
            last = 0
            while last < 800:
                count = store.span_count()
                assert count >= last
                last = count
                store.recent_traces(limit=5)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    store_count = store.span_count()
    store.close()
    assert errors == []
    assert store_count == 800


def test_closing_while_other_threads_read_neither_crashes_nor_loses_a_write(
    tmp_path: Path,
) -> None:
    """``close`` while readers run: each reader finishes or gets ``StoreError``, never a crash."""
    path = tmp_path / "race.db"
    flow = order_flow()
    with SqliteStore(path) as store:
        store.write(flow.spans)
    for _ in range(30):
        store = SqliteStore(path)
        errors: list[BaseException] = []
        started = threading.Barrier(5)

        def read(
            store: SqliteStore = store,
            errors: list[BaseException] = errors,
            started: threading.Barrier = started,
        ) -> None:
            started.wait()
            try:
                for _ in range(50):
                    store.recent_traces(limit=10)
            except StoreError:
                pass  # closed under us: the designed answer
            except BaseException as exc:  # anything else is a defect
                errors.append(exc)

        readers = [threading.Thread(target=read) for _ in range(4)]
        for reader in readers:
            reader.start()
        started.wait()
        store.close()
        for reader in readers:
            reader.join()
        assert errors == []
    with SqliteStore(path) as store:
        assert store.span_count() == len(flow.spans)
