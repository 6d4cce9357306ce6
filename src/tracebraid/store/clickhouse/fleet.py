"""Fleet aggregates as ClickHouse SQL: each question is one statement, run where the data is.

Definitions are those of ``tracebraid.store.aggregates``. Every inner select
de-duplicates with ``LIMIT 1 BY TraceId, SpanId`` before counting, so a span
stored twice counts once. A span is read as ``tracebraid.messaging`` reads it,
through the SQL expressions ``tracebraid.store.clickhouse.vocabulary`` builds from
the vocabulary's declared rules, and attempts are ranked per branch as the SQLite
store ranks them (``_attempts``), so both count what the analysis counts.
Percentiles are nearest-rank over exact values (``arraySort(groupArray(...))``), the
same numbers the SQLite store gives.

Example::

    >>> "LIMIT 1 BY" in _consumer_spans(_window(None, None))
    True
"""

from __future__ import annotations

from typing import Any

from tracebraid.model import CorrelationId
from tracebraid.store.aggregates import ConsumerRetries, QueueWait, ServiceIslands, WorkflowSummary
from tracebraid.store.clickhouse import vocabulary as v
from tracebraid.store.clickhouse.backends import Backend
from tracebraid.store.clickhouse.queries import CORRELATION, ERROR, ns_param
from tracebraid.store.clickhouse.schema import TableNames

__all__ = ["islands_per_service", "queue_wait_percentiles", "recent_workflows", "retry_counts"]

_TRACES = "{traces}"  # filled with the quoted table name by _sql
_START = "toUnixTimestamp64Nano(Timestamp)"
_END = f"({_START} + toInt64(Duration))"


def _window(since_ns: int | None, until_ns: int | None) -> str:
    bounds = []
    if since_ns is not None:
        bounds.append(f"Timestamp >= {ns_param('since')}")
    if until_ns is not None:
        bounds.append(f"Timestamp < {ns_param('until')}")
    return "".join(f" AND {bound}" for bound in bounds)


def _params(since_ns: int | None, until_ns: int | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if since_ns is not None:
        params["since"] = since_ns
    if until_ns is not None:
        params["until"] = until_ns
    return params


def _consumer_spans(window: str) -> str:
    """Consumer spans (start markers aside) as the messaging vocabulary reads them."""
    return f"""SELECT TraceId, SpanId, ParentSpanId, ServiceName, StatusCode,
        LinkSpans, StartNs, {v.EVENT_ID} AS EventId, {v.DESTINATION} AS Destination,
        {v.CONSUMER} AS Consumer
    FROM (
        SELECT TraceId, SpanId, ParentSpanId, ServiceName, StatusCode,
            Links.SpanId AS LinkSpans, {_START} AS StartNs, Timestamp, {v.VIEW}
        FROM {_TRACES}
        LIMIT 1 BY TraceId, SpanId
    )
    WHERE {v.ROLE} = 'consumer' AND NOT {v.MARKER}{window}"""


def _producer_spans() -> str:
    """Producer spans as the messaging vocabulary reads them."""
    return f"""SELECT TraceId, SpanId, EndNs, {v.EVENT_ID} AS EventId,
        {v.DESTINATION} AS Destination
    FROM (
        SELECT TraceId, SpanId, {_END} AS EndNs, {v.VIEW}
        FROM {_TRACES}
        LIMIT 1 BY TraceId, SpanId
    )
    WHERE {v.ROLE} = 'producer'"""


def _attempts(window: str) -> str:
    """Every attempt of every branch, ranked (``aggregates_sqlite._attempts``): Event,
    Consumer, Correlation, Outcome, Rank, Retry, Duplicate; one row per attempt.

    The table is read twice (its spans, and the producers batch consumers link to):
    each read plans the vocabulary's expressions anew, so every other look-up (a
    consumer's parent producer, a marker's span) is a window over one trace instead.
    """
    return f"""WITH spans AS (
    SELECT TraceId, SpanId, ParentSpanId, {_START} AS StartNs, Timestamp,
        arrayZip(Links.TraceId, Links.SpanId) AS Linked, {v.VIEW}
    FROM {_TRACES}
    LIMIT 1 BY TraceId, SpanId
), traced AS (
    SELECT *,
        groupArrayIf((SpanId, {v.EVENT_ID}), {v.ROLE} = 'producer')
            OVER (PARTITION BY TraceId) AS TraceProducers,
        groupArrayIf(SpanId, NOT {v.MARKER}) OVER (PARTITION BY TraceId) AS TraceSpans
    FROM spans
), own AS (
    SELECT TraceId, SpanId, StartNs, {v.CONSUMER} AS Consumer, {v.OPERATION} AS Operation,
        {v.ATTEMPT} AS Attempt, {v.CORRELATION} AS Correlation, Linked,
        arrayFirstIndex(p -> p.1 = ParentSpanId, TraceProducers) AS ParentAt,
        if({v.MARKER}, 'in_flight', {v.OUTCOME}) AS Outcome, toUInt8({v.MARKER}) AS Open,
        multiIf({v.MARKER}, {v.EVENT_ID},
                ParentAt > 0 AND TraceProducers[ParentAt].2 != '', TraceProducers[ParentAt].2,
                {v.EVENT_ID} != '', {v.EVENT_ID},
                ParentAt > 0, concat(TraceId, ':', ParentSpanId), '') AS Own
    FROM traced
    WHERE {v.ROLE} = 'consumer'{window}
        AND (NOT {v.MARKER} OR ({v.EVENT_ID} != '' AND NOT has(TraceSpans, {v.MARKER_FOR})))
), taken AS (
    SELECT DISTINCT if(Own != '', Own, p.EventId) AS Event, StartNs, TraceId, SpanId,
        Consumer, Operation, Attempt, Correlation, Outcome, Open
    FROM own
    LEFT ARRAY JOIN if(Own = '', Linked, []) AS l
    LEFT JOIN (
        SELECT TraceId, SpanId, {v.EVENT_ID} AS EventId FROM spans
        WHERE {v.ROLE} = 'producer' AND {v.EVENT_ID} != ''
    ) AS p ON p.TraceId = l.1 AND p.SpanId = l.2
    WHERE Event != ''
), kept AS (
    SELECT *, sum(Open = 0 AND Operation != 'receive')
        OVER (PARTITION BY Event, Consumer) AS Others
    FROM taken
), ranked AS (
    SELECT *,
        row_number() OVER (PARTITION BY Event, Consumer
            ORDER BY StartNs, Open, TraceId, SpanId) AS Rank,
        sum(Outcome = 'ok') OVER (PARTITION BY Event, Consumer
            ORDER BY StartNs, Open, TraceId, SpanId
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS OkBefore,
        lagInFrame(Outcome) OVER (PARTITION BY Event, Consumer
            ORDER BY StartNs, Open, TraceId, SpanId
            ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS Previous
    FROM kept WHERE Open = 1 OR Operation != 'receive' OR Others = 0
)
SELECT Event, Consumer, Correlation, Outcome, Rank,
    (Rank = 1 AND coalesce(Attempt, 1) > 1)
        OR (Rank > 1 AND OkBefore = 0 AND Previous != 'unknown') AS Retry,
    Rank > 1 AND OkBefore > 0 AS Duplicate
FROM ranked"""


def _sql(names: TableNames, template: str) -> str:
    return template.replace(_TRACES, names.traces)


def retry_counts(
    backend: Backend, names: TableNames, since_ns: int | None, until_ns: int | None
) -> list[ConsumerRetries]:
    """Deliveries, attempts and retries per consumer, most retries first."""
    sql = f"""SELECT Consumer, count(), sum(Attempts), sum(Retries), sum(Failed), max(Attempts)
FROM (
    SELECT Consumer, count() AS Attempts, countIf(Retry) AS Retries,
           countIf(Outcome IN {v.FAILED_OUTCOMES}) AS Failed
    FROM ({_attempts(_window(since_ns, until_ns))})
    GROUP BY Event, Consumer
)
GROUP BY Consumer
ORDER BY sum(Retries) DESC, Consumer"""
    rows = backend.rows(_sql(names, sql), _params(since_ns, until_ns))
    return [ConsumerRetries(row[0], *(int(value) for value in row[1:])) for row in rows]


def _rank(fraction_per_mille: int) -> str:
    # Nearest rank, 1-based: ceil(fraction * n), in integers so 0.99 * 100 is 99, not 100.
    return f"Waits[greatest(1, intDiv({fraction_per_mille} * length(Waits) + 999, 1000))]"


def queue_wait_percentiles(
    backend: Backend, names: TableNames, since_ns: int | None, until_ns: int | None
) -> list[QueueWait]:
    """Queue-wait percentiles per destination, slowest p99 first."""
    sql = f"""SELECT Destination, length(Waits), {_rank(500)}, {_rank(900)}, {_rank(990)},
       arrayMax(Waits)
FROM (
    SELECT Destination, arraySort(groupArray(Wait)) AS Waits
    FROM (
        SELECT if(c.Destination != '', c.Destination, p.Destination) AS Destination,
               greatest(c.FirstStart - p.ProducerEnd, 0) AS Wait
        FROM (
            SELECT Consumer,
                   if(EventId != '', concat('e:', EventId), concat('s:', TraceId, ParentSpanId))
                       AS DeliveryKey,
                   min(StartNs) AS FirstStart, argMin(Destination, StartNs) AS Destination
            FROM ({_consumer_spans(_window(since_ns, until_ns))})
            GROUP BY Consumer, DeliveryKey
        ) AS c
        INNER JOIN (
            SELECT DeliveryKey, min(EndNs) AS ProducerEnd, argMin(Destination, EndNs) AS Destination
            FROM ({_producer_spans()})
            ARRAY JOIN if(EventId != '', [concat('e:', EventId), concat('s:', TraceId, SpanId)],
                          [concat('s:', TraceId, SpanId)]) AS DeliveryKey
            GROUP BY DeliveryKey
        ) AS p ON c.DeliveryKey = p.DeliveryKey
    )
    GROUP BY Destination
)
ORDER BY 5 DESC, Destination"""
    rows = backend.rows(_sql(names, sql), _params(since_ns, until_ns))
    return [QueueWait(row[0], *(int(value) for value in row[1:])) for row in rows]


def islands_per_service(
    backend: Backend, names: TableNames, since_ns: int | None, until_ns: int | None
) -> list[ServiceIslands]:
    """Consumer-rooted traces and islands per service, most islands first."""
    sql = f"""SELECT ServiceName, uniqExact(r.TraceId),
       uniqExactIf(r.TraceId, length(LinkSpans) = 0 AND notEmpty(ProducerTraces)
                   AND NOT has(ProducerTraces, r.TraceId))
FROM (
    SELECT * FROM ({_consumer_spans(_window(since_ns, until_ns))}) WHERE ParentSpanId = ''
) AS r
LEFT JOIN (
    SELECT EventId, groupUniqArray(TraceId) AS ProducerTraces
    FROM ({_producer_spans()}) WHERE EventId != '' GROUP BY EventId
) AS p ON r.EventId = p.EventId
GROUP BY ServiceName
ORDER BY 3 DESC, ServiceName"""
    rows = backend.rows(_sql(names, sql), _params(since_ns, until_ns))
    return [ServiceIslands(row[0], int(row[1]), int(row[2])) for row in rows]


def recent_workflows(
    backend: Backend,
    names: TableNames,
    limit: int,
    before_ns: int | None,
    *,
    service: str | None,
    failed_only: bool,
    retried_only: bool,
) -> list[WorkflowSummary]:
    """The most recently started workflows, newest first, started before ``before_ns``."""
    having = ["1"]
    params: dict[str, Any] = {"limit": limit}
    if before_ns is not None:
        having.append("StartNs < {before:Int64}")
        params["before"] = before_ns
    if service is not None:
        having.append("has(Services, {service:String})")
        params["service"] = service
    if failed_only:
        having.append("Errors > 0")
    if retried_only:
        having.append("Retries > 0")
    sql = f"""SELECT w.Correlation, StartNs, EndNs, Spans, Traces, Errors, r.Retries AS Retries,
       Services
FROM (
    SELECT Correlation, toUnixTimestamp64Nano(min(Timestamp)) AS StartNs,
           max({_END}) AS EndNs, count() AS Spans, uniqExact(TraceId) AS Traces,
           countIf({ERROR}) AS Errors, arraySort(groupUniqArray(ServiceName)) AS Services
    FROM (
        SELECT TraceId, SpanId, Timestamp, Duration, StatusCode, ServiceName,
               {CORRELATION} AS Correlation
        FROM {names.traces} WHERE Correlation != ''
        LIMIT 1 BY TraceId, SpanId
    )
    GROUP BY Correlation
) AS w
LEFT JOIN (
    SELECT Correlation, countIf(Retry) AS Retries FROM ({_sql(names, _attempts(""))})
    WHERE Correlation != '' GROUP BY Correlation
) AS r ON r.Correlation = w.Correlation
WHERE {" AND ".join(having)}
ORDER BY StartNs DESC, w.Correlation
LIMIT {{limit:UInt64}}"""
    rows = backend.rows(sql, params)
    return [
        WorkflowSummary(
            correlation_id=CorrelationId(row[0]),
            start_ns=int(row[1]),
            end_ns=int(row[2]),
            span_count=int(row[3]),
            trace_count=int(row[4]),
            error_count=int(row[5]),
            retry_count=int(row[6]),
            services=tuple(row[7]),
        )
        for row in rows
    ]
