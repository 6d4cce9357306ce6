"""Spans between a store and a ``RemoteStore``: exact, compact MessagePack.

OTLP would lose what a store must keep exactly: a span whose resource has no
``service.name`` comes back with one, and attribute arrays come back as lists. This
encoding keeps every field as stored (``decode_spans(encode_spans(s)) == s``), each
distinct resource once per answer, and decodes with msgspec's typed decoder straight
into tuples. It is what ``GET /api/store/spans`` answers.

Example::

    >>> from tracebraid.model import Span, SpanId, SpanKind, TraceId
    >>> span = Span(TraceId("4bf92f3577b34da6a3ce929d0e0e4736"), SpanId("00f067aa0ba902b7"),
    ...             None, "reserve-inventory", SpanKind.CONSUMER, 1, 2, "inventory",
    ...             attributes={"tags": ("a", "b")})
    >>> decode_spans(encode_spans([span])) == [span]
    True
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeAlias

import msgspec

from tracebraid.errors import InputError
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

__all__ = ["SPANS_MEDIA_TYPE", "decode_spans", "encode_spans"]

SPANS_MEDIA_TYPE = "application/vnd.tracebraid.spans+msgpack"

_Value: TypeAlias = str | bool | int | float | tuple[Any, ...]
_Map: TypeAlias = dict[str, _Value]
# (trace, span, parent, name, kind, service, start, end, status, message, scope,
#  resource index, attributes, events, links)
_Row: TypeAlias = tuple[
    str,
    str,
    str | None,
    str,
    int,
    str,
    int,
    int,
    int,
    str,
    str,
    int,
    _Map,
    list[tuple[str, int, _Map]],
    list[tuple[str, str, _Map]],
]
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(tuple[list[_Map], list[_Row]]).decode
_KINDS = tuple(SpanKind)
_STATUSES = tuple(StatusCode)


def encode_spans(spans: Iterable[Span]) -> bytes:
    """The spans as one MessagePack document: the distinct resources, then a row a span."""
    resources: list[Attributes] = []
    index: dict[int, int] = {}  # id(resource) -> position: spans of a process share one
    rows = []
    for span in spans:
        position = index.get(id(span.resource))
        if position is None:
            position = index[id(span.resource)] = len(resources)
            resources.append(span.resource)
        rows.append(
            (
                span.trace_id,
                span.span_id,
                span.parent_span_id,
                span.name,
                int(span.kind),
                span.service,
                span.start_ns,
                span.end_ns,
                int(span.status),
                span.status_message,
                span.scope,
                position,
                span.attributes,
                [(e.name, e.time_ns, e.attributes) for e in span.events],
                [(k.trace_id, k.span_id, k.attributes) for k in span.links],
            )
        )
    return _encode((resources, rows))


def decode_spans(body: bytes) -> list[Span]:
    """The spans ``encode_spans`` wrote; ``InputError`` for anything else."""
    try:
        resources, rows = _decode(body)
        return [
            Span(
                TraceId(trace_id),
                SpanId(span_id),
                SpanId(parent) if parent is not None else None,
                name,
                _KINDS[kind],
                start_ns,
                end_ns,
                service,
                _STATUSES[status],
                message,
                attributes,
                tuple(SpanEvent(n, t, a) for n, t, a in events),
                tuple(SpanLink(TraceId(t), SpanId(s), a) for t, s, a in links),
                resources[resource],
                scope,
            )
            for (
                trace_id,
                span_id,
                parent,
                name,
                kind,
                service,
                start_ns,
                end_ns,
                status,
                message,
                scope,
                resource,
                attributes,
                events,
                links,
            ) in rows
        ]
    except (msgspec.DecodeError, IndexError) as exc:
        raise InputError(f"not a tracebraid spans document: {exc}") from None
