"""OTLP protobuf <-> ``Span``: the binary encoding every OpenTelemetry SDK exports by default.

``decode_protobuf`` parses an ``ExportTraceServiceRequest`` (or a ``TracesData``: the
same wire format) with ``opentelemetry-proto`` and walks it once into ``Span`` records,
refusing invalid spans one by one (``validate``). ``encode_protobuf`` is the reverse, used
by ``tracebraid import --endpoint`` and by tests that must speak the real protocol.

Example::

    >>> from tracebraid.model import Span, SpanId, SpanKind, TraceId
    >>> span = Span(TraceId("4bf92f3577b34da6a3ce929d0e0e4736"), SpanId("00f067aa0ba902b7"),
    ...             None, "reserve-inventory", SpanKind.CONSUMER, 1, 2, "inventory",
    ...             resource={"service.name": "inventory"})
    >>> decode_protobuf(encode_protobuf([span])).spans == [span]
    True
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, cast

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from tracebraid.collector.otlp_slices import SLICE_BYTES, request_slices
from tracebraid.collector.validate import (
    MAX_NESTING,
    MAX_TIME_NS,
    Decoded,
    Rejection,
    nested_text,
    scalar_tuple,
    span_problem,
)
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
    "UNKNOWN_SERVICE",
    "decode_protobuf",
    "decode_protobuf_slices",
    "encode_protobuf",
    "service_of",
]

UNKNOWN_SERVICE = "unknown_service"
"""The service of spans whose resource has no ``service.name`` (as the SDKs default it)."""

_SCALARS = frozenset(("string_value", "int_value", "bool_value", "double_value"))
_KINDS = {k.value: k for k in SpanKind}
_STATUSES = {s.value: s for s in StatusCode}
_ZERO_SPAN = bytes(8)
_ZERO_TRACE = bytes(16)
# bytes.hex, typed as what it makes here: one C call per ID in the hot loop.
_trace_hex = cast(Callable[[bytes], TraceId], bytes.hex)
_span_hex = cast(Callable[[bytes], SpanId], bytes.hex)
# Unbound: saves making a bound method per attribute value (10% of attribute decoding).
_which_oneof = AnyValue.WhichOneof


class _BadSpan(Exception):
    """Raised inside one span's conversion; becomes that span's ``Rejection``."""


def service_of(resource: Attributes) -> str:
    """The service name a resource declares, or ``unknown_service``."""
    name = resource.get("service.name")
    return name if isinstance(name, str) and name else UNKNOWN_SERVICE


def decode_protobuf(body: bytes) -> Decoded:
    """Decode an OTLP protobuf trace export into valid spans and rejections.

    Raises ``InputError`` when ``body`` is not a protobuf ``ExportTraceServiceRequest``.
    """
    pieces = decode_protobuf_slices(body)
    out = next(pieces)
    for piece in pieces:
        out.extend(piece)
    return out


def decode_protobuf_slices(body: bytes) -> Iterator[Decoded]:
    """``decode_protobuf`` a slice at a time (``otlp_slices``): what is parsed at once is
    a slice's worth however large the body, and a caller that stores each slice before
    the next holds no more than one slice's spans. Yields at least once.
    """
    slices = request_slices(body) if len(body) > SLICE_BYTES else None
    if slices is None:
        yield decode_resource_spans(_parsed(body).resource_spans)
        return
    seen = 0
    for piece in slices:
        try:
            parsed = _parsed(piece.body)
        except InputError as exc:
            # One slice upb refuses (bad UTF-8 in a span, say) costs its own spans only.
            decoded = Decoded()
            where = (
                f"resource_spans[{piece.resource_index}].scope_spans[{piece.scope_index}]"
                f".spans[{piece.first_span}:{piece.first_span + piece.span_count}]"
            )
            decoded.reject(Rejection(where, str(exc), piece.span_count, ordinal=seen))
        else:
            decoded = decode_resource_spans(
                parsed.resource_spans,
                offsets=(piece.resource_index, piece.scope_index, piece.first_span),
                first_ordinal=seen,
            )
        seen += len(decoded.spans) + decoded.rejected_count
        yield decoded


def _parsed(body: bytes) -> ExportTraceServiceRequest:
    try:
        request: ExportTraceServiceRequest = ExportTraceServiceRequest.FromString(body)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise InputError(
            f"body is not an OTLP protobuf ExportTraceServiceRequest ({exc}); "
            "send a serialized opentelemetry.proto.collector.trace.v1 request"
        ) from None
    return request


def decode_resource_spans(
    resource_spans: Iterable[ResourceSpans],
    *,
    offsets: tuple[int, int, int] = (0, 0, 0),
    first_ordinal: int = 0,
) -> Decoded:
    """Walk parsed ``ResourceSpans`` messages into spans and rejections.

    ``offsets`` (resource, scope, span) and ``first_ordinal`` place a slice's spans in
    the request it was cut from, for the rejections' ``where`` and ``ordinal``.
    """
    out = Decoded()
    spans = out.spans
    r0, s0, i0 = offsets
    seen = first_ordinal  # spans walked so far, in document order
    for r, rs in enumerate(resource_spans, start=r0):
        try:
            resource = _attributes(rs.resource.attributes)
        except _BadSpan as exc:
            count = sum(len(ss.spans) for ss in rs.scope_spans)
            out.reject(Rejection(f"resource_spans[{r}].resource", str(exc), count))
            seen += count
            continue
        service = service_of(resource)
        for s, ss in enumerate(rs.scope_spans, start=s0):
            scope = ss.scope.name
            for i, pb in enumerate(ss.spans, start=i0 if s == s0 else 0):
                seen += 1
                if not out.wants_example and not _plausible(pb):
                    # Refused for sure and not kept as an example: counted, not built.
                    out.count()
                    continue
                try:
                    span, plainly_valid = _span(pb, service, resource, scope)
                    # The full check (and its message) only when the cheap one fails. Text
                    # needs none: upb refuses a message whose strings are not UTF-8.
                    problem = None if plainly_valid else span_problem(span, values=False)
                except _BadSpan as exc:
                    problem = str(exc)
                if problem is None:
                    spans.append(span)
                elif out.wants_example:
                    where = f"resource_spans[{r}].scope_spans[{s}].spans[{i}]"
                    if len(pb.span_id) == 8:
                        where += f" (span_id {pb.span_id.hex()})"
                    out.reject(Rejection(where, problem, ordinal=seen - 1))
                else:
                    out.count()
    return out


def _plausible(pb: PbSpan) -> bool:
    """False for a span that certainly fails ``span_problem`` (IDs or times wrong)."""
    trace_id, span_id = pb.trace_id, pb.span_id
    return (
        len(trace_id) == 16
        and trace_id != _ZERO_TRACE
        and len(span_id) == 8
        and span_id != _ZERO_SPAN
        and 0 < pb.start_time_unix_nano <= pb.end_time_unix_nano <= MAX_TIME_NS
    )


def _span(pb: PbSpan, service: str, resource: Attributes, scope: str) -> tuple[Span, bool]:
    """The span, and whether it plainly passes ``span_problem`` (decided on raw bytes).

    This is the collector's hot loop: every field is read from the message once, and
    IDs become hex text with ``bytes.hex`` called directly (``TraceId(...)`` would add a
    Python call per ID).
    """
    trace_id, span_id, parent = pb.trace_id, pb.span_id, pb.parent_span_id
    start, end = pb.start_time_unix_nano, pb.end_time_unix_nano
    kind = _KINDS.get(pb.kind)
    if kind is None:
        raise _BadSpan(f"kind {pb.kind} is not a span kind (0-5)")
    status_pb = pb.status
    status = _STATUSES.get(status_pb.code)
    if status is None:
        raise _BadSpan(f"status.code {status_pb.code} is not a status code (0-2)")
    plainly_valid = (
        len(trace_id) == 16
        and trace_id != _ZERO_TRACE
        and len(span_id) == 8
        and span_id != _ZERO_SPAN
        and (not parent or len(parent) == 8)
        and 0 < start <= end <= MAX_TIME_NS
    )
    link_records: tuple[SpanLink, ...] = ()
    links = pb.links
    if links:
        records = []
        for link in links:
            link_trace, link_span, link_attributes = link.trace_id, link.span_id, link.attributes
            if plainly_valid:
                plainly_valid = (
                    len(link_trace) == 16
                    and link_trace != _ZERO_TRACE
                    and len(link_span) == 8
                    and link_span != _ZERO_SPAN
                )
            records.append(
                SpanLink(
                    _trace_hex(link_trace),
                    _span_hex(link_span),
                    _attributes(link_attributes) if link_attributes else {},
                )
            )
        link_records = tuple(records)
    event_records: tuple[SpanEvent, ...] = ()
    events = pb.events
    if events:
        event_records = tuple(
            [
                SpanEvent(e.name, e.time_unix_nano, _attributes(ea) if (ea := e.attributes) else {})
                for e in events
            ]
        )
        if plainly_valid:
            plainly_valid = max([e.time_ns for e in event_records]) <= MAX_TIME_NS
    # Positional: keyword arguments cost a dict lookup each in the dataclass __init__.
    span = Span(
        _trace_hex(trace_id),
        _span_hex(span_id),
        # Some SDKs send eight zero bytes rather than nothing for a root span.
        _span_hex(parent) if parent and parent != _ZERO_SPAN else None,
        pb.name,
        kind,
        start,
        end,
        service,
        status,
        status_pb.message,
        _attributes(pb.attributes),
        event_records,
        link_records,
        resource,
        scope,
    )
    return span, plainly_valid


def _attributes(kvs: Sequence[KeyValue]) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {}
    scalars, which_of = _SCALARS, _which_oneof
    for kv in kvs:
        value = kv.value
        which = which_of(value, "value")
        if which in scalars:
            out[kv.key] = getattr(value, which)
        elif which is not None:
            # Arrays of one scalar type fit the model; anything nested is kept as JSON text.
            try:
                plain = _plain(value, 0)
                packed = scalar_tuple(plain) if isinstance(plain, list) else None
                out[kv.key] = packed if packed is not None else nested_text(plain)
            except (ValueError, RecursionError) as exc:
                raise _BadSpan(f"attribute {kv.key!r}: {exc}") from None
    return out


def _plain(value: AnyValue, depth: int) -> object:
    if depth > MAX_NESTING:
        raise ValueError(f"value nests deeper than {MAX_NESTING} levels")
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_plain(v, depth + 1) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _plain(kv.value, depth + 1) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return getattr(value, which) if which is not None else None


def encode_protobuf(spans: Iterable[Span]) -> bytes:
    """Serialize spans as one OTLP ``ExportTraceServiceRequest``, grouped by resource and scope."""
    request = ExportTraceServiceRequest()
    groups: dict[tuple[Any, ...], Any] = {}
    for span in spans:
        resource = dict(span.resource)
        resource.setdefault("service.name", span.service)
        key = (tuple(sorted(resource.items())), span.scope)
        scope_spans = groups.get(key)
        if scope_spans is None:
            rs = request.resource_spans.add()
            _fill(rs.resource.attributes, resource)
            scope_spans = rs.scope_spans.add()
            scope_spans.scope.name = span.scope
            groups[key] = scope_spans
        pb = scope_spans.spans.add()
        pb.trace_id = bytes.fromhex(span.trace_id)
        pb.span_id = bytes.fromhex(span.span_id)
        if span.parent_span_id:
            pb.parent_span_id = bytes.fromhex(span.parent_span_id)
        pb.name = span.name
        pb.kind = int(span.kind)
        pb.start_time_unix_nano = span.start_ns
        pb.end_time_unix_nano = span.end_ns
        pb.status.code = int(span.status)
        pb.status.message = span.status_message
        _fill(pb.attributes, span.attributes)
        for event in span.events:
            pe = pb.events.add()
            pe.name = event.name
            pe.time_unix_nano = event.time_ns
            _fill(pe.attributes, event.attributes)
        for link in span.links:
            pl = pb.links.add()
            pl.trace_id = bytes.fromhex(link.trace_id)
            pl.span_id = bytes.fromhex(link.span_id)
            _fill(pl.attributes, link.attributes)
    body: bytes = request.SerializeToString()
    return body


def _fill(target: Any, attributes: Attributes) -> None:
    for key, value in attributes.items():
        kv = target.add()
        kv.key = key
        if isinstance(value, tuple):
            values = kv.value.array_value.values
            for item in value:
                _set_scalar(values.add(), item)
        else:
            _set_scalar(kv.value, value)


def _set_scalar(target: AnyValue, value: object) -> None:
    # bool before int: True is an int to isinstance.
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    else:
        target.string_value = str(value)
