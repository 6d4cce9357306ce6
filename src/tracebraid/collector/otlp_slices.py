"""A large OTLP protobuf request cut into small requests, so decoding it costs little at once.

Parsing a request builds every message of it at once (upb), whatever they hold: a 6 MB
body of 3 million empty spans took 270 MB to parse, 45 times the body. So a body over
``SLICE_BYTES`` is cut, on the wire, into requests of about ``SLICE_BYTES`` (and at
most ``SLICE_SPANS`` spans) each: every span field kept whole and in order, each slice
carrying its spans' resource and scope.
Decoding then parses one slice at a time, and its cost is that of a slice, not of the
body. A slice is itself a valid ``ExportTraceServiceRequest``: a message's encoding is
the concatenation of its fields, so any run of whole fields is one.

Only the first levels are walked in Python (requests, resources, scopes, and the span
fields' lengths); spans are parsed by upb. Anything the walk does not understand
(groups, a length past the end) ends it, and the body is then parsed whole, as upb
would report what is wrong with it.

Example::

    >>> from tracebraid.collector.otlp import encode_protobuf
    >>> from tracebraid.model import Span, SpanId, SpanKind, TraceId
    >>> spans = [Span(TraceId("ab" * 16), SpanId(f"{n + 1:016x}"), None, "op",
    ...               SpanKind.INTERNAL, 1, 2, "svc") for n in range(100)]
    >>> cut = list(request_slices(encode_protobuf(spans), 1000))
    >>> len(cut) > 1, sum(s.span_count for s in cut)
    (True, 100)
    >>> [(s.resource_index, s.scope_index, s.first_span) for s in cut][:2]
    [(0, 0, 0), (0, 0, 17)]
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["SLICE_BYTES", "SLICE_SPANS", "Slice", "request_slices"]

SLICE_BYTES = 256 * 1024
"""Bodies larger than this are decoded a slice of about this size at a time (an
exporter's default batch, 512 spans, is smaller: it is parsed whole, as before)."""
SLICE_SPANS = 4096
"""Spans in a slice at most: what a parsed message costs grows with its spans as much
as with its bytes (an empty span is 2 bytes on the wire, about 90 parsed)."""

_LEN = 2


class _NotWalkable(Exception):
    """The wire format is not what the walk expects: parse the body whole instead."""


@dataclass(frozen=True, slots=True)
class Slice:
    """One small request cut from a large one, and where its spans were in it."""

    body: bytes
    resource_index: int
    scope_index: int  # of its first scope
    first_span: int  # index of its first span within that scope
    span_count: int


def request_slices(body: bytes, limit: int = SLICE_BYTES) -> Iterator[Slice] | None:
    """``body`` cut into requests of about ``limit`` bytes, or None if it cannot be walked."""
    try:
        cut = list(_cut(body, limit))
    except _NotWalkable:
        return None
    return iter(cut)


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _NotWalkable
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, where the field starts, where its value starts, where it ends)."""
    pos = start
    while pos < end:
        field_start = pos
        tag, pos = _varint(data, pos, end)
        wire_type = tag & 7
        if wire_type == 0:
            _, pos = _varint(data, pos, end)
            value_start = pos
        elif wire_type == 1:
            value_start, pos = pos, pos + 8
        elif wire_type == _LEN:
            size, value_start = _varint(data, pos, end)
            pos = value_start + size
        elif wire_type == 5:
            value_start, pos = pos, pos + 4
        else:
            raise _NotWalkable  # groups: nothing in OTLP uses them
        if pos > end:
            raise _NotWalkable
        yield tag >> 3, field_start, value_start, pos


def _len_field(number: int, value: bytes) -> bytes:
    return _varint_bytes(number << 3 | _LEN) + _varint_bytes(len(value)) + value


def _varint_bytes(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _cut(body: bytes, limit: int) -> Iterator[Slice]:
    for r, (number, _, start, end) in enumerate(
        f for f in _fields(body, 0, len(body)) if f[0] == 1
    ):
        del number
        resource = b""  # the resource field, whole, as every slice of it carries it
        scopes: list[tuple[int, int, int]] = []  # (field start, value start, end)
        for number, field_start, value_start, field_end in _fields(body, start, end):
            if number == 1:
                resource = body[field_start:field_end]
            elif number == 2:
                scopes.append((field_start, value_start, field_end))
        yield from _cut_resource(body, r, resource, scopes, limit)


def _cut_resource(
    body: bytes, r: int, resource: bytes, scopes: list[tuple[int, int, int]], limit: int
) -> Iterator[Slice]:
    pending: list[bytes] = []  # whole scope_spans fields, for one slice
    pending_spans = 0
    size = 0
    first_scope = 0
    for s, (field_start, value_start, end) in enumerate(scopes):
        spans = sum(1 for f in _fields(body, value_start, end) if f[0] == 2)
        if end - field_start <= limit and spans <= SLICE_SPANS:
            if pending and (
                size + end - field_start > limit or pending_spans + spans > SLICE_SPANS
            ):
                yield _slice(resource, pending, r, first_scope, 0, pending_spans)
                pending, pending_spans, size = [], 0, 0
            if not pending:
                first_scope = s
            pending.append(body[field_start:end])
            pending_spans += spans
            size += end - field_start
            continue
        if pending:
            yield _slice(resource, pending, r, first_scope, 0, pending_spans)
            pending, pending_spans, size = [], 0, 0
        yield from _cut_scope(body, r, s, resource, value_start, end, limit)
    if pending:
        yield _slice(resource, pending, r, first_scope, 0, pending_spans)


def _cut_scope(
    body: bytes, r: int, s: int, resource: bytes, start: int, end: int, limit: int
) -> Iterator[Slice]:
    """One large scope_spans cut into runs of whole span fields, each with its scope."""
    others = b""  # the scope and schema_url fields, carried by every run
    runs: list[tuple[int, int, int, int]] = []  # (first span, count, start, end)
    run_start = run_end = -1
    first = count = index = 0
    for number, field_start, _, field_end in _fields(body, start, end):
        if number != 2:
            others += body[field_start:field_end]
            continue
        contiguous = field_start == run_end
        full = field_end - run_start > limit or count >= SLICE_SPANS
        if run_start >= 0 and (not contiguous or full):
            runs.append((first, count, run_start, run_end))
            run_start = -1
        if run_start < 0:
            run_start, first, count = field_start, index, 0
        run_end = field_end
        count += 1
        index += 1
    if run_start >= 0:
        runs.append((first, count, run_start, run_end))
    if not runs:
        yield _slice(resource, [_len_field(2, others)], r, s, 0, 0)
    for first, count, run_start, run_end in runs:
        scope_spans = _len_field(2, others + body[run_start:run_end])
        yield _slice(resource, [scope_spans], r, s, first, count)


def _slice(
    resource: bytes, scope_spans: list[bytes], r: int, s: int, first_span: int, count: int
) -> Slice:
    request = _len_field(1, resource + b"".join(scope_spans))
    return Slice(request, r, s, first_span, count)
