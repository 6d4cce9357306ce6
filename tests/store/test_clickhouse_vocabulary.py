"""ClickHouse's SQL reads a span as ``tracebraid.messaging.normalize`` does: over spans
with messaging attributes of every generation and spelling, stored as the Collector
stores them (every value a string), each SQL expression of
``tracebraid.store.clickhouse.vocabulary`` equals the view's field."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clickhouse_engine import chdb_store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracebraid import semconv
from tracebraid.messaging import RULES, Role, normalize
from tracebraid.model import Span, SpanEvent, SpanId, SpanKind, StatusCode, TraceId
from tracebraid.store.clickhouse import ClickHouseStore
from tracebraid.store.clickhouse import vocabulary as sql

_VALUES: dict[tuple[str, ...], list[str]] = {
    RULES.operation_keys: ["process", "receive", "send", "publish", "create", "settle", "PROCESS"],
    RULES.destination_keys: [
        "orders",
        "orders.dlq",
        "DLQ",
        "payments_dlx",
        "q1",
        "orders,key",
        ",q1",
    ],
    RULES.group_keys: ["billing"],
    RULES.queue_keys: ["q1", "orders"],
    RULES.message_id_keys: ["evt_1", "7"],
    (RULES.cloudevents_key,): ["ce_1"],
    RULES.celery_task_keys: ["task-1"],
    RULES.kafka_offset_keys: ["5", "5.0", "x", " 6"],
    RULES.kafka_partition_keys: ["0", "1.0"],
    RULES.correlation_keys: ["order_1"],
    (RULES.attempt_key,): ["2", "0", "2.0", "x", "-1", "3"],
    (RULES.celery_retries_key,): ["0", "1", "x", "-1"],
    (RULES.pubsub_attempt_key,): ["3", "0"],
    (RULES.outcome_key,): ["ok", "ERROR", " retry ", "dead_letter", "bogus", "unknown"],
    (RULES.dead_letter_key,): ["true", "false", "TRUE "],
    (RULES.celery_state_key,): ["RETRY", "FAILURE", "SUCCESS", "retry"],
    (RULES.marker_for_key,): ["00f067aa0ba902b7"],
}
_KEYS = [(key, values) for keys, values in _VALUES.items() for key in keys]
_SCOPES = ["", RULES.marker_scope, *sorted(RULES.receive_only_scopes), "opentelemetry.pika"]
_NAMES = ["orders process", "q1 receive", "orders receive", "charge", "q2 deliver x"]


@st.composite
def spans(draw: st.DrawFn) -> Span:
    chosen = draw(st.lists(st.sampled_from(_KEYS), max_size=8, unique_by=lambda kv: kv[0]))
    attributes = {key: draw(st.sampled_from(values)) for key, values in chosen}
    exception = draw(st.booleans())
    return Span(
        trace_id=TraceId(f"{draw(st.integers(1, 2**64)):032x}"),
        span_id=SpanId(f"{draw(st.integers(1, 2**60)):016x}"),
        parent_span_id=None,
        name=draw(st.sampled_from(_NAMES)),
        kind=draw(st.sampled_from(list(SpanKind))),
        start_ns=1_760_000_000_000_000_000,
        end_ns=1_760_000_000_001_000_000,
        service=draw(st.sampled_from(["inventory", "billing"])),
        status=draw(st.sampled_from(list(StatusCode))),
        status_message=draw(
            st.sampled_from(
                ["", "basic.nack", "Rejected", "boom", "channel closed", " Channel Error"]
            )
        ),
        attributes=attributes,
        events=(SpanEvent("exception", 1_760_000_000_000_500_000, {}),) if exception else (),
        scope=draw(st.sampled_from(_SCOPES)),
    )


@pytest.fixture(scope="module")
def clickhouse() -> Iterator[ClickHouseStore]:
    with chdb_store(migrated=False) as store:
        yield store


_COLUMNS = {
    "role": sql.ROLE,
    "operation": sql.OPERATION,
    "destination": sql.DESTINATION,
    "event_id": sql.EVENT_ID,
    "consumer": sql.CONSUMER,
    "attempt": sql.ATTEMPT,
    "outcome": sql.OUTCOME,
    "dead_letter": sql.DEAD_LETTER,
    "marker_for": sql.MARKER_FOR,
    "correlation_id": sql.CORRELATION,
}


def expected(span: Span) -> dict[str, object]:
    view = normalize(span)
    messaging = view.role in (Role.PRODUCER, Role.CONSUMER)
    return {
        "role": view.role.value if messaging else "other",
        "operation": view.operation or "",
        "destination": view.destination or "",
        "event_id": view.event_id or "",
        "consumer": view.consumer or "",
        "attempt": view.attempt,
        "outcome": view.outcome.value,
        "dead_letter": view.dead_letter,
        "marker_for": view.marker_for or "",
        "correlation_id": view.correlation_id or "",
    }


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(batch=st.lists(spans(), min_size=1, max_size=40, unique_by=lambda s: s.span_id))
def test_sql_reads_every_span_as_normalize_does(
    clickhouse: ClickHouseStore, batch: list[Span]
) -> None:
    clickhouse.backend.command(f"TRUNCATE TABLE {clickhouse.names.traces}")
    clickhouse.write(batch)
    select = ", ".join(_COLUMNS.values())
    rows = clickhouse.backend.rows(
        f"SELECT SpanId, {select} FROM (SELECT SpanId, {sql.VIEW} FROM "
        f"{clickhouse.names.traces}) ORDER BY SpanId",
        {},
    )
    stored = {s.span_id: s for s in clickhouse.spans_of_traces([s.trace_id for s in batch])}
    for span_id, *values in rows:
        got = dict(zip(_COLUMNS, values, strict=True))
        got["dead_letter"] = bool(got["dead_letter"])
        got["attempt"] = None if got["attempt"] is None else int(got["attempt"])
        assert got == expected(stored[span_id]), stored[span_id]


def test_the_rules_name_every_alias_the_semconv_declares() -> None:
    assert set(semconv.ALIASES[semconv.MESSAGE_ID]) <= set(RULES.message_id_keys)
    assert set(semconv.ALIASES[semconv.DESTINATION]) <= set(RULES.destination_keys)
