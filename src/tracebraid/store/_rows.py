"""Spans to SQLite rows and back: the one place the embedded store's encoding lives.

The derived columns (correlation, event, causation, consumer, attempt, role,
outcome, ...) are the span's ``tracebraid.messaging`` view, taken when it is written,
so the store indexes and counts what the analysis reads, whatever convention
generation the span speaks; the span's own attributes are stored exactly as
received. ``DERIVATION`` names the rules the stored columns follow: when the
vocabulary changes, it changes, and opening a store derives the columns again
(``tracebraid.store._derive``).

Attributes, events and links are MessagePack (msgspec): about ten times faster than
the standard library's ``json`` both ways, a little smaller than JSON, and exact for
every OpenTelemetry attribute value (JSON has no NaN or infinity, msgspec's JSON
writes them as ``null``). Resources repeat on every span of a process, so each
distinct resource is stored once and referenced by a 64-bit content hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import msgspec

from tracebraid.errors import InputError
from tracebraid.messaging import AttemptOutcome, Role, normalize
from tracebraid.model import (
    Attributes,
    Span,
    SpanEvent,
    SpanId,
    SpanKind,
    SpanLink,
    StatusCode,
    TraceId,
)

__all__ = [
    "DERIVATION",
    "DERIVED_COLUMNS",
    "LINK_COLUMNS",
    "SPAN_COLUMNS",
    "SPAN_SELECT_COLUMNS",
    "EncodedBatch",
    "Resources",
    "SpanRow",
    "decode_attributes",
    "decode_link_targets",
    "derived",
    "derived_with_identities",
    "encode_batch",
    "span_from_row",
]

DERIVATION = 1
"""The version of the rules the derived columns follow. Bump it whenever
``tracebraid.messaging`` derives other values for some span: a store whose columns
were derived by other rules derives them again when opened
(``tests/store/test_derive.py`` pins the values and fails until it is bumped)."""

# Order matters: rows are positional tuples bound to "INSERT ... VALUES (?, ...)".
SPAN_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "service",
    "start_ns",
    "end_ns",
    "status",
    "status_message",
    "correlation_id",
    "event_id",
    "causation_id",
    "event_name",
    "consumer",
    "attempt",
    "destination",
    "role",
    "operation",
    "outcome",
    "dead_letter",
    "marker_for",
    "scope",
    "resource_id",
    "attributes",
    "events",
    "links",
)
DERIVED_COLUMNS = SPAN_COLUMNS[SPAN_COLUMNS.index("correlation_id") : SPAN_COLUMNS.index("scope")]
"""The columns ``derived`` fills: the span's messaging view, not read back."""
LINK_COLUMNS = ("linked_trace_id", "linked_span_id", "trace_id", "span_id")
# What a read needs to rebuild a Span; the identity columns are derived, not read back.
SPAN_SELECT_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "service",
    "start_ns",
    "end_ns",
    "status",
    "status_message",
    "scope",
    "resource_id",
    "attributes",
    "events",
    "links",
)

SpanRow: TypeAlias = tuple[Any, ...]
Resources: TypeAlias = dict[int, Attributes]

_ValueType: TypeAlias = str | bool | int | float | tuple[Any, ...]
_encode = msgspec.msgpack.Encoder().encode
# Typed decoders turn MessagePack arrays straight into tuples, as Span's attributes hold them.
_decode_attributes = msgspec.msgpack.Decoder(dict[str, _ValueType]).decode
_decode_events = msgspec.msgpack.Decoder(list[tuple[str, int, dict[str, _ValueType]]]).decode
_decode_links = msgspec.msgpack.Decoder(list[tuple[str, str, dict[str, _ValueType]]]).decode
_KINDS = tuple(SpanKind)
_STATUSES = tuple(StatusCode)


_CONSUMER = Role.CONSUMER
# Enum .value is a Python-level property: read the texts from dicts on this hot path.
_ROLE_TEXT = {Role.PRODUCER: Role.PRODUCER.value, Role.CONSUMER: Role.CONSUMER.value}
_OUTCOME_TEXT = {outcome: outcome.value for outcome in AttemptOutcome}


def derived(span: Span) -> tuple[str | int | None, ...]:
    """The ``DERIVED_COLUMNS`` of ``span``: its ``tracebraid.messaging`` view."""
    return derived_with_identities(span)[0]


def derived_with_identities(
    span: Span,
) -> tuple[tuple[str | int | None, ...], tuple[str, ...]]:
    """The ``DERIVED_COLUMNS`` of ``span``, and its other strong message identities.

    ``event_id`` is the message's first strong identity; a span may show more (a Kafka
    offset beside a message ID, a CloudEvents ID): those go to the ``message_identities``
    table, so a look-up by any of them finds the span, as the analysis' stitching joins
    on any of them.

    The outcome is kept for consumer spans only (an attempt's), the role for producer
    and consumer spans only (``NULL`` for every other span), ``marker_for`` for start
    markers only (the span ID of the span the marker announces).
    """
    view = normalize(span)
    role = view.role
    others = view.strong_identities[1:] if len(view.identities) > 1 else ()
    columns = (
        view.correlation_id,
        view.event_id,
        view.causation_id,
        view.event_name,
        view.consumer,
        view.attempt,
        view.destination,
        _ROLE_TEXT.get(role),
        view.operation,
        _OUTCOME_TEXT[view.outcome] if role is _CONSUMER else None,
        1 if view.dead_letter else 0,
        view.marker_for,
    )
    return columns, others


@dataclass(frozen=True, slots=True)
class EncodedBatch:
    """One ``write`` call's rows, ready for ``executemany``."""

    spans: list[SpanRow]
    links: list[tuple[str, str, str, str]]
    identities: list[tuple[str, str, str]]
    """(identity, trace ID, span ID) for each strong identity after a span's first."""
    resources: dict[int, bytes]
    """Key -> encoded resource, for each resource not known to be stored already."""
    resource_keys: dict[bytes, int]
    """The same, the other way round: for the caller's cache once the batch is committed."""


def resource_key(body: bytes) -> int:
    """A stable 64-bit key for an encoded resource (Python's ``hash`` differs per process)."""
    return int.from_bytes(hashlib.blake2b(body, digest_size=8).digest(), "big", signed=True)


def _resource_key(resource: Attributes, stored: Mapping[bytes, int], new: dict[bytes, int]) -> int:
    body = _encode(resource)
    key = stored.get(body)
    if key is None:
        key = new.get(body)
        if key is None:
            key = new[body] = resource_key(body)
    return key


def _encode_span(
    span: Span,
    resource_id: int,
    links: list[tuple[str, str, str, str]],
    identities: list[tuple[str, str, str]],
) -> SpanRow:
    attributes = span.attributes
    events = None
    if span.events:
        events = _encode([(e.name, e.time_ns, e.attributes) for e in span.events])
    encoded_links = None
    if span.links:
        encoded_links = _encode([(k.trace_id, k.span_id, k.attributes) for k in span.links])
        links.extend((k.trace_id, k.span_id, span.trace_id, span.span_id) for k in span.links)
    columns, others = derived_with_identities(span)
    if others:
        identities.extend((other, span.trace_id, span.span_id) for other in others)
    return (
        span.trace_id,
        span.span_id,
        span.parent_span_id,
        span.name,
        int(span.kind),  # int() is a C slot; .value is a Python-level enum property
        span.service,
        span.start_ns,
        span.end_ns,
        int(span.status),
        span.status_message,
        *columns,
        span.scope,
        resource_id,
        _encode(attributes) if attributes else None,
        events,
        encoded_links,
    )


def encode_batch(spans: Sequence[Span], stored: Mapping[bytes, int]) -> EncodedBatch:
    """Encode ``spans``; ``stored`` holds the resources known to be stored (by encoding).

    Only committed resources may be in ``stored``: a span is written referring to its
    resource by key, and the resource row must exist once the batch commits.
    Raises ``InputError`` naming the first span that cannot be encoded.
    """
    new: dict[bytes, int] = {}
    links: list[tuple[str, str, str, str]] = []
    identities: list[tuple[str, str, str]] = []
    rows: list[SpanRow] = []
    append = rows.append
    span: Span | None = None
    # Decoders hand every span of one resource the same mapping: encode it once per run.
    last_resource: Attributes | None = None
    resource_id = 0
    try:
        for span in spans:
            resource = span.resource
            if resource is not last_resource:
                resource_id = _resource_key(resource, stored, new)
                last_resource = resource
            append(_encode_span(span, resource_id, links, identities))
    except (TypeError, ValueError, AttributeError, OverflowError, msgspec.EncodeError) as exc:
        where = f"span {span.trace_id}/{span.span_id}" if span is not None else "a span"
        raise InputError(
            f"cannot store {where}: {exc}; attribute values must be str, bool, int, float "
            "or tuples of one of those"
        ) from exc
    return EncodedBatch(
        spans=rows,
        links=links,
        identities=identities,
        resources={key: body for body, key in new.items()},
        resource_keys=new,
    )


def unstorable_value(rows: Sequence[SpanRow]) -> str:
    """Describe the first value SQLite cannot bind (text that is not UTF-8, an int over 64 bits)."""
    for row in rows:
        for column, value in zip(SPAN_COLUMNS, row, strict=True):
            if isinstance(value, str):
                try:
                    value.encode()
                except UnicodeEncodeError:
                    return f"span {row[0]!r}/{row[1]!r}: {column} is not valid UTF-8 text"
            elif isinstance(value, int) and not -(2**63) <= value < 2**63:
                return f"span {row[0]!r}/{row[1]!r}: {column} = {value} does not fit in 64 bits"
    return "a value cannot be stored"


def decode_attributes(blob: bytes | None) -> Attributes:
    """Attributes as stored (``None`` for none) back to a mapping."""
    return _decode_attributes(blob) if blob is not None else {}


def decode_link_targets(blob: bytes | None) -> set[tuple[str, str]]:
    """The (trace ID, span ID) pairs a stored ``links`` column links to."""
    return {(t, s) for t, s, _ in _decode_links(blob)} if blob is not None else set()


def span_from_row(row: tuple[Any, ...], resources: Resources) -> Span:
    """Rebuild a Span from a ``SPAN_SELECT_COLUMNS`` row; ``resources`` must hold its resource."""
    (
        trace_id,
        span_id,
        parent_span_id,
        name,
        kind,
        service,
        start_ns,
        end_ns,
        status,
        status_message,
        scope,
        resource_id,
        attributes,
        events,
        links,
    ) = row
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_span_id,
        name=name,
        kind=_KINDS[kind],
        start_ns=start_ns,
        end_ns=end_ns,
        service=service,
        status=_STATUSES[status],
        status_message=status_message,
        attributes=_decode_attributes(attributes) if attributes is not None else {},
        events=tuple(SpanEvent(n, t, a) for n, t, a in _decode_events(events)) if events else (),
        links=tuple(SpanLink(TraceId(t), SpanId(s), a) for t, s, a in _decode_links(links))
        if links
        else (),
        resource=resources[resource_id],
        scope=scope,
    )
