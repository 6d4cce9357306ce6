"""Spans (and trace summaries) between a store and a ``RemoteStore``: exact, compact.

OTLP would lose what a store must keep exactly: a span whose resource has no
``service.name`` comes back with one, and attribute arrays come back as lists. This
encoding keeps every field as stored (``decode_spans(encode_spans(s)) == s``), each
distinct resource once per answer, and decodes with msgspec's typed decoder straight
into tuples. It is what ``GET /api/store/spans`` answers. Trace summaries travel as
JSON (``GET /api/store/recent``), a ``SummaryDocument`` each.

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
from typing import Any, TypeAlias, TypedDict

import msgspec

from tracebraid.errors import InputError
from tracebraid.model import (
    Attributes,
    CorrelationId,
    Span,
    SpanEvent,
    SpanId,
    SpanKind,
    SpanLink,
    StatusCode,
    TraceId,
)
from tracebraid.store.base import TraceSummary

__all__ = [
    "SPANS_MEDIA_TYPE",
    "SummaryDocument",
    "decode_spans",
    "decode_summaries",
    "encode_spans",
    "encode_summaries",
]

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


class SummaryDocument(TypedDict):
    """One ``TraceSummary`` as JSON."""

    trace_id: str
    root_name: str
    root_service: str
    start_ns: int
    end_ns: int
    span_count: int
    error_count: int
    correlation_ids: list[str]


_decode_summaries = msgspec.json.Decoder(list[SummaryDocument]).decode


def encode_summaries(summaries: Iterable[TraceSummary]) -> list[SummaryDocument]:
    """Summaries as the JSON documents ``decode_summaries`` reads back."""
    return [
        {
            "trace_id": s.trace_id,
            "root_name": s.root_name,
            "root_service": s.root_service,
            "start_ns": s.start_ns,
            "end_ns": s.end_ns,
            "span_count": s.span_count,
            "error_count": s.error_count,
            "correlation_ids": list(s.correlation_ids),
        }
        for s in summaries
    ]


def decode_summaries(body: bytes) -> list[TraceSummary]:
    """The summaries of a JSON array of ``SummaryDocument`` s; ``InputError`` otherwise."""
    try:
        documents = _decode_summaries(body)
    except msgspec.DecodeError as exc:
        raise InputError(f"not a list of trace summaries: {exc}") from None
    return [
        TraceSummary(
            TraceId(d["trace_id"]),
            d["root_name"],
            d["root_service"],
            d["start_ns"],
            d["end_ns"],
            d["span_count"],
            d["error_count"],
            tuple(CorrelationId(c) for c in d["correlation_ids"]),
        )
        for d in documents
    ]
