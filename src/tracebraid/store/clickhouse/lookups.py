"""Look-ups by identity in ClickHouse: correlation IDs, event and causation IDs, linked spans.

After ``tracebraid migrate`` they read tracebraid's identity table
(``schema.addition_ddl``), ordered by (Kind, Value): each value is a key range.
Without it they scan ``otel_traces`` with the same definitions (the messaging
vocabulary's, as ``tracebraid.store.clickhouse.vocabulary`` writes them in SQL: every
strong message identity of a producer or consumer span), so both paths answer alike.

Many values go in one query as ``Array(String)`` parameters, at most ``CHUNK`` per
array: a large parameter travels as an HTTP form field, which a server caps at
``http_max_field_value_size`` (128 KiB by default), and 1,000 linked spans (48
characters each, quoted) stay well under it.

Example::

    >>> from tracebraid.store.clickhouse.schema import TableNames
    >>> sql = trace_ids_sql(TableNames("otel"), ["event"], identities=True,
    ...                     attribute_items=False)
    >>> "Kind IN ('event', 'causation') AND Value IN {event:Array(String)}" in sql
    True
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Literal

from tracebraid.messaging import RULES
from tracebraid.model import Span, TraceId
from tracebraid.store.clickhouse import vocabulary
from tracebraid.store.clickhouse.backends import Backend, Params
from tracebraid.store.clickhouse.codec import span_from_row
from tracebraid.store.clickhouse.queries import ns_param, spans_where
from tracebraid.store.clickhouse.schema import TableNames
from tracebraid.store.clickhouse.status import SchemaStatus

__all__ = [
    "CHUNK",
    "LOOKUP_KINDS",
    "Lookup",
    "chunked",
    "identity_keys_sql",
    "scan_condition",
    "spans_by_identity",
    "trace_ids_by_identity",
    "trace_ids_sql",
]

CHUNK = 1000
"""The most values one ``Array(String)`` parameter carries."""

Lookup = Literal["correlation", "event", "link"]
"""What a value is looked up as: a correlation ID, an event ID (as the span's event or
causation ID), or a linked span (trace ID followed by span ID)."""

LOOKUP_KINDS: Mapping[Lookup, tuple[str, ...]] = {
    "correlation": ("correlation",),
    "event": ("event", "causation"),
    "link": ("link",),
}
"""The identity table's ``Kind`` values each look-up reads."""


def chunked(values: Iterable[str]) -> Iterator[list[str]]:
    """``values``, sorted and each once, ``CHUNK`` at a time."""
    ordered = sorted(set(values))
    for i in range(0, len(ordered), CHUNK):
        yield ordered[i : i + CHUNK]


def _identity_condition(lookup: Lookup, param: str) -> str:
    kinds = ", ".join(f"'{kind}'" for kind in LOOKUP_KINDS[lookup])
    return f"Kind IN ({kinds}) AND Value IN {{{param}:Array(String)}}"


def scan_condition(lookup: Lookup, param: str, *, attribute_items: bool) -> str:
    """SQL over ``otel_traces`` true for a span that ``{param:Array(String)}`` finds.

    The plain ``SpanAttributes[key]`` test is what the exporter's skip indexes can
    prune granules with; the ``first_of`` expression keeps it exact.
    """
    values = f"{{{param}:Array(String)}}"
    if lookup == "link":
        return f"hasAny(arrayMap((t, s) -> concat(t, s), Links.TraceId, Links.SpanId), {values})"
    if lookup == "correlation":
        keys: list[str] = list(RULES.correlation_keys)
        exact = f"{vocabulary.inline(vocabulary.CORRELATION)} IN {values}"
    else:
        # A message identity is one of several attributes (a Kafka offset is composed of
        # three): prune on the plain ones, and keep every span with an offset.
        keys = list(
            dict.fromkeys(
                (*RULES.message_id_keys, RULES.cloudevents_key, *RULES.celery_task_keys,
                 RULES.causation_key)
            )
        )  # fmt: skip
        exact = (
            f"hasAny({vocabulary.inline(vocabulary.IDENTITIES)}, {values}) "
            f"OR {vocabulary.inline(vocabulary.CAUSATION)} IN {values}"
        )
    if attribute_items:
        prune = " OR ".join(
            f"hasAny(SpanAttributeItems, arrayMap(v -> concat('{key}=', v), {values}))"
            for key in keys
        )
    else:
        prune = " OR ".join(f"SpanAttributes['{key}'] IN {values}" for key in keys)
    if lookup == "event":
        offsets = " OR ".join(
            f"mapContains(SpanAttributes, '{k}')" for k in RULES.kafka_offset_keys
        )
        prune = f"{prune} OR {offsets}"
    return f"({prune}) AND ({exact})"


def identity_keys_sql(names: TableNames, lookup: Lookup) -> str:
    """(TraceId, SpanId, start ns) of the spans ``{values:Array(String)}`` finds, from the
    identity table."""
    return (
        "SELECT TraceId, SpanId, toUnixTimestamp64Nano(Timestamp) "
        f"FROM {names.identities} WHERE {_identity_condition(lookup, 'values')}"
    )


def trace_ids_sql(
    names: TableNames,
    lookups: Collection[Lookup],
    *,
    identities: bool,
    attribute_items: bool,
) -> str:
    """The distinct trace IDs that any of ``lookups`` finds, each look-up's values in the
    ``Array(String)`` parameter named after it (``{event:Array(String)}``)."""
    if identities:
        conditions: Sequence[str] = [_identity_condition(lookup, lookup) for lookup in lookups]
        table = names.identities
    else:
        conditions = [
            scan_condition(lookup, lookup, attribute_items=attribute_items) for lookup in lookups
        ]
        table = names.traces
    where = " OR ".join(f"({condition})" for condition in conditions)
    return f"SELECT DISTINCT TraceId FROM {table} WHERE {where}"


def _spans(
    backend: Backend, names: TableNames, status: SchemaStatus, condition: str, params: Params
) -> list[Span]:
    sql = spans_where(names, condition, scope_columns=status.scope_columns)
    return [span_from_row(row) for row in backend.rows(sql, params)]


def _spans_of_chunk(
    backend: Backend, names: TableNames, status: SchemaStatus, lookup: Lookup, values: list[str]
) -> list[Span]:
    if not status.identities:
        condition = scan_condition(lookup, "values", attribute_items=status.attribute_items)
        return _spans(backend, names, status, condition, {"values": values})
    keys = backend.rows(identity_keys_sql(names, lookup), {"values": values})
    if not keys:
        return []
    # The spans' own time range lets ClickHouse skip every other partition.
    wanted = {(row[0], row[1]) for row in keys}
    spans = _spans(
        backend,
        names,
        status,
        "TraceId IN {traces:Array(String)} AND SpanId IN {spans:Array(String)} "
        f"AND Timestamp >= {ns_param('lo')} AND Timestamp <= {ns_param('hi')}",
        {
            "traces": sorted({row[0] for row in keys}),
            "spans": sorted({row[1] for row in keys}),
            "lo": min(int(row[2]) for row in keys),
            "hi": max(int(row[2]) for row in keys),
        },
    )
    return [span for span in spans if span.key in wanted]


def spans_by_identity(
    backend: Backend,
    names: TableNames,
    status: SchemaStatus,
    lookup: Lookup,
    values: Iterable[str],
) -> list[Span]:
    """Every span that ``values`` find as ``lookup``, in start order, each once."""
    found: dict[tuple[str, str], Span] = {}
    for chunk in chunked(values):
        for span in _spans_of_chunk(backend, names, status, lookup, chunk):
            found.setdefault(span.key, span)  # one span may match in two chunks
    return sorted(found.values(), key=lambda s: (s.start_ns, s.trace_id, s.span_id))


def trace_ids_by_identity(
    backend: Backend,
    names: TableNames,
    status: SchemaStatus,
    values: Mapping[Lookup, Iterable[str]],
) -> set[TraceId]:
    """The traces holding a span that any look-up's ``values`` find: one query for up to
    ``CHUNK`` values of each look-up."""
    chunks = {lookup: list(chunked(found_by)) for lookup, found_by in values.items()}
    found: set[TraceId] = set()
    for i in range(max((len(c) for c in chunks.values()), default=0)):
        lookups = [lookup for lookup, c in chunks.items() if i < len(c)]
        sql = trace_ids_sql(
            names, lookups, identities=status.identities, attribute_items=status.attribute_items
        )
        params: dict[str, Sequence[str]] = {lookup: chunks[lookup][i] for lookup in lookups}
        found.update(TraceId(row[0]) for row in backend.rows(sql, params))
    return found
