"""Span <-> ``otel_traces`` row: the mapping the OpenTelemetry Collector's exporter defines.

The exporter stores every attribute map as ``Map(LowCardinality(String), String)``,
so typed values (``tracebraid.attempt = 2``, ``tracebraid.dead_letter = True``)
arrive as strings. Two cases, two rules:

* rows tracebraid wrote: non-string values are rendered as the Collector renders
  them (``"2"``, ``"true"``, JSON arrays) and their types are recorded under one
  extra key, ``TYPES_KEY``, in the same map, so a read gives back exactly what was
  written;
* rows the Collector wrote (no ``TYPES_KEY``): values stay strings, except the few
  keys whose convention is numeric or boolean (``KNOWN_TYPES``), which are parsed
  when they parse and left as strings when they do not.

The exporter has written span kinds and status codes two ways over its history
(``SPAN_KIND_PRODUCER`` / ``Producer``, ``STATUS_CODE_ERROR`` / ``Error``); both
are read, the current one is written.

Example::

    >>> encode_attributes({"tracebraid.attempt": 2})
    {'tracebraid.attempt': '2', 'tracebraid.types': '{"tracebraid.attempt":"int"}'}
    >>> decode_attributes({"tracebraid.attempt": "2"})
    {'tracebraid.attempt': 2}
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

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
    "ERROR_STATUSES",
    "KIND_NAMES",
    "KNOWN_TYPES",
    "SELECT_COLUMNS",
    "TYPES_KEY",
    "decode_attributes",
    "encode_attributes",
    "kind_from_text",
    "kind_values",
    "row_from_span",
    "select_columns",
    "span_from_row",
    "status_from_text",
    "status_values",
]

TYPES_KEY = "tracebraid.types"
"""Map key recording the types of the non-string values tracebraid wrote into that map."""

# What pdata's SpanKind.String() / StatusCode.String() return: what the exporter writes today.
KIND_NAMES: Mapping[SpanKind, str] = {
    SpanKind.UNSPECIFIED: "Unspecified",
    SpanKind.INTERNAL: "Internal",
    SpanKind.SERVER: "Server",
    SpanKind.CLIENT: "Client",
    SpanKind.PRODUCER: "Producer",
    SpanKind.CONSUMER: "Consumer",
}
_STATUS_NAMES: Mapping[StatusCode, str] = {
    StatusCode.UNSET: "Unset",
    StatusCode.OK: "Ok",
    StatusCode.ERROR: "Error",
}
_KINDS_BY_TEXT = {
    text: kind
    for kind, name in KIND_NAMES.items()
    for text in (name.lower(), f"span_kind_{kind.name.lower()}")
}
_STATUSES_BY_TEXT = {
    text: code
    for code, name in _STATUS_NAMES.items()
    for text in (name.lower(), f"status_code_{code.name.lower()}")
}
ERROR_STATUSES: tuple[str, ...] = ("Error", "STATUS_CODE_ERROR")
"""Every ``StatusCode`` text the exporter has written for an error, for SQL filters."""


def kind_values(kind: SpanKind) -> tuple[str, ...]:
    """Every ``SpanKind`` text the exporter has written for ``kind``, for SQL filters."""
    return (KIND_NAMES[kind], f"SPAN_KIND_{kind.name}")


def kind_from_text(text: str) -> SpanKind:
    """``Producer`` or ``SPAN_KIND_PRODUCER`` -> ``SpanKind.PRODUCER``; unknown -> UNSPECIFIED."""
    return _KINDS_BY_TEXT.get(text.lower(), SpanKind.UNSPECIFIED)


def status_values(code: StatusCode) -> tuple[str, ...]:
    """Every ``StatusCode`` text (lower-cased) ``status_from_text`` reads as ``code``."""
    return tuple(text for text, known in _STATUSES_BY_TEXT.items() if known is code)


def status_from_text(text: str) -> StatusCode:
    """``Error`` or ``STATUS_CODE_ERROR`` -> ``StatusCode.ERROR``; unknown -> UNSET."""
    return _STATUSES_BY_TEXT.get(text.lower(), StatusCode.UNSET)


# Keys whose convention is not a string: parsed on rows that carry no TYPES_KEY.
KNOWN_TYPES: Mapping[str, str] = {
    semconv.ATTEMPT: "int",
    semconv.BATCH_COUNT: "int",
    semconv.BACKOFF_MS: "float",
    semconv.DEAD_LETTER: "bool",
    "celery.retries": "int",
    "messaging.rabbitmq.message.delivery_tag": "int",
    "messaging.kafka.message.offset": "int",
    "messaging.kafka.destination.partition": "int",
}


def _type_of(value: AttributeValue) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    inner = {_type_of(item) for item in value}
    return f"{inner.pop() if len(inner) == 1 else 'str'}[]"


def _text(value: AttributeValue) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return json.dumps([_json_item(item) for item in value], separators=(",", ":"))


def _json_item(value: str | bool | int | float) -> str | bool | int | float | None:
    # JSON has no NaN/Infinity: render them as the strings Python parses back.
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def encode_attributes(attributes: Attributes) -> dict[str, str]:
    """Attributes -> a string map; non-string types are recorded under ``TYPES_KEY``."""
    encoded: dict[str, str] = {}
    types: dict[str, str] = {}
    for key, value in attributes.items():
        if key == TYPES_KEY:
            raise InputError(f"attribute key {TYPES_KEY!r} is reserved by tracebraid's store")
        encoded[key] = _text(value)
        kind = _type_of(value)
        if kind != "str":
            types[key] = kind
    if types:
        encoded[TYPES_KEY] = json.dumps(types, separators=(",", ":"))
    return encoded


def _scalar(text: str, kind: str) -> AttributeValue:
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "bool":
        if text.lower() not in ("true", "false"):
            raise ValueError(text)
        return text.lower() == "true"
    return text


def _parse(text: str, kind: str) -> AttributeValue:
    if not kind.endswith("[]"):
        return _scalar(text, kind)
    items = json.loads(text)
    if not isinstance(items, list):
        raise ValueError(text)
    element = kind[:-2]
    if element == "str":
        return tuple(str(item) for item in items)
    if element == "bool":
        return tuple(bool(item) for item in items)
    if element == "int":
        return tuple(int(item) for item in items)
    return tuple(float(item) for item in items)


def decode_attributes(encoded: Mapping[str, str]) -> dict[str, AttributeValue]:
    """A string map -> attributes: exact for tracebraid's rows, tolerant for the Collector's."""
    recorded = encoded.get(TYPES_KEY)
    types: Mapping[str, str] = json.loads(recorded) if recorded else KNOWN_TYPES
    decoded: dict[str, AttributeValue] = {}
    for key, text in encoded.items():
        if key == TYPES_KEY:
            continue
        kind = types.get(key, "str")
        try:
            decoded[key] = _parse(text, kind)
        except (ValueError, TypeError):
            decoded[key] = text  # a Collector row with an odd value: keep what was written
    return decoded


def _decimal_seconds(ns: int) -> str:
    # DateTime64(9) parses "seconds.fraction" exactly, independent of the server's time zone.
    seconds, fraction = divmod(ns, 1_000_000_000)
    return f"{seconds}.{fraction:09d}"


def row_from_span(span: Span) -> dict[str, Any]:
    """One ``otel_traces`` row (JSONEachRow object) for ``span``, as the exporter writes it."""
    return {
        "Timestamp": _decimal_seconds(span.start_ns),
        "TraceId": span.trace_id,
        "SpanId": span.span_id,
        "ParentSpanId": span.parent_span_id or "",
        "TraceState": "",
        "SpanName": span.name,
        "SpanKind": KIND_NAMES[span.kind],
        "ServiceName": span.service,
        "ResourceAttributes": encode_attributes(span.resource),
        "ScopeName": span.scope,
        "ScopeVersion": "",
        "SpanAttributes": encode_attributes(span.attributes),
        "Duration": span.duration_ns,
        "StatusCode": _STATUS_NAMES[span.status],
        "StatusMessage": span.status_message,
        "Events.Timestamp": [_decimal_seconds(event.time_ns) for event in span.events],
        "Events.Name": [event.name for event in span.events],
        "Events.Attributes": [encode_attributes(event.attributes) for event in span.events],
        "Links.TraceId": [link.trace_id for link in span.links],
        "Links.SpanId": [link.span_id for link in span.links],
        "Links.TraceState": ["" for _ in span.links],
        "Links.Attributes": [encode_attributes(link.attributes) for link in span.links],
    }


def select_columns(scope_columns: bool) -> str:
    """The SELECT list ``span_from_row`` reads; ``scope_columns`` is False on older exporters."""
    scope = "ScopeName" if scope_columns else "'' AS ScopeName"
    return (
        "TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName, "
        "toUnixTimestamp64Nano(Timestamp) AS StartNs, toUInt64(Duration) AS DurationNs, "
        "StatusCode, StatusMessage, SpanAttributes, ResourceAttributes, "
        f"{scope}, "
        "arrayMap(t -> toUnixTimestamp64Nano(t), Events.Timestamp) AS EventNs, "
        "Events.Name, Events.Attributes, Links.TraceId, Links.SpanId, Links.Attributes"
    )


SELECT_COLUMNS = select_columns(scope_columns=True)
"""The SELECT list for the current exporter schema."""


def span_from_row(row: Sequence[Any]) -> Span:
    """A ``Span`` from one row of ``select_columns`` (JSONCompactEachRow, 64-bit ints unquoted)."""
    (
        trace_id,
        span_id,
        parent,
        name,
        kind,
        service,
        start_ns,
        duration_ns,
        status,
        status_message,
        attributes,
        resource,
        scope,
        event_ns,
        event_names,
        event_attributes,
        link_trace_ids,
        link_span_ids,
        link_attributes,
    ) = row
    start = int(start_ns)
    decoded = decode_attributes(attributes)
    if not scope:
        # Exporters before the ScopeName column put the scope into the span's attributes.
        scope = str(decoded.get("otel.scope.name", ""))
    return Span(
        trace_id=TraceId(trace_id),
        span_id=SpanId(span_id),
        parent_span_id=SpanId(parent) if parent else None,
        name=name,
        kind=kind_from_text(kind),
        start_ns=start,
        end_ns=start + int(duration_ns),
        service=service,
        status=status_from_text(status),
        status_message=status_message,
        attributes=decoded,
        events=tuple(
            SpanEvent(name=n, time_ns=int(t), attributes=decode_attributes(a))
            for t, n, a in zip(event_ns, event_names, event_attributes, strict=True)
        ),
        links=tuple(
            SpanLink(trace_id=TraceId(t), span_id=SpanId(s), attributes=decode_attributes(a))
            for t, s, a in zip(link_trace_ids, link_span_ids, link_attributes, strict=True)
        ),
        resource=decode_attributes(resource),
        scope=scope,
    )
