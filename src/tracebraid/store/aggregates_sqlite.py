"""Fleet aggregates for the embedded SQLite store, as SQL run inside SQLite.

The same definitions (``tracebraid.store.aggregates``) and the same numbers as
the ClickHouse store's, over the ``spans`` table's identity columns. Percentiles
are nearest-rank, taken with window functions, so only one row per destination
leaves the database.

Example::

    >>> from tracebraid.store.sqlite import SqliteStore
    >>> store = SqliteStore(":memory:")
    >>> SqliteAggregates(store).retry_counts()
    []
    >>> store.close()
"""

from __future__ import annotations

import json
from typing import Any

from tracebraid.model import CorrelationId, SpanKind, StatusCode
from tracebraid.store.aggregates import ConsumerRetries, QueueWait, ServiceIslands, WorkflowSummary
from tracebraid.store.sqlite import SqliteStore

__all__ = ["SqliteAggregates"]

_CONSUMER = int(SpanKind.CONSUMER)
_PRODUCER = int(SpanKind.PRODUCER)
_ERROR = int(StatusCode.ERROR)


def _window(since_ns: int | None, until_ns: int | None, column: str = "start_ns") -> str:
    bounds = []
    if since_ns is not None:
        bounds.append(f"{column} >= :since")
    if until_ns is not None:
        bounds.append(f"{column} < :until")
    return "".join(f" AND {bound}" for bound in bounds)


def _rank(per_mille: int) -> str:
    # Nearest rank, 1-based: ceil(fraction * n), in integers.
    return f"max(CASE WHEN rn = max(1, ({per_mille} * n + 999) / 1000) THEN wait END)"


class SqliteAggregates:
    """``FleetAggregates`` for a ``SqliteStore``: ``SqliteAggregates(store).retry_counts()``."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def _rows(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return self._store.query(sql, params)

    def retry_counts(
        self, since_ns: int | None = None, until_ns: int | None = None
    ) -> list[ConsumerRetries]:
        """Deliveries, attempts and retries per consumer, most retries first."""
        sql = f"""SELECT consumer, count(*), sum(attempts), sum(attempts - 1), sum(failed),
       max(attempts)
FROM (
    SELECT coalesce(nullif(consumer, ''), service) AS consumer,
           coalesce(nullif(event_id, ''), trace_id || span_id) AS delivery,
           max(count(*), coalesce(max(attempt), 0)) AS attempts,
           sum(status = {_ERROR}) AS failed
    FROM spans WHERE kind = {_CONSUMER}{_window(since_ns, until_ns)}
    GROUP BY 1, 2
)
GROUP BY consumer
ORDER BY sum(attempts - 1) DESC, consumer"""
        rows = self._rows(sql, {"since": since_ns, "until": until_ns})
        return [ConsumerRetries(row[0], *(int(value) for value in row[1:])) for row in rows]

    def queue_wait_percentiles(
        self, since_ns: int | None = None, until_ns: int | None = None
    ) -> list[QueueWait]:
        """Queue-wait percentiles per destination, slowest p99 first."""
        sql = f"""WITH firsts AS (
    SELECT coalesce(nullif(consumer, ''), service) AS consumer,
           CASE WHEN coalesce(event_id, '') != '' THEN 'e:' || event_id
                ELSE 's:' || trace_id || coalesce(parent_span_id, '') END AS key,
           min(start_ns) AS first_start,
           destination  -- SQLite takes a bare column from the row min() chose
    FROM spans WHERE kind = {_CONSUMER}{_window(since_ns, until_ns)}
    GROUP BY 1, 2
), producers AS (
    SELECT key, min(end_ns) AS producer_end, destination FROM (
        SELECT 'e:' || event_id AS key, end_ns, destination FROM spans
        WHERE kind = {_PRODUCER} AND coalesce(event_id, '') != ''
        UNION ALL
        SELECT 's:' || trace_id || span_id, end_ns, destination FROM spans
        WHERE kind = {_PRODUCER}
    ) GROUP BY key
), waits AS (
    SELECT coalesce(nullif(f.destination, ''), nullif(p.destination, ''), '') AS destination,
           max(f.first_start - p.producer_end, 0) AS wait
    FROM firsts f JOIN producers p ON f.key = p.key
), ranked AS (
    SELECT destination, wait,
           row_number() OVER (PARTITION BY destination ORDER BY wait) AS rn,
           count(*) OVER (PARTITION BY destination) AS n
    FROM waits
)
SELECT destination, max(n), {_rank(500)}, {_rank(900)}, {_rank(990)}, max(wait)
FROM ranked GROUP BY destination ORDER BY 5 DESC, destination"""
        rows = self._rows(sql, {"since": since_ns, "until": until_ns})
        return [QueueWait(row[0], *(int(value) for value in row[1:])) for row in rows]

    def islands_per_service(
        self, since_ns: int | None = None, until_ns: int | None = None
    ) -> list[ServiceIslands]:
        """Consumer-rooted traces and islands per service, most islands first."""
        sql = f"""SELECT service, count(DISTINCT trace_id),
       count(DISTINCT CASE WHEN island THEN trace_id END)
FROM (
    SELECT r.service, r.trace_id,
           NOT EXISTS (SELECT 1 FROM links l
                       WHERE l.trace_id = r.trace_id AND l.span_id = r.span_id)
           AND EXISTS (SELECT 1 FROM spans p
                       WHERE p.kind = {_PRODUCER} AND p.event_id = r.event_id)
           AND NOT EXISTS (SELECT 1 FROM spans p
                           WHERE p.kind = {_PRODUCER} AND p.event_id = r.event_id
                             AND p.trace_id = r.trace_id) AS island
    FROM spans r
    WHERE r.kind = {_CONSUMER} AND r.parent_span_id IS NULL{_window(since_ns, until_ns)}
)
GROUP BY service
ORDER BY 3 DESC, service"""
        rows = self._rows(sql, {"since": since_ns, "until": until_ns})
        return [ServiceIslands(row[0], int(row[1]), int(row[2])) for row in rows]

    def recent_workflows(
        self,
        limit: int = 50,
        before_ns: int | None = None,
        *,
        service: str | None = None,
        failed_only: bool = False,
        retried_only: bool = False,
    ) -> list[WorkflowSummary]:
        """The most recently started workflows, newest first, started before ``before_ns``."""
        having = ["1"]
        if before_ns is not None:
            having.append("min(start_ns) < :before")
        if service is not None:
            having.append("sum(service = :service) > 0")
        if failed_only:
            having.append(f"sum(status = {_ERROR}) > 0")
        if retried_only:
            having.append(f"sum(kind = {_CONSUMER} AND coalesce(attempt, 0) > 1) > 0")
        sql = f"""SELECT correlation_id, min(start_ns), max(end_ns), count(*),
       count(DISTINCT trace_id), sum(status = {_ERROR}),
       sum(kind = {_CONSUMER} AND coalesce(attempt, 0) > 1), json_group_array(DISTINCT service)
FROM spans WHERE coalesce(correlation_id, '') != ''
GROUP BY correlation_id
HAVING {" AND ".join(having)}
ORDER BY min(start_ns) DESC, correlation_id
LIMIT :limit"""
        params = {"before": before_ns, "service": service, "limit": max(0, limit)}
        return [
            WorkflowSummary(
                correlation_id=CorrelationId(row[0]),
                start_ns=int(row[1]),
                end_ns=int(row[2]),
                span_count=int(row[3]),
                trace_count=int(row[4]),
                error_count=int(row[5]),
                retry_count=int(row[6]),
                services=tuple(sorted(json.loads(row[7]))),
            )
            for row in self._rows(sql, params)
        ]
