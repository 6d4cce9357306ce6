"""Spans to SQLite rows and back: the one place the embedded store's encoding lives.

The identity columns (correlation, event, causation, consumer, attempt, ...) are
extracted with ``semconv.first_of`` so spans from older convention generations are
indexed too; the span's own attributes are stored exactly as received.

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

from tracebraid import semconv
from tracebraid.errors import InputError
from tracebraid.model import (
    Attributes,
    AttributeValue,
    Span,
    SpanEvent,
    SpanId,
    SpanKind,
    SpanLink,
    StatusCode,
    TraceId,
)

__all__ = [
    "LINK_COLUMNS",
    "SPAN_COLUMNS",
    "SPAN_SELECT_COLUMNS",
    "EncodedBatch",
    "Resources",
    "SpanRow",
    "decode_attributes",
    "decode_link_targets",
    "encode_batch",
    "span_from_row",
]

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
    "scope",
    "resource_id",
    "attributes",
    "events",
    "links",
)
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

_CORRELATION = semconv.CORRELATION_ID
_MESSAGE_ID = semconv.MESSAGE_ID
_CAUSATION = semconv.CAUSATION_ID
_EVENT_NAME = semconv.EVENT_NAME
_CONSUMER = semconv.CONSUMER_GROUP
_ATTEMPT = semconv.ATTEMPT
_DESTINATION = semconv.DESTINATION
_first_of = semconv.first_of


@dataclass(frozen=True, slots=True)
class EncodedBatch:
    """One ``write`` call's rows, ready for ``executemany``."""

    spans: list[SpanRow]
    links: list[tuple[str, str, str, str]]
    resources: dict[int, bytes]
    """Key -> encoded resource, for each resource not known to be stored already."""
    resource_keys: dict[bytes, int]
    """The same, the other way round: for the caller's cache once the batch is committed."""


def _text(value: AttributeValue | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _attempt(value: AttributeValue | None) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def resource_key(body: bytes) -> int:
    """A stable 64-bit key for an encoded resource (Python's ``hash`` differs per process)."""
    return int.from_bytes(hashlib.blake2b(body, digest_size=8).digest(), "big", signed=True)


def _encode_span(
    span: Span,
    stored: Mapping[bytes, int],
    new: dict[bytes, int],
    links: list[tuple[str, str, str, str]],
) -> SpanRow:
    attributes = span.attributes
    resource = _encode(span.resource)
    key = stored.get(resource)
    if key is None:
        key = new.get(resource)
        if key is None:
            key = new[resource] = resource_key(resource)
    events = None
    if span.events:
        events = _encode([(e.name, e.time_ns, e.attributes) for e in span.events])
    encoded_links = None
    if span.links:
        encoded_links = _encode([(k.trace_id, k.span_id, k.attributes) for k in span.links])
        links.extend((k.trace_id, k.span_id, span.trace_id, span.span_id) for k in span.links)
    return (
        span.trace_id,
        span.span_id,
        span.parent_span_id,
        span.name,
        span.kind.value,
        span.service,
        span.start_ns,
        span.end_ns,
        span.status.value,
        span.status_message,
        _text(_first_of(attributes, _CORRELATION)),
        _text(_first_of(attributes, _MESSAGE_ID)),
        _text(_first_of(attributes, _CAUSATION)),
        _text(_first_of(attributes, _EVENT_NAME)),
        _text(_first_of(attributes, _CONSUMER)),
        _attempt(_first_of(attributes, _ATTEMPT)),
        _text(_first_of(attributes, _DESTINATION)),
        span.scope,
        key,
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
    rows: list[SpanRow] = []
    append = rows.append
    span: Span | None = None
    try:
        for span in spans:
            append(_encode_span(span, stored, new, links))
    except (TypeError, ValueError, AttributeError, OverflowError, msgspec.EncodeError) as exc:
        where = f"span {span.trace_id}/{span.span_id}" if span is not None else "a span"
        raise InputError(
            f"cannot store {where}: {exc}; attribute values must be str, bool, int, float "
            "or tuples of one of those"
        ) from exc
    return EncodedBatch(
        spans=rows,
        links=links,
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
