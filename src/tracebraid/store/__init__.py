"""Where finished spans live: the embedded SQLite store, and ClickHouse at scale.

``open_store(url)`` turns a ``--store`` URL into a ``SpanStore``; ``load_workflow``
gathers every span of one business workflow across traces; ``search_traces`` pages
through stored traces by what operators filter on; ``FleetAggregates`` are the
fleet-wide answers a store computes in its own engine (``SqliteAggregates`` for the
embedded store, the ClickHouse store itself).
``tracebraid.store.exporter.StoreSpanExporter`` writes an OpenTelemetry SDK's
finished spans straight into a store (not imported here, so a collector process
that only stores spans never loads the SDK side).

Example::

    >>> store = open_store("sqlite:///:memory:")
    >>> store.write([])
    WriteResult(inserted=0, duplicates=0)
"""

from tracebraid.store.aggregates import (
    ConsumerRetries,
    FleetAggregates,
    QueueWait,
    ServiceIslands,
    WorkflowSummary,
)
from tracebraid.store.aggregates_sqlite import SqliteAggregates
from tracebraid.store.base import (
    SharedWrites,
    SpanStore,
    StoreReopener,
    TraceSummary,
    WriteResult,
)
from tracebraid.store.registry import STORE_SCHEMES, open_store, register_store
from tracebraid.store.search import SearchPage, TraceFacts, TraceHit, TraceQuery, search_traces
from tracebraid.store.sqlite import SqliteStore
from tracebraid.store.workflow import WorkflowSpans, fetch_workflow, load_workflow

__all__ = [
    "STORE_SCHEMES",
    "ConsumerRetries",
    "FleetAggregates",
    "QueueWait",
    "SearchPage",
    "ServiceIslands",
    "SharedWrites",
    "SpanStore",
    "SqliteAggregates",
    "SqliteStore",
    "StoreReopener",
    "TraceFacts",
    "TraceHit",
    "TraceQuery",
    "TraceSummary",
    "WorkflowSpans",
    "WorkflowSummary",
    "WriteResult",
    "fetch_workflow",
    "load_workflow",
    "open_store",
    "register_store",
    "search_traces",
]
