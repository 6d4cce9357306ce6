"""The ``otel_traces`` schema: the Collector exporter's DDL, and tracebraid's additions.

``exporter_ddl`` is what the OpenTelemetry Collector's ClickHouse exporter
(``exporter/clickhouseexporter``, ``internal/sqltemplates/traces_*.sql``) runs when
it starts with ``create_schema`` on: the ``otel_traces`` table, the
``otel_traces_trace_id_ts`` lookup table and the materialised view that feeds it.
Its templated parts are filled for one node: ``MergeTree()`` (the lookup table's
``AggregatingMergeTree()``), no ``ON CLUSTER``, TTL optional. On ClickHouse 26.2
and later the exporter uses ``text`` indexes instead of bloom filters; both
variants are here, chosen by ``full_text_search``.

``addition_ddl`` is tracebraid's own: one side table mapping the identities
tracebraid looks spans up by (correlation ID, every strong message identity and
causation ID as the messaging vocabulary reads them, linked span) to the spans
that carry them, fed by a materialised view, so rows the Collector
writes are indexed as well as tracebraid's. Only ``tracebraid migrate`` creates
it (``tracebraid.store.clickhouse.migrate``); reads work without it, by scanning.

Example::

    >>> names = TableNames(database="otel", table="otel_traces")
    >>> names.lookup
    '`otel`.`otel_traces_trace_id_ts`'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tracebraid import semconv
from tracebraid.errors import ConfigurationError
from tracebraid.store.clickhouse import vocabulary as v

__all__ = [
    "FULL_TEXT_SEARCH_SINCE",
    "IDENTITY_KINDS",
    "TableNames",
    "addition_ddl",
    "attribute_expr",
    "exporter_ddl",
    "identity_select",
    "lookup_ddl",
]

FULL_TEXT_SEARCH_SINCE = (26, 2)
"""The ClickHouse version from which the exporter creates ``text`` indexes."""

IDENTITY_KINDS = ("correlation", "event", "causation", "link")
"""The ``Kind`` values of tracebraid's identity table."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _quote(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ConfigurationError(
            f"{name!r} is not a plain ClickHouse identifier; use letters, digits and '_'"
        )
    return f"`{name}`"


@dataclass(frozen=True, slots=True)
class TableNames:
    """The quoted names of every table and view the store touches, derived from one table."""

    database: str
    table: str = "otel_traces"

    def __post_init__(self) -> None:
        _quote(self.database)
        _quote(self.table)

    def _name(self, suffix: str) -> str:
        return f"{_quote(self.database)}.{_quote(self.table + suffix)}"

    @property
    def traces(self) -> str:
        return self._name("")

    @property
    def lookup(self) -> str:
        return self._name("_trace_id_ts")

    @property
    def lookup_view(self) -> str:
        return self._name("_trace_id_ts_mv")

    @property
    def identities(self) -> str:
        return self._name("_tracebraid_ids")

    @property
    def identities_view(self) -> str:
        return self._name("_tracebraid_ids_mv")

    def bare(self, suffix: str = "") -> str:
        """The unquoted table name with ``suffix``, as ``system.tables`` lists it."""
        return self.table + suffix


def _ttl(expression: str, ttl_days: int | None) -> str:
    return f"TTL {expression} + toIntervalDay({ttl_days})" if ttl_days else ""


def exporter_ddl(
    names: TableNames, *, full_text_search: bool, ttl_days: int | None = None
) -> tuple[str, ...]:
    """The statements the Collector's exporter runs for traces, in order."""
    if full_text_search:
        indexes = """
    INDEX idx_trace_id TraceId TYPE text(tokenizer = 'array'),
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE text(tokenizer = 'array'),
    INDEX idx_res_attr_items ResourceAttributeItems TYPE text(tokenizer = 'array'),
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE text(tokenizer = 'array'),
    INDEX idx_span_attr_items SpanAttributeItems TYPE text(tokenizer = 'array'),"""
    else:
        indexes = """
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,"""
    traces = f"""CREATE TABLE IF NOT EXISTS {names.traces} (
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
    SpanAttributeItems Array(String) ALIAS arrayMap(kv -> concat(kv.1, '=', kv.2), CAST(SpanAttributes, 'Array(Tuple(String, String))')),{indexes}
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1,
    INDEX idx_lower_span_name lower(SpanName) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8
) ENGINE = MergeTree()
PARTITION BY toDate(Timestamp)
PRIMARY KEY (ServiceName, SpanName, toDateTime(Timestamp))
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp), Timestamp)
{_ttl("toDateTime(Timestamp)", ttl_days)}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1"""  # noqa: E501 - the exporter's text
    return (traces, *lookup_ddl(names, ttl_days=ttl_days))


def lookup_ddl(names: TableNames, *, ttl_days: int | None = None) -> tuple[str, str]:
    """The exporter's trace-ID lookup table and the view that feeds it."""
    table = f"""CREATE TABLE IF NOT EXISTS {names.lookup} (
    TraceId String CODEC(ZSTD(1)),
    Start SimpleAggregateFunction(min, DateTime) CODEC(ZSTD(1)),
    End SimpleAggregateFunction(max, DateTime) CODEC(ZSTD(1))
) ENGINE = AggregatingMergeTree()
PARTITION BY toStartOfWeek(Start)
ORDER BY (TraceId)
{_ttl("toDateTime(Start)", ttl_days)}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1"""
    view = f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {names.lookup_view}
TO {names.lookup}
AS SELECT
    TraceId,
    min(toDateTime(Timestamp)) AS Start,
    max(toDateTime(Timestamp)) AS End
FROM {names.traces}
WHERE TraceId != ''
GROUP BY TraceId"""
    return table, view


def attribute_expr(canonical: str, column: str = "SpanAttributes") -> str:
    """SQL for ``semconv.first_of(column, canonical)``: the first non-empty alias, or ''."""
    keys = semconv.ALIASES.get(canonical, (canonical,))
    unique = list(dict.fromkeys(keys))
    if len(unique) == 1:
        return f"{column}['{unique[0]}']"
    branches = ", ".join(f"{column}['{key}'] != '', {column}['{key}']" for key in unique)
    return f"multiIf({branches}, '')"


def _identity_pairs() -> str:
    pairs = f"[('correlation', {v.CORRELATION}), ('causation', {v.CAUSATION})]"
    events = f"arrayMap(i -> ('event', i), {v.IDENTITIES})"
    links = "arrayMap((t, s) -> ('link', concat(t, s)), LinkTraces, LinkSpans)"
    return f"arrayConcat({pairs}, {events}, {links})"


def identity_select(names: TableNames) -> str:
    """The SELECT that turns ``otel_traces`` rows into identity rows (view and backfill):
    each row read once through the messaging vocabulary's SQL (``vocabulary.VIEW``)."""
    return f"""SELECT identity.1 AS Kind, identity.2 AS Value, TraceId, SpanId, Timestamp
FROM (
    SELECT TraceId, SpanId, Timestamp, Links.TraceId AS LinkTraces,
        Links.SpanId AS LinkSpans, {v.VIEW}
    FROM {names.traces}
)
ARRAY JOIN arrayFilter(pair -> pair.2 != '', {_identity_pairs()}) AS identity"""


def addition_ddl(names: TableNames, *, ttl_days: int | None = None) -> tuple[str, str]:
    """tracebraid's identity table and the view that feeds it (created by migration only)."""
    table = f"""CREATE TABLE IF NOT EXISTS {names.identities} (
    Kind LowCardinality(String) CODEC(ZSTD(1)),
    Value String CODEC(ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1))
) ENGINE = MergeTree()
PARTITION BY toStartOfWeek(Timestamp)
ORDER BY (Kind, Value, TraceId, SpanId)
{_ttl("toDateTime(Timestamp)", ttl_days)}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1"""
    view = f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {names.identities_view}
TO {names.identities}
AS {identity_select(names)}"""
    return table, view
