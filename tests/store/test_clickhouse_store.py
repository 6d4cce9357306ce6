"""What only the ClickHouse store has: URLs, schema checks, migration, copies stored twice."""

from __future__ import annotations

import logging
import random

import pytest
from clickhouse_engine import ENGINE_PATH, chdb_store, engine, fresh_database
from test_contract import T0, rich_span, trace_id

from tracebraid.errors import ConfigurationError, InputError, StoreError
from tracebraid.model import CorrelationId, EventId, SpanId
from tracebraid.store import open_store
from tracebraid.store.clickhouse import (
    ChdbBackend,
    ClickHouseStore,
    TableNames,
    migrate,
    open_clickhouse,
    parse_url,
)
from tracebraid.store.clickhouse.codec import row_from_span
from tracebraid.views.cli import main


def test_urls_name_engine_database_and_table() -> None:
    local = parse_url("chdb:///var/lib/tb?database=shop&table=spans&ttl_days=30")
    assert (local.scheme, local.path, local.database, local.table, local.ttl_days) == (
        "chdb",
        "/var/lib/tb",
        "shop",
        "spans",
        30,
    )
    server = parse_url("clickhouse://reader:s%40cret@ch1.internal/otel?secure=1")
    assert (server.host, server.port, server.username, server.password, server.database) == (
        "ch1.internal",
        8443,
        "reader",
        "s@cret",
        "otel",
    )
    assert parse_url("clickhouse://ch1:9000").database == "default"
    assert parse_url("chdb:///:memory:").path is None


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("postgres://db/x", "not a ClickHouse store URL"),
        ("chdb:///x?tabel=t", "unknown option"),
        ("chdb:///x?create_schema=maybe", "use 1 or 0"),
        ("clickhouse://h/db?database=other", "URL path"),
        ("chdb:///x?table=otel-traces", "not a plain ClickHouse identifier"),
    ],
)
def test_bad_urls_say_what_to_write(url: str, complaint: str) -> None:
    with pytest.raises(ConfigurationError, match=complaint):
        TableNames(parse_url(url).database, parse_url(url).table)


def test_open_store_knows_both_schemes() -> None:
    database = fresh_database()
    store = open_store(f"chdb://{ENGINE_PATH}?database={database}")
    assert isinstance(store, ClickHouseStore)
    store.close()


def test_a_second_chdb_directory_in_one_process_is_refused_clearly() -> None:
    engine()
    with pytest.raises(StoreError, match="one engine per process"):
        open_clickhouse("chdb:///tmp/elsewhere-tracebraid")


def test_without_create_schema_an_empty_database_is_refused() -> None:
    with pytest.raises(StoreError, match="tracebraid migrate"):
        open_clickhouse(f"chdb://{ENGINE_PATH}?database={fresh_database()}&create_schema=0")


def test_opening_a_plain_exporter_table_says_what_is_slower(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        caplog.at_level(logging.WARNING, "tracebraid.store.clickhouse"),
        chdb_store(migrated=False) as store,
    ):
        assert store.status.missing
    assert "tracebraid migrate" in caplog.text
    assert "identity table" in caplog.text


def _traces_ddl(store: ClickHouseStore) -> str:
    [[ddl]] = store.backend.rows(
        "SELECT create_table_query FROM system.tables WHERE database = {db:String} "
        "AND name = 'otel_traces'",
        {"db": store.names.database},
    )
    return str(ddl)


def test_migration_adds_only_new_tables_and_indexes_rows_already_there() -> None:
    rng = random.Random(20)
    with chdb_store(migrated=False) as store:
        backend, names = store.backend, store.names
        before = _traces_ddl(store)
        span = rich_span(
            rng,
            trace_id(rng),
            T0,
            attributes={
                "messaging.message.conversation_id": "order_7",
                "messaging.message.id": "evt_7",
            },
        )
        store.write([span])
        planned = migrate(backend, names, dry_run=True)
        assert [step.applied for step in planned] == [False, False, True]
        assert not store.refresh_status().identities  # a dry run changes nothing
        applied = migrate(backend, names)
        assert [step.applied for step in applied] == [False, False, True]
        assert store.refresh_status().missing == ()
        assert not any(step.applied for step in migrate(backend, names))
        after = _traces_ddl(store)
        assert after == before
        # The backfill indexed the span written before the migration.
        assert store.spans_of_correlation(CorrelationId("order_7")) == [span]
        assert store.spans_by_event(EventId("evt_7")) == [span]
        link = span.links[0]
        assert store.spans_linking_to(link.trace_id, link.span_id) == [span]


@pytest.mark.parametrize("migrated", [True, False])
def test_a_copy_stored_twice_reads_once(migrated: bool) -> None:
    """Two collectors racing on one replay both insert: every read still shows it once."""
    rng = random.Random(21)
    trace = trace_id(rng)
    spans = [
        rich_span(
            rng,
            trace,
            T0 + i,
            attributes={
                "messaging.message.conversation_id": "order_9",
                "messaging.message.id": f"evt_{i}",
                "messaging.consumer.group.name": "g",
                "tracebraid.attempt": 1,
            },
        )
        for i in range(3)
    ]
    with chdb_store(migrated=migrated) as store:
        store.write(spans)
        store.backend.insert(store.names.traces, [row_from_span(s) for s in spans])  # the race
        assert store.spans_of_trace(trace) == spans
        assert store.spans_of_correlation(CorrelationId("order_9")) == spans
        assert store.spans_by_event(EventId("evt_1")) == [spans[1]]
        assert store.span_count() == 3
        assert store.recent_traces()[0].span_count == 3
        assert store.recent_workflows()[0].span_count == 3
        assert store.retry_counts()[0].attempts == 3


def test_malformed_ids_are_refused_and_nothing_of_the_batch_is_stored() -> None:
    rng = random.Random(22)
    good = rich_span(rng, trace_id(rng), T0)
    bad = rich_span(rng, good.trace_id, T0 + 1, span_id=SpanId("not-hex"))
    with chdb_store(migrated=True) as store:
        store.write([good])
        with pytest.raises(InputError, match="not-hex"):
            store.write([rich_span(rng, good.trace_id, T0 + 2), bad])
        assert store.spans_of_trace(good.trace_id) == [good]


def test_a_closed_store_refuses_reads() -> None:
    with chdb_store(migrated=False) as store:
        store.close()
        with pytest.raises(StoreError, match="closed"):
            store.span_count()
        store.close()  # twice is fine


def test_migrate_command(capsys: pytest.CaptureFixture[str]) -> None:
    database = fresh_database()
    url = f"chdb://{ENGINE_PATH}?database={database}"
    engine()
    assert main(["migrate", "--store", url, "--dry-run"]) == 0
    assert "would create" in capsys.readouterr().out
    assert main(["migrate", "--store", url]) == 0
    assert "identity table: created" in capsys.readouterr().out
    assert main(["migrate", "--store", url]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert main(["migrate", "--store", "sqlite:///x.db"]) == 0
    assert "nothing to migrate" in capsys.readouterr().out
    assert main(["migrate", "--store", "chdb:///tmp/another-dir"]) == 2
    assert "one engine per process" in capsys.readouterr().err
    engine().command(f"DROP DATABASE `{database}`")


def test_chdb_backend_binds_array_parameters_safely() -> None:
    backend = engine()
    tricky = ["a'b", "c\\d", "e,f]"]
    assert backend.rows("SELECT {v:Array(String)}", {"v": tricky}) == [[tricky]]
    assert isinstance(backend, ChdbBackend)


def test_migration_replaces_an_identity_view_older_than_the_vocabulary() -> None:
    rng = random.Random(23)
    with chdb_store(migrated=True) as store:
        backend, names = store.backend, store.names
        # The view as it was: message IDs under their two spellings, on every span.
        backend.command(f"DROP VIEW {names.identities_view}")
        backend.command(
            f"CREATE MATERIALIZED VIEW {names.identities_view} TO {names.identities} AS "
            "SELECT 'event' AS Kind, SpanAttributes['messaging.message.id'] AS Value, "
            f"TraceId, SpanId, Timestamp FROM {names.traces}"
        )
        kafka = rich_span(
            rng,
            trace_id(rng),
            T0,
            links=(),
            attributes={
                "messaging.destination.name": "orders",
                "messaging.kafka.destination.partition": "0",
                "messaging.kafka.message.offset": "7",
            },
        )
        store.write([kafka])
        assert store.spans_by_event(EventId("kafka:orders/0@7")) == []
        [*_, step] = migrate(backend, names)
        assert (step.name, step.applied) == ("identity view", True)
        assert [s.span_id for s in store.spans_by_event(EventId("kafka:orders/0@7"))] == [
            kafka.span_id
        ]
        assert not any(step.applied for step in migrate(backend, names))
