"""What a ClickHouse database holds of the schema, and what the store does without the rest.

Example::

    >>> SchemaStatus(True, True, False, True, False).missing
    ('tracebraid identity table (correlation, event and link look-ups scan otel_traces)',)
"""

from __future__ import annotations

from dataclasses import dataclass

from tracebraid.store.clickhouse.backends import Backend
from tracebraid.store.clickhouse.schema import TableNames

__all__ = ["SchemaStatus", "read_status", "server_version"]


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """Which tables and columns exist; read once when a store opens."""

    traces: bool
    """``otel_traces`` itself."""
    lookup: bool
    """The exporter's ``otel_traces_trace_id_ts``: bounds trace fetches to their time range."""
    identities: bool
    """tracebraid's identity table (``tracebraid migrate``): correlation/event/link look-ups."""
    scope_columns: bool
    """``ScopeName``/``ScopeVersion`` columns (exporters before 2024 lack them)."""
    attribute_items: bool
    """The ``SpanAttributeItems`` alias column that the exporter's text indexes cover."""

    @property
    def missing(self) -> tuple[str, ...]:
        """What is absent and what that costs, one line each; empty when complete."""
        gaps = []
        if not self.traces:
            gaps.append("otel_traces table")
        if not self.lookup:
            gaps.append("otel_traces_trace_id_ts lookup (trace fetches scan by bloom filter)")
        if not self.identities:
            gaps.append(
                "tracebraid identity table (correlation, event and link look-ups scan otel_traces)"
            )
        return tuple(gaps)


def read_status(backend: Backend, names: TableNames) -> SchemaStatus:
    """Ask ``system.tables`` and ``system.columns`` what ``names`` has."""
    params = {"db": names.database, "t": names.bare()}
    tables = {
        row[0]
        for row in backend.rows(
            "SELECT name FROM system.tables WHERE database = {db:String}", params
        )
    }
    columns = {
        row[0]
        for row in backend.rows(
            "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String}",
            params,
        )
    }
    return SchemaStatus(
        traces=names.bare() in tables,
        lookup=names.bare("_trace_id_ts") in tables,
        identities=names.bare("_tracebraid_ids") in tables,
        scope_columns="ScopeName" in columns,
        attribute_items="SpanAttributeItems" in columns,
    )


def server_version(backend: Backend) -> tuple[int, int]:
    """The server's (major, minor) version."""
    text = str(backend.rows("SELECT version()")[0][0])
    major, minor, *_ = (int(part) for part in [*text.split(".")[:2], "0", "0"])
    return major, minor
