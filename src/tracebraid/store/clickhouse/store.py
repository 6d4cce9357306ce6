"""``ClickHouseStore``: the ``SpanStore`` over the Collector exporter's ``otel_traces``.

Idempotency without a unique key. ``otel_traces`` is a plain ``MergeTree`` (the
exporter's engine, which tracebraid must not change: the Collector writes the
same table), so nothing in ClickHouse stops a span from being stored twice. A
``ReplacingMergeTree`` would only collapse copies at some later merge, and a
second "seen" table would be one more write per span. Instead, two cheap guards:

* insert side: before a batch is inserted, the spans of it already stored are
  looked up (trace IDs via the ``_trace_id_ts`` lookup's primary key, then span
  IDs within the batch's time range) and skipped, under a lock, so one process
  never stores a span twice;
* read side: every read ends in ``LIMIT 1 BY TraceId, SpanId``, so a copy that
  slips through (two collectors racing on one replay) never shows twice.

Example::

    >>> store = open_clickhouse("chdb:///:memory:?database=doc")
    >>> store.write([]).inserted
    0
    >>> store.close()
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Any

from tracebraid.errors import InputError, StoreError
from tracebraid.model import (
    CorrelationId,
    EventId,
    Span,
    SpanId,
    TraceId,
    is_valid_span_id,
    is_valid_trace_id,
)
from tracebraid.store.aggregates import ConsumerRetries, QueueWait, ServiceIslands, WorkflowSummary
from tracebraid.store.base import TraceSummary, WriteResult
from tracebraid.store.clickhouse import fleet
from tracebraid.store.clickhouse.backends import Backend, ChdbBackend, HttpBackend, Params
from tracebraid.store.clickhouse.codec import row_from_span, span_from_row
from tracebraid.store.clickhouse.lookups import (
    Lookup,
    chunked,
    spans_by_identity,
    trace_ids_by_identity,
)
from tracebraid.store.clickhouse.migrate import create_exporter_tables
from tracebraid.store.clickhouse.queries import ns_param, spans_where, trace_summaries
from tracebraid.store.clickhouse.schema import TableNames
from tracebraid.store.clickhouse.status import SchemaStatus, read_status
from tracebraid.store.clickhouse.url import ClickHouseUrl, parse_url

__all__ = ["ClickHouseStore", "open_clickhouse"]

log = logging.getLogger("tracebraid.store.clickhouse")

_FIRST_WINDOW_NS = 60 * 1_000_000_000
_TRACE_ID_PAGE = 10_000


class ClickHouseStore:
    """Spans in ClickHouse, in the schema of the OpenTelemetry Collector's exporter.

    Open it with ``open_clickhouse(url)`` or ``tracebraid.store.open_store(url)``.
    Reads work on a table only the Collector ever wrote; ``tracebraid migrate``
    adds the identity table that makes correlation, event and link look-ups fast.
    """

    def __init__(
        self,
        backend: Backend,
        names: TableNames,
        *,
        create_schema: bool = True,
        ttl_days: int | None = None,
    ) -> None:
        self._backend = backend
        self.names = names
        self._write_lock = threading.Lock()
        status = read_status(backend, names)
        if not status.traces:
            if not create_schema:
                raise StoreError(
                    f"{backend.description} has no table {names.traces}; create it with "
                    "`tracebraid migrate --store URL` or let the Collector's exporter create it"
                )
            create_exporter_tables(backend, names, ttl_days=ttl_days)
            log.info("created the Collector exporter's tables in %s", backend.description)
            status = read_status(backend, names)
        self.status: SchemaStatus = status
        for gap in status.missing:
            log.warning(
                "%s lacks the %s; run `tracebraid migrate --store URL` to add it",
                backend.description,
                gap,
            )

    @property
    def backend(self) -> Backend:
        """The connection (for ``migrate`` and the bench)."""
        return self._backend

    def refresh_status(self) -> SchemaStatus:
        """Re-read which tables exist (after ``migrate``)."""
        self.status = read_status(self._backend, self.names)
        return self.status

    # -- writing ---------------------------------------------------------------

    def write(self, spans: Sequence[Span]) -> WriteResult:
        """Store ``spans``; spans already stored (same trace and span ID) are skipped."""
        for span in spans:
            if not (is_valid_trace_id(span.trace_id) and is_valid_span_id(span.span_id)):
                raise InputError(
                    f"span {span.name!r} has trace ID {span.trace_id!r} and span ID "
                    f"{span.span_id!r}; IDs must be lowercase hex (32 and 16 characters, "
                    "not all zero). Nothing of this batch was stored."
                )
        unique = {span.key: span for span in reversed(spans)}  # first occurrence wins
        with self._write_lock:
            stored = self._stored_keys(list(unique.values()))
            fresh = [span for key, span in unique.items() if key not in stored]
            fresh.sort(key=lambda span: span.start_ns)
            self._backend.insert(self.names.traces, [row_from_span(span) for span in fresh])
        return WriteResult(inserted=len(fresh), duplicates=len(spans) - len(fresh))

    def _stored_keys(self, spans: Sequence[Span]) -> set[tuple[str, str]]:
        if not spans:
            return set()
        trace_ids = sorted({span.trace_id for span in spans})
        if self.status.lookup:
            known = self._backend.rows(
                f"SELECT DISTINCT TraceId FROM {self.names.lookup} "
                "WHERE TraceId IN {traces:Array(String)}",
                {"traces": trace_ids},
            )
            trace_ids = sorted(row[0] for row in known)
            if not trace_ids:
                return set()
        # A replay carries the same start time, so the batch's start range bounds the search.
        rows = self._backend.rows(
            f"SELECT DISTINCT TraceId, SpanId FROM {self.names.traces} "
            "WHERE TraceId IN {traces:Array(String)} AND SpanId IN {spans:Array(String)} "
            f"AND Timestamp >= {ns_param('lo')} AND Timestamp <= {ns_param('hi')}",
            {
                "traces": trace_ids,
                "spans": sorted({span.span_id for span in spans}),
                "lo": min(span.start_ns for span in spans),
                "hi": max(span.start_ns for span in spans),
            },
        )
        return {(row[0], row[1]) for row in rows}

    # -- reading ---------------------------------------------------------------

    def _spans(self, condition: str, params: Params) -> list[Span]:
        sql = spans_where(self.names, condition, scope_columns=self.status.scope_columns)
        return [span_from_row(row) for row in self._backend.rows(sql, params)]

    def spans_of_trace(self, trace_id: TraceId) -> list[Span]:
        """Every span of one trace, in start order."""
        params: dict[str, Any] = {"trace": trace_id}
        if self.status.lookup:
            # The exporter orders otel_traces by service and time, so the lookup's time
            # range is what lets ClickHouse skip the granules the trace is not in. The
            # bounds go in as constants: as a subquery they would not prune anything.
            [[lower, upper]] = self._backend.rows(
                "SELECT toUnixTimestamp(min(Start)), toUnixTimestamp(max(End)) "
                f"FROM {self.names.lookup} WHERE TraceId = {{trace:String}}",
                params,
            )
            if int(upper) > 0:
                spans = self._spans(
                    "TraceId = {trace:String} "
                    "AND toDateTime(Timestamp) >= toDateTime({lower:UInt32}) "
                    "AND toDateTime(Timestamp) <= toDateTime({upper:UInt32})",
                    {**params, "lower": int(lower), "upper": int(upper)},
                )
                if spans:
                    return spans
        return self._spans("TraceId = {trace:String}", params)

    def spans_of_traces(self, trace_ids: Collection[TraceId]) -> list[Span]:
        """Every span of the given traces, in start order (one query per ``CHUNK`` traces)."""
        spans: list[Span] = []
        for chunk in chunked(trace_ids):
            spans.extend(self._spans("TraceId IN {traces:Array(String)}", {"traces": chunk}))
        spans.sort(key=lambda s: (s.start_ns, s.trace_id, s.span_id))
        return spans

    def _by_identity(self, lookup: Lookup, values: Iterable[str]) -> list[Span]:
        return spans_by_identity(self._backend, self.names, self.status, lookup, values)

    def spans_of_correlation(self, correlation_id: CorrelationId) -> list[Span]:
        """Every span carrying this correlation ID, in start order."""
        return self._by_identity("correlation", (correlation_id,))

    def spans_by_event(self, event_id: EventId) -> list[Span]:
        """Every span whose event ID or causation ID is ``event_id``, in start order."""
        return self._by_identity("event", (event_id,))

    def spans_by_events(self, event_ids: Collection[EventId]) -> list[Span]:
        """Every span whose event ID or causation ID is one of ``event_ids``, in start
        order (two queries per 1,000 events after migration, one without)."""
        return self._by_identity("event", event_ids)

    def spans_linking_to(self, trace_id: TraceId, span_id: SpanId) -> list[Span]:
        """Every span holding a link to (``trace_id``, ``span_id``), in start order."""
        return self._by_identity("link", (trace_id + span_id,))

    def trace_ids_with(
        self,
        *,
        correlation_ids: Collection[CorrelationId] = (),
        event_ids: Collection[EventId] = (),
        link_targets: Collection[tuple[TraceId, SpanId]] = (),
    ) -> set[TraceId]:
        """The traces holding a span that carries one of ``correlation_ids``, whose event
        or causation ID is one of ``event_ids``, or that links to one of ``link_targets``:
        one query per 1,000 keys of a kind, all kinds in the same query."""
        return trace_ids_by_identity(
            self._backend,
            self.names,
            self.status,
            {
                "correlation": correlation_ids,
                "event": event_ids,
                "link": [trace_id + span_id for trace_id, span_id in link_targets],
            },
        )

    def recent_traces(self, limit: int = 50, before_ns: int | None = None) -> list[TraceSummary]:
        """The most recently started traces, newest first, started before ``before_ns``.

        Looks back from ``before_ns`` through a window that grows until it holds
        ``limit`` traces that start inside it, so a page reads recent partitions only.
        """
        if limit <= 0:
            return []
        bound = f"WHERE Timestamp < {ns_param('upper')}" if before_ns is not None else ""
        params: dict[str, Any] = {"upper": before_ns} if before_ns is not None else {}
        [[oldest, newest, count]] = self._backend.rows(
            "SELECT toUnixTimestamp64Nano(min(Timestamp)), toUnixTimestamp64Nano(max(Timestamp)), "
            f"count() FROM {self.names.traces} {bound}",
            params,
        )
        if not count:
            return []
        upper = before_ns if before_ns is not None else int(newest) + 1
        window = _FIRST_WINDOW_NS
        while True:
            lower = upper - window
            candidates = [
                row[0]
                for row in self._backend.rows(
                    f"SELECT DISTINCT TraceId FROM {self.names.traces} WHERE TraceId != '' "
                    f"AND Timestamp >= {ns_param('lo')} AND Timestamp < {ns_param('hi')}",
                    {"lo": lower, "hi": upper},
                )
            ]
            summaries = [
                summary
                for summary in self._summaries(candidates)
                if lower <= summary.start_ns < upper
            ]
            if len(summaries) >= limit or lower <= int(oldest):
                break
            window *= 8
        summaries.sort(key=lambda s: (-s.start_ns, s.trace_id))
        return summaries[:limit]

    def _summaries(self, trace_ids: Sequence[str]) -> list[TraceSummary]:
        if not trace_ids:
            return []
        rows = self._backend.rows(trace_summaries(self.names), {"traces": sorted(trace_ids)})
        return [
            TraceSummary(
                trace_id=TraceId(row[0]),
                root_name=row[5],
                root_service=row[6],
                start_ns=int(row[1]),
                end_ns=int(row[2]),
                span_count=int(row[3]),
                error_count=int(row[4]),
                correlation_ids=tuple(CorrelationId(c) for c in row[7]),
            )
            for row in rows
        ]

    def iter_trace_ids(self) -> Iterator[TraceId]:
        """Every stored trace ID, in ID order, paged by key so any query may run in between."""
        source = self.names.lookup if self.status.lookup else self.names.traces
        after = ""
        while True:
            page = self._backend.rows(
                f"SELECT DISTINCT TraceId FROM {source} WHERE TraceId > {{after:String}} "
                f"ORDER BY TraceId LIMIT {_TRACE_ID_PAGE}",
                {"after": after},
            )
            for row in page:
                yield TraceId(row[0])
            if len(page) < _TRACE_ID_PAGE:
                return
            after = page[-1][0]

    def span_count(self) -> int:
        """How many distinct spans are stored (copies of one span count once)."""
        [[count]] = self._backend.rows(
            f"SELECT uniqExact(TraceId, SpanId) FROM {self.names.traces}"
        )
        return int(count)

    # -- fleet aggregates, pushed down as SQL -----------------------------------

    def retry_counts(
        self, since_ns: int | None = None, until_ns: int | None = None
    ) -> list[ConsumerRetries]:
        """Deliveries, attempts and retries per consumer, busiest first."""
        return fleet.retry_counts(self._backend, self.names, since_ns, until_ns)

    def queue_wait_percentiles(
        self, since_ns: int | None = None, until_ns: int | None = None
    ) -> list[QueueWait]:
        """Queue wait (consumer start - producer end) percentiles per destination."""
        return fleet.queue_wait_percentiles(self._backend, self.names, since_ns, until_ns)

    def islands_per_service(
        self, since_ns: int | None = None, until_ns: int | None = None
    ) -> list[ServiceIslands]:
        """Traces rooted at a consumer span although their event was produced elsewhere."""
        return fleet.islands_per_service(self._backend, self.names, since_ns, until_ns)

    def recent_workflows(
        self,
        limit: int = 50,
        before_ns: int | None = None,
        *,
        service: str | None = None,
        failed_only: bool = False,
        retried_only: bool = False,
    ) -> list[WorkflowSummary]:
        """The most recently started workflows (correlation IDs), newest first."""
        return fleet.recent_workflows(
            self._backend,
            self.names,
            limit,
            before_ns,
            service=service,
            failed_only=failed_only,
            retried_only=retried_only,
        )

    def close(self) -> None:
        """Release the connection; closing twice is a no-op."""
        self._backend.close()

    def __enter__(self) -> ClickHouseStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ClickHouseStore({self._backend.description!r}, table={self.names.traces!r})"


def connect(url: ClickHouseUrl) -> Backend:
    """The backend a parsed URL names."""
    if url.scheme == "chdb":
        backend: Backend = ChdbBackend.open(url.path)
        backend.command(f"CREATE DATABASE IF NOT EXISTS `{TableNames(url.database).database}`")
        return backend
    return HttpBackend.connect(
        host=url.host,
        port=url.port,
        username=url.username,
        password=url.password,
        database=url.database,
        secure=url.secure,
    )


def open_clickhouse(url: str) -> ClickHouseStore:
    """Open the store a ``clickhouse://`` or ``chdb://`` URL names (see ``url.parse_url``)."""
    parsed = parse_url(url)
    names = TableNames(parsed.database, parsed.table)
    backend = connect(parsed)
    try:
        return ClickHouseStore(
            backend, names, create_schema=parsed.create_schema, ttl_days=parsed.ttl_days
        )
    except BaseException:
        backend.close()
        raise
