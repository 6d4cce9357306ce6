"""Fleet aggregates for the embedded SQLite store, as SQL run inside SQLite.

The same definitions (``tracebraid.store.aggregates``) and the same numbers as
the ClickHouse store's, over the ``spans`` table's derived columns (the messaging
vocabulary's view of each span, taken when it was written). Attempts are ranked
per branch with window functions (``_ATTEMPTS``), so a retry is what the analysis
calls one. Percentiles are nearest-rank, taken with window functions, so only one
row per destination leaves the database.

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

from tracebraid.messaging import AttemptOutcome
from tracebraid.model import CorrelationId, StatusCode
from tracebraid.semconv import START_MARKER_SCOPE
from tracebraid.store.aggregates import ConsumerRetries, QueueWait, ServiceIslands, WorkflowSummary
from tracebraid.store.sqlite import SqliteStore

__all__ = ["SqliteAggregates"]

_ERROR = int(StatusCode.ERROR)


def _window(since_ns: int | None, until_ns: int | None, column: str = "start_ns") -> str:
    bounds = []
    if since_ns is not None:
        bounds.append(f"{column} >= :since")
    if until_ns is not None:
        bounds.append(f"{column} < :until")
    return "".join(f" AND {bound}" for bound in bounds)


_MARKER = f"'{START_MARKER_SCOPE}'"  # a constant of ours, never user input
_FAILED = ", ".join(f"'{o.value}'" for o in AttemptOutcome if o.failed)


def _attempts(window: str) -> str:
    """Every attempt of every branch, ranked: (event, consumer, correlation, outcome,
    rank, retry, duplicate), one row per attempt.

    A branch is one message at one consumer (``tracebraid.store._facts``): a consumer
    span's message is its parent producer's, else its own ID, else its parent
    producer itself; a consumer span with none took the messages of the producer spans
    it links to (a batch); a start marker whose span has not arrived is an attempt in
    flight; ``receive`` spans count only in a branch of nothing else. A retry follows a
    failed attempt (or is the first seen, counting itself 2 or more); a duplicate
    follows a success; an attempt after one of unknown outcome is a redelivery.
    """
    columns = (
        "s.start_ns, s.trace_id, s.span_id, s.consumer, s.operation, s.attempt, s.correlation_id"
    )
    return f"""WITH own AS (
    SELECT coalesce(p.event_id, s.event_id,
                    CASE WHEN p.span_id IS NOT NULL THEN p.trace_id || ':' || p.span_id END)
               AS event, {columns}, s.outcome
    FROM spans s LEFT JOIN spans p ON p.trace_id = s.trace_id AND p.span_id = s.parent_span_id
        AND p.role = 'producer'
    WHERE s.role = 'consumer' AND s.scope <> {_MARKER}{window}
), taken AS (
    SELECT *, 0 AS open FROM own WHERE event IS NOT NULL
    UNION ALL
    SELECT DISTINCT p.event_id, {columns}, s.outcome, 0 FROM own s
    JOIN links l ON l.trace_id = s.trace_id AND l.span_id = s.span_id
    JOIN spans p ON p.trace_id = l.linked_trace_id AND p.span_id = l.linked_span_id
    WHERE s.event IS NULL AND p.role = 'producer' AND p.event_id IS NOT NULL
    UNION ALL
    SELECT s.event_id, {columns}, 'in_flight', 1 FROM spans s
    WHERE s.scope = {_MARKER} AND s.role = 'consumer' AND s.event_id IS NOT NULL{window}
      AND NOT EXISTS (SELECT 1 FROM spans x WHERE x.trace_id = s.trace_id
                      AND x.span_id = coalesce(s.marker_for, s.span_id) AND x.scope <> {_MARKER})
), kept AS (
    SELECT *, sum(open = 0 AND operation IS NOT 'receive')
        OVER (PARTITION BY event, consumer) AS others
    FROM taken
), ranked AS (
    SELECT *, row_number() OVER w AS rank,
        coalesce(sum(outcome = 'ok') OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
            AS ok_before,
        lag(outcome) OVER w AS previous
    FROM kept WHERE open = 1 OR operation IS NOT 'receive' OR others = 0
    WINDOW w AS (PARTITION BY event, consumer ORDER BY start_ns, open, trace_id, span_id)
)
SELECT event, consumer, correlation_id, outcome, rank,
    (rank = 1 AND coalesce(attempt, 1) > 1)
        OR (rank > 1 AND ok_before = 0 AND previous <> 'unknown') AS retry,
    rank > 1 AND ok_before > 0 AS duplicate
FROM ranked"""


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
        sql = f"""SELECT consumer, count(*), sum(attempts), sum(retries), sum(failed), max(attempts)
FROM (
    SELECT consumer, count(*) AS attempts, sum(retry) AS retries,
           sum(outcome IN ({_FAILED})) AS failed
    FROM ({_attempts(_window(since_ns, until_ns, "s.start_ns"))})
    GROUP BY event, consumer
)
GROUP BY consumer
ORDER BY sum(retries) DESC, consumer"""
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
    FROM spans WHERE role = 'consumer' AND scope <> {_MARKER}{_window(since_ns, until_ns)}
    GROUP BY 1, 2
), producers AS (
    SELECT key, min(end_ns) AS producer_end, destination FROM (
        SELECT 'e:' || event_id AS key, end_ns, destination FROM spans
        WHERE role = 'producer' AND coalesce(event_id, '') != ''
        UNION ALL
        SELECT 's:' || trace_id || span_id, end_ns, destination FROM spans
        WHERE role = 'producer'
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
                       WHERE p.role = 'producer' AND p.event_id = r.event_id)
           AND NOT EXISTS (SELECT 1 FROM spans p
                           WHERE p.role = 'producer' AND p.event_id = r.event_id
                             AND p.trace_id = r.trace_id) AS island
    FROM spans r
    WHERE r.role = 'consumer' AND r.scope <> {_MARKER}
      AND r.parent_span_id IS NULL{_window(since_ns, until_ns)}
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
        retries = "0"
        join = ""
        if retried_only:  # every workflow's retries are needed to choose the page
            having.append("coalesce(max(r.retries), 0) > 0")
            retries = "coalesce(max(r.retries), 0)"
            join = f"""LEFT JOIN (
    SELECT correlation_id, sum(retry) AS retries FROM ({_attempts("")})
    WHERE correlation_id IS NOT NULL GROUP BY correlation_id
) r ON r.correlation_id = s.correlation_id"""
        sql = f"""SELECT s.correlation_id, min(start_ns), max(end_ns), count(*),
       count(DISTINCT trace_id), sum(status = {_ERROR}), {retries},
       json_group_array(DISTINCT service)
FROM spans s {join}
WHERE coalesce(s.correlation_id, '') != ''
GROUP BY s.correlation_id
HAVING {" AND ".join(having)}
ORDER BY min(start_ns) DESC, s.correlation_id
LIMIT :limit"""
        params = {"before": before_ns, "service": service, "limit": max(0, limit)}
        rows = self._rows(sql, params)
        if rows and not retried_only:
            # The page's retries only: rank the attempts of its workflows' consumers.
            page = json.dumps([row[0] for row in rows])
            counted = dict(
                self._rows(
                    "SELECT correlation_id, sum(retry) FROM ("
                    + _attempts(" AND s.correlation_id IN (SELECT value FROM json_each(:page))")
                    + ") GROUP BY correlation_id",
                    {"page": page},
                )
            )
            rows = [(*row[:6], counted.get(row[0]) or 0, row[7]) for row in rows]
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
            for row in rows
        ]
