"""The ClickHouse store: tracebraid over the OpenTelemetry Collector's ``otel_traces``.

Needs the ``clickhouse`` extra (``pip install 'tracebraid[clickhouse]'``):
clickhouse-connect for ``clickhouse://user:pass@host:8123/db``, chDB for
``chdb:///path`` (ClickHouse in-process; one path per process).

Example::

    >>> store = open_clickhouse("chdb:///:memory:?database=doc_pkg")
    >>> store.span_count()
    0
    >>> store.close()
"""

from __future__ import annotations

from tracebraid.store.clickhouse.backends import Backend, ChdbBackend, HttpBackend
from tracebraid.store.clickhouse.migrate import MigrationStep, migrate, migrate_url
from tracebraid.store.clickhouse.schema import TableNames, addition_ddl, exporter_ddl
from tracebraid.store.clickhouse.status import SchemaStatus
from tracebraid.store.clickhouse.store import ClickHouseStore, open_clickhouse
from tracebraid.store.clickhouse.url import SCHEMES, ClickHouseUrl, parse_url

__all__ = [
    "SCHEMES",
    "Backend",
    "ChdbBackend",
    "ClickHouseStore",
    "ClickHouseUrl",
    "HttpBackend",
    "MigrationStep",
    "SchemaStatus",
    "TableNames",
    "addition_ddl",
    "exporter_ddl",
    "migrate",
    "migrate_url",
    "open_clickhouse",
    "parse_url",
]
