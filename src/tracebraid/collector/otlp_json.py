"""OTLP/JSON -> ``Span``: the JSON encoding of OTLP, walked directly rather than via json_format.

The OTLP/JSON specification departs from protobuf's canonical JSON mapping: trace and
span IDs are **hex** strings (not base64), and enums are integers. So this walks the
parsed document itself, type-checking every field it reads, which also lets one
malformed span be refused while its neighbours are stored. Field names are accepted in
lowerCamelCase (what the spec requires senders to write) and in their original
snake_case (what protobuf JSON parsers also accept); unknown fields are ignored, as
the spec requires. A 64-bit integer may be a JSON number or a decimal string.

Example::

    >>> doc = {"resourceSpans": [{"scopeSpans": [{"spans": [{
    ...     "traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B174",
    ...     "name": "work", "kind": 1,
    ...     "startTimeUnixNano": "1544712660000000000",
    ...     "endTimeUnixNano": "1544712661000000000"}]}]}]}
    >>> decode_json_document(doc).spans[0].trace_id
    '5b8efff798038103d269b633813fc60c'
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from tracebraid.collector.otlp import service_of
from tracebraid.collector.validate import (
    MAX_NESTING,
    Decoded,
    Rejection,
    nested_text,
    scalar_tuple,
    span_problem,
)
from tracebraid.errors import InputError
from tracebraid.model import (
    AttributeValue,
    Span,
    SpanEvent,
    SpanId,
    SpanKind,
    SpanLink,
    StatusCode,
    TraceId,
)

__all__ = ["BYTES_PER_CONTAINER", "decode_json", "decode_json_document", "may_hold_surrogates"]

_KINDS: dict[object, SpanKind] = {k.value: k for k in SpanKind}
_KINDS.update({f"SPAN_KIND_{k.name}": k for k in SpanKind})
_STATUSES: dict[object, StatusCode] = {s.value: s for s in StatusCode}
_STATUSES.update({f"STATUS_CODE_{s.name}": s for s in StatusCode})
_E = TypeVar("_E", SpanKind, StatusCode)
_HEX = frozenset("0123456789abcdef")
_UINT64 = 2**64
_INT64 = 2**63
BYTES_PER_CONTAINER = 8
"""Fewest body bytes per ``{`` or ``[`` a JSON body may have: parsed, each costs ~80
bytes, so ``[{},{},...]`` would cost 27 times its body; a real export has one per 30
bytes or more (a span's attribute, ``{"key":"k","value":{"intValue":"1"}}``, has two)."""
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_SURROGATE_BYTES = re.compile(rb"\\u[dD][89abcdefABCDEF]|\xed[\xa0-\xbf]")


class _Bad(Exception):
    """A field of the wrong type or value; becomes the enclosing span's ``Rejection``."""


def decode_json(body: bytes | str) -> Decoded:
    """Decode an OTLP/JSON trace export into valid spans and rejections.

    Raises ``InputError`` when ``body`` is not JSON or not an export request object.
    """
    containers = body.count(b"{") + body.count(b"[") if isinstance(body, bytes) else 0
    if containers > len(body) // BYTES_PER_CONTAINER + 16:
        raise InputError(
            f"the JSON body holds up to {containers:,} objects and arrays in {len(body):,} "
            f"bytes, more than one per {BYTES_PER_CONTAINER} bytes, which no OTLP export "
            "needs (each would cost 80 bytes parsed); send protobuf or smaller batches"
        )
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and UnicodeDecodeError (invalid UTF-8).
        raise InputError(f"body is not valid JSON: {exc}") from None
    return decode_json_document(doc, check_text=may_hold_surrogates(body))


def may_hold_surrogates(body: bytes | str) -> bool:
    """False when ``json.loads(body)`` cannot hold a lone surrogate: no text need be checked.

    One can arrive only as a ``\\ud800``-``\\udfff`` escape or, since ``json`` decodes
    bytes with ``surrogatepass``, as the raw bytes of one (or in UTF-16/32 bodies).
    """
    if isinstance(body, str):
        return not body.isascii() or _SURROGATE_ESCAPE.search(body) is not None
    if json.detect_encoding(body) not in ("utf-8", "utf-8-sig"):
        return True
    return _SURROGATE_BYTES.search(body) is not None


def decode_json_document(doc: object, *, check_text: bool = True) -> Decoded:
    """Walk an already-parsed OTLP/JSON ``ExportTraceServiceRequest`` / ``TracesData``.

    ``check_text=False`` skips looking for lone surrogates in every string, for a
    document ``may_hold_surrogates`` has cleared.
    """
    if not isinstance(doc, dict):
        raise InputError(
            f'an OTLP/JSON export must be an object with "resourceSpans"; got {_kind_of(doc)}'
        )
    resource_spans = _get(doc, "resourceSpans", "resource_spans")
    if resource_spans is None:
        return Decoded()
    if not isinstance(resource_spans, list):
        raise InputError(f'"resourceSpans" must be an array; got {_kind_of(resource_spans)}')
    out = Decoded()
    seen = [0]  # spans walked so far, in document order
    for r, rs in enumerate(resource_spans):
        _resource_spans(rs, f"resourceSpans[{r}]", out, seen, check_text)
    return out


def _resource_spans(
    rs: object, where: str, out: Decoded, seen: list[int], check_text: bool
) -> None:
    try:
        rs = _object(rs, where)
        resource = _object(_get(rs, "resource", "resource"), "resource")
        attrs = _attributes(_get(resource, "attributes", "attributes"))
        scope_spans = _array(_get(rs, "scopeSpans", "scope_spans"), "scopeSpans")
    except _Bad as exc:
        count = _count_spans(rs)
        out.reject(Rejection(where, str(exc), count))
        seen[0] += count
        return
    service = service_of(attrs)
    for s, ss in enumerate(scope_spans):
        at = f"{where}.scopeSpans[{s}]"
        try:
            ss = _object(ss, at)
            scope = _string(_get(_object(_get(ss, "scope", "scope"), "scope"), "name", "name"))
            spans = _array(_get(ss, "spans", "spans"), "spans")
        except _Bad as exc:
            count = _count_spans({"scopeSpans": [ss]})
            out.reject(Rejection(at, str(exc), count))
            seen[0] += count
            continue
        for i, raw in enumerate(spans):
            ordinal = seen[0]
            seen[0] += 1
            if not out.wants_example and not _plausible(raw):
                out.count()  # refused for sure and not kept as an example: not built
                continue
            try:
                span = _span(raw, service, attrs, scope)
                # Integers are range-checked as they are read; text only if it may be bad.
                problem = span_problem(span, values=check_text)
            except _Bad as exc:
                problem = str(exc)
            if problem is None:
                out.spans.append(span)
            elif not out.wants_example:
                out.count()
            else:
                label = f"{at}.spans[{i}]"
                if isinstance(raw, dict) and isinstance(raw.get("spanId"), str):
                    label += f" (spanId {_printable(raw['spanId'][:32])})"
                out.reject(Rejection(label, _hint(problem), ordinal=ordinal))


def _plausible(raw: object) -> bool:
    """False for a span that certainly fails (not an object, or IDs of the wrong length)."""
    if not isinstance(raw, dict):
        return False
    trace_id = raw.get("traceId", raw.get("trace_id"))
    span_id = raw.get("spanId", raw.get("span_id"))
    return (
        isinstance(trace_id, str)
        and len(trace_id) == 32
        and isinstance(span_id, str)
        and len(span_id) == 16
    )


def _span(raw: object, service: str, resource: dict[str, AttributeValue], scope: str) -> Span:
    d = _object(raw, "span")
    kind = _enum(_get(d, "kind", "kind", 0), _KINDS)
    if kind is None:
        raise _Bad(f"kind {_kind_of(d.get('kind'))} is not a span kind (0-5 or SPAN_KIND_*)")
    status_obj = _object(_get(d, "status", "status"), "status")
    status = _enum(_get(status_obj, "code", "code", 0), _STATUSES)
    if status is None:
        raise _Bad(f"status.code {_kind_of(status_obj.get('code'))} is not a status code (0-2)")
    parent = _hex(_get(d, "parentSpanId", "parent_span_id"), "parentSpanId")
    return Span(
        trace_id=TraceId(_hex(_get(d, "traceId", "trace_id"), "traceId")),
        span_id=SpanId(_hex(_get(d, "spanId", "span_id"), "spanId")),
        parent_span_id=SpanId(parent) if parent and parent != "0" * 16 else None,
        name=_string(_get(d, "name", "name"), "name"),
        kind=kind,
        start_ns=_uint64(_get(d, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano"),
        end_ns=_uint64(_get(d, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano"),
        service=service,
        status=status,
        status_message=_string(_get(status_obj, "message", "message"), "status.message"),
        attributes=_attributes(_get(d, "attributes", "attributes")),
        events=tuple(_event(e) for e in _array(_get(d, "events", "events"), "events")),
        links=tuple(_link(li) for li in _array(_get(d, "links", "links"), "links")),
        resource=resource,
        scope=scope,
    )


def _event(raw: object) -> SpanEvent:
    d = _object(raw, "event")
    return SpanEvent(
        name=_string(_get(d, "name", "name"), "events[].name"),
        time_ns=_uint64(_get(d, "timeUnixNano", "time_unix_nano"), "events[].timeUnixNano"),
        attributes=_attributes(_get(d, "attributes", "attributes")),
    )


def _link(raw: object) -> SpanLink:
    d = _object(raw, "link")
    return SpanLink(
        trace_id=TraceId(_hex(_get(d, "traceId", "trace_id"), "links[].traceId")),
        span_id=SpanId(_hex(_get(d, "spanId", "span_id"), "links[].spanId")),
        attributes=_attributes(_get(d, "attributes", "attributes")),
    )


def _attributes(raw: object) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {}
    for kv in _array(raw, "attributes"):
        if not isinstance(kv, dict):
            raise _Bad(f"each attribute must be an object with key and value; got {_kind_of(kv)}")
        key = kv.get("key")
        if not isinstance(key, str):
            raise _Bad(f"attribute key must be a string; got {_kind_of(key)}")
        try:
            value = _value(kv.get("value"), 0)
        except _Bad as exc:
            raise _Bad(f"attribute {key!r}: {exc}") from None
        if value is None:
            continue  # an empty AnyValue: nothing to keep
        if isinstance(value, list):
            packed = scalar_tuple(value)
            out[key] = packed if packed is not None else _text(value, key)
        elif isinstance(value, dict):
            out[key] = _text(value, key)
        else:
            out[key] = value
    return out


def _text(value: object, key: str) -> str:
    try:
        return nested_text(value)
    except (ValueError, RecursionError) as exc:
        raise _Bad(f"attribute {key!r}: {exc}") from None


def _value(raw: object, depth: int) -> Any:
    """An AnyValue as a plain Python value: scalar, list, dict or None (empty)."""
    if depth > MAX_NESTING:
        raise _Bad(f"value nests deeper than {MAX_NESTING} levels")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _Bad(f"value must be an AnyValue object; got {_kind_of(raw)}")
    for name, v in raw.items():
        if name in ("stringValue", "string_value"):
            return _string(v, name)
        if name in ("boolValue", "bool_value"):
            if not isinstance(v, bool):
                raise _Bad(f"boolValue must be true or false; got {_kind_of(v)}")
            return v
        if name in ("intValue", "int_value"):
            n = _integer(v, name)
            if not -_INT64 <= n < _INT64:
                raise _Bad(f"intValue {n} does not fit in 64 bits")
            return n
        if name in ("doubleValue", "double_value"):
            return _double(v)
        if name in ("arrayValue", "array_value"):
            values = _array(_object(v, name).get("values"), "arrayValue.values")
            return [_value(x, depth + 1) for x in values]
        if name in ("kvlistValue", "kvlist_value"):
            out = {}
            for kv in _array(_object(v, name).get("values"), "kvlistValue.values"):
                kv = _object(kv, "kvlistValue entry")
                out[_string(kv.get("key"), "key")] = _value(kv.get("value"), depth + 1)
            return out
        if name in ("bytesValue", "bytes_value"):
            return _string(v, name)  # already base64, as OTLP/JSON carries bytes
    return None


def _get(d: Mapping[str, Any], camel: str, snake: str, default: object = None) -> Any:
    value = d.get(camel)
    if value is None:
        value = d.get(snake, default)
    return default if value is None else value


def _object(value: object, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Bad(f"{name} must be an object; got {_kind_of(value)}")
    return value


def _array(value: object, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Bad(f"{name} must be an array; got {_kind_of(value)}")
    return value


def _string(value: object, name: str = "scope.name") -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Bad(f"{name} must be a string; got {_kind_of(value)}")
    return value


def _hex(value: object, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Bad(f"{name} must be a hex string; got {_kind_of(value)}")
    lowered = value.lower()
    # Keep a non-hex value as sent, so the rejection shows what the client wrote.
    return lowered if _HEX.issuperset(lowered) else value


def _enum(value: object, table: Mapping[object, _E]) -> _E | None:
    # Only numbers and names can be enum values; a list or object is not even hashable.
    return table.get(value) if isinstance(value, int | str) else None


def _integer(value: object, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and len(value) <= 21:
        try:
            return int(value)
        except ValueError:
            pass
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**64:
        return int(value)
    raise _Bad(f"{name} must be an integer or a decimal string; got {_kind_of(value)}")


def _uint64(value: object, name: str) -> int:
    if value is None:
        return 0
    n = _integer(value, name)
    if not 0 <= n < _UINT64:
        raise _Bad(f"{name} {n} is not an unsigned 64-bit integer")
    return n


def _double(value: object) -> float:
    if isinstance(value, float):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise _Bad(f"doubleValue {_kind_of(value)} is too large for a double") from None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            if math.isfinite(number) or value in ("NaN", "Infinity", "-Infinity"):
                return number
    raise _Bad(f"doubleValue must be a number; got {_kind_of(value)}")


def _kind_of(value: object) -> str:
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return f"the number {value!r}"[:60]
    return "an array" if isinstance(value, list) else "an object"


def _hint(problem: str) -> str:
    # Protobuf's own JSON mapping writes bytes as base64; OTLP/JSON deliberately does not.
    if "not hex" in problem:
        return problem + " (OTLP/JSON carries trace and span IDs as hex, not base64)"
    return problem


def _count_spans(rs: object) -> int:
    if not isinstance(rs, dict):
        return 0
    total = 0
    scope_spans = _get(rs, "scopeSpans", "scope_spans")
    for ss in scope_spans if isinstance(scope_spans, list) else ():
        spans = _get(ss, "spans", "spans") if isinstance(ss, dict) else None
        total += len(spans) if isinstance(spans, list) else 0
    return total


def _printable(text: str) -> str:
    # A label quotes the client's text, which may hold a lone surrogate: escaped.
    return text.encode("utf-8", "backslashreplace").decode()
