"""An ``otel_traces`` table exactly as the OpenTelemetry Collector's exporter makes and fills it.

The DDL below is the exporter's (``internal/sqltemplates/traces_*.sql``) with its
templated parts filled for one node, in the three shapes found in the wild: the
current one with bloom-filter indexes (servers before 26.2), the current one with
text indexes (26.2 and later), and the 2023 one (no ScopeName, Int64 Duration,
DateTime64 lookup). Rows go in as the Collector writes them: every attribute a
string, kinds and statuses as the exporter spells them. tracebraid then reads the
table where it lies, and the analysis of the demo workflow must come out exactly
as it does from the SQLite store.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clickhouse_engine import ENGINE_PATH, engine, fresh_database

from tracebraid.analysis import analyze
from tracebraid.model import Attributes, AttributeValue, Span
from tracebraid.store.clickhouse import ClickHouseStore, open_clickhouse
from tracebraid.store.sqlite import SqliteStore
from tracebraid.testing.workflows import order_flow

NOW = order_flow().end_ns + 1_000_000_000

CURRENT_BLOOM = """CREATE TABLE IF NOT EXISTS `{db}`.`otel_traces`  (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(T64, ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Links Nested (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    ResourceAttributeItems Array(String) ALIAS arrayMap(kv -> concat(kv.1, '=', kv.2), CAST(ResourceAttributes, 'Array(Tuple(String, String))')),
    SpanAttributeItems Array(String) ALIAS arrayMap(kv -> concat(kv.1, '=', kv.2), CAST(SpanAttributes, 'Array(Tuple(String, String))')),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1,
    INDEX idx_lower_span_name lower(SpanName) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8
) ENGINE = MergeTree()
PARTITION BY toDate(Timestamp)
PRIMARY KEY (ServiceName, SpanName, toDateTime(Timestamp))
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp), Timestamp)

SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1"""  # noqa: E501

CURRENT_TEXT = CURRENT_BLOOM.replace(
    """    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,""",
    """    INDEX idx_trace_id TraceId TYPE text(tokenizer = 'array'),
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE text(tokenizer = 'array'),
    INDEX idx_res_attr_items ResourceAttributeItems TYPE text(tokenizer = 'array'),
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE text(tokenizer = 'array'),
    INDEX idx_span_attr_items SpanAttributeItems TYPE text(tokenizer = 'array'),""",
)

CURRENT_LOOKUP = """CREATE TABLE IF NOT EXISTS `{db}`.`otel_traces_trace_id_ts`  (
    TraceId String CODEC(ZSTD(1)),
    Start SimpleAggregateFunction(min, DateTime) CODEC(ZSTD(1)),
    End SimpleAggregateFunction(max, DateTime) CODEC(ZSTD(1))
) ENGINE = AggregatingMergeTree()
PARTITION BY toStartOfWeek(Start)
ORDER BY (TraceId)

SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1"""

CURRENT_VIEW = """CREATE MATERIALIZED VIEW IF NOT EXISTS `{db}`.`otel_traces_trace_id_ts_mv` 
TO `{db}`.`otel_traces_trace_id_ts`
AS SELECT
    TraceId,
    min(toDateTime(Timestamp)) AS Start,
    max(toDateTime(Timestamp)) AS End
FROM `{db}`.`otel_traces`
WHERE TraceId != ''
GROUP BY TraceId"""  # noqa: W291

OLD_TRACES = """CREATE TABLE IF NOT EXISTS {db}.otel_traces (
     Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
     TraceId String CODEC(ZSTD(1)),
     SpanId String CODEC(ZSTD(1)),
     ParentSpanId String CODEC(ZSTD(1)),
     TraceState String CODEC(ZSTD(1)),
     SpanName LowCardinality(String) CODEC(ZSTD(1)),
     SpanKind LowCardinality(String) CODEC(ZSTD(1)),
     ServiceName LowCardinality(String) CODEC(ZSTD(1)),
     ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
     SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
     Duration Int64 CODEC(ZSTD(1)),
     StatusCode LowCardinality(String) CODEC(ZSTD(1)),
     StatusMessage String CODEC(ZSTD(1)),
     Events Nested (
         Timestamp DateTime64(9),
         Name LowCardinality(String),
         Attributes Map(LowCardinality(String), String)
     ) CODEC(ZSTD(1)),
     Links Nested (
         TraceId String,
         SpanId String,
         TraceState String,
         Attributes Map(LowCardinality(String), String)
     ) CODEC(ZSTD(1)),
     INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
     INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
     INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
     INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
     INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
     INDEX idx_duration Duration TYPE minmax GRANULARITY 1
) ENGINE MergeTree()

PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, SpanName, toUnixTimestamp(Timestamp), TraceId)
SETTINGS index_granularity=8192, ttl_only_drop_parts = 1"""

OLD_LOOKUP = """create table IF NOT EXISTS {db}.otel_traces_trace_id_ts (
     TraceId String CODEC(ZSTD(1)),
     Start DateTime64(9) CODEC(Delta, ZSTD(1)),
     End DateTime64(9) CODEC(Delta, ZSTD(1)),
     INDEX idx_trace_id TraceId TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE MergeTree()

ORDER BY (TraceId, toUnixTimestamp(Start))
SETTINGS index_granularity=8192"""

OLD_VIEW = """CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.otel_traces_trace_id_ts_mv
TO {db}.otel_traces_trace_id_ts
AS SELECT
TraceId,
min(Timestamp) as Start,
max(Timestamp) as End
FROM
{db}.otel_traces
WHERE TraceId!=''
GROUP BY TraceId"""

SCHEMAS = {
    "current-bloom": (CURRENT_BLOOM, CURRENT_LOOKUP, CURRENT_VIEW),
    "current-text": (CURRENT_TEXT, CURRENT_LOOKUP, CURRENT_VIEW),
    "2023": (OLD_TRACES, OLD_LOOKUP, OLD_VIEW),
}


# -- writing rows the way the Collector's exporter does ------------------------------------


def _as_string(value: AttributeValue) -> str:
    """pcommon.Value.AsString: what the exporter puts in its string maps."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if math.isfinite(value) and value.is_integer() else repr(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(list(value), separators=(",", ":"))


def _map(attributes: Attributes) -> dict[str, str]:
    return {key: _as_string(value) for key, value in attributes.items()}


def _seconds(ns: int) -> str:
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def collector_row(span: Span, *, old_spelling: bool, scope_column: bool) -> dict[str, Any]:
    """One row as the exporter's INSERT writes it for ``span``."""
    kind = f"SPAN_KIND_{span.kind.name}" if old_spelling else span.kind.name.title()
    status = f"STATUS_CODE_{span.status.name}" if old_spelling else span.status.name.title()
    attributes = _map(span.attributes)
    row: dict[str, Any] = {
        "Timestamp": _seconds(span.start_ns),
        "TraceId": span.trace_id,
        "SpanId": span.span_id,
        "ParentSpanId": span.parent_span_id or "",
        "TraceState": "",
        "SpanName": span.name,
        "SpanKind": kind,
        "ServiceName": span.service,
        "ResourceAttributes": {**_map(span.resource), "service.name": span.service},
        "Duration": span.end_ns - span.start_ns,
        "StatusCode": status,
        "StatusMessage": span.status_message,
        "Events.Timestamp": [_seconds(e.time_ns) for e in span.events],
        "Events.Name": [e.name for e in span.events],
        "Events.Attributes": [_map(e.attributes) for e in span.events],
        "Links.TraceId": [k.trace_id for k in span.links],
        "Links.SpanId": [k.span_id for k in span.links],
        "Links.TraceState": ["" for _ in span.links],
        "Links.Attributes": [_map(k.attributes) for k in span.links],
    }
    if scope_column:
        row.update(ScopeName=span.scope, ScopeVersion="", SpanAttributes=attributes)
    else:  # the 2023 exporter folded the scope into the span's attributes
        row["SpanAttributes"] = (
            {**attributes, "otel.scope.name": span.scope} if span.scope else attributes
        )
    return row


@pytest.fixture(params=list(SCHEMAS))
def collector_table(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """A database holding the exporter's tables in one of its shapes: (schema, database)."""
    database = fresh_database("otel")
    backend = engine()
    backend.command(f"CREATE DATABASE `{database}`")
    for statement in SCHEMAS[request.param]:
        backend.command(statement.format(db=database))
    yield request.param, database
    backend.command(f"DROP DATABASE IF EXISTS `{database}`")


def _fill(schema: str, database: str, spans: tuple[Span, ...]) -> None:
    old = schema == "2023"
    rows = [collector_row(s, old_spelling=old, scope_column=not old) for s in spans]
    engine().insert(f"`{database}`.`otel_traces`", rows)


def _open(database: str) -> ClickHouseStore:
    return open_clickhouse(f"chdb://{ENGINE_PATH}?database={database}&create_schema=0")


def test_reads_the_collectors_rows_where_they_lie(collector_table: tuple[str, str]) -> None:
    schema, database = collector_table
    workflow = order_flow()
    _fill(schema, database, workflow.spans)
    with _open(database) as store:
        assert store.span_count() == len(workflow.spans)
        stored = store.spans_of_traces(workflow.trace_ids)
        by_key = {s.key: s for s in stored}
        assert set(by_key) == {s.key for s in workflow.spans}
        for original in workflow.spans:
            back = by_key[original.key]
            assert (back.kind, back.status, back.parent_span_id) == (
                original.kind,
                original.status,
                original.parent_span_id,
            )
            assert (back.start_ns, back.end_ns, back.name, back.service, back.scope) == (
                original.start_ns,
                original.end_ns,
                original.name,
                original.service,
                original.scope,
            )
            assert [(e.name, e.time_ns) for e in back.events] == [
                (e.name, e.time_ns) for e in original.events
            ]
            assert [(k.trace_id, k.span_id) for k in back.links] == [
                (k.trace_id, k.span_id) for k in original.links
            ]
            # Only string maps survive the Collector; the conventional numeric keys parse back.
            for key, value in original.attributes.items():
                expected = value if key == "tracebraid.attempt" else _as_string(value)
                if isinstance(value, bool) and key == "tracebraid.dead_letter":
                    expected = value
                assert back.attributes.get(key) == expected, key


def test_identity_look_ups_on_a_table_tracebraid_never_migrated(
    collector_table: tuple[str, str],
) -> None:
    schema, database = collector_table
    workflow = order_flow()
    _fill(schema, database, workflow.spans)
    with _open(database) as store:
        assert not store.status.identities
        correlation = store.spans_of_correlation(workflow.correlation_id)  # type: ignore[arg-type]
        assert {s.key for s in correlation} == {
            s.key
            for s in workflow.spans
            if s.attributes.get("messaging.message.conversation_id") == workflow.correlation_id
        }
        event = workflow.events["order.placed"]
        assert {s.key for s in store.spans_by_event(event)} == {
            s.key
            for s in workflow.spans
            if event
            in (
                s.attributes.get("messaging.message.id"),
                s.attributes.get("tracebraid.causation_id"),
            )
        }


def test_demo_workflow_analyses_the_same_as_from_sqlite(
    collector_table: tuple[str, str], tmp_path: Path
) -> None:
    """Branches, attempts, latency and the critical path: equal, from either store."""
    schema, database = collector_table
    workflow = order_flow()
    _fill(schema, database, workflow.spans)
    sqlite = SqliteStore(tmp_path / "spans.db")
    sqlite.write(workflow.spans)
    with _open(database) as clickhouse:
        from_clickhouse = analyze(clickhouse.spans_of_traces(workflow.trace_ids), now_ns=NOW)
    from_sqlite = analyze(sqlite.spans_of_traces(workflow.trace_ids), now_ns=NOW)
    sqlite.close()
    # WorkflowAnalysis compares by its findings (the graph takes no part).
    assert from_clickhouse == from_sqlite
    assert from_clickhouse.branches == from_sqlite.branches
    assert from_clickhouse.critical_path == from_sqlite.critical_path
    webhook = [b for b in from_clickhouse.branches if b.step == "send-warehouse-webhook"]
    assert [len(b.attempts) for b in webhook] == [3]
    assert from_clickhouse.critical_path.steps[-1].span.name == "send-warehouse-webhook"
