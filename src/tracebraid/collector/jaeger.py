"""Jaeger JSON -> ``Span``: the trace export Jaeger's UI downloads (``{"data": [trace, ...]}``).

Mapping, as OpenTelemetry's own Jaeger translation does it in reverse:

- IDs are hex; Jaeger drops leading zeros, so they are padded back to 32 / 16 digits.
- ``startTime`` and ``duration`` are microseconds.
- ``references``: the first ``CHILD_OF`` within the same trace is the parent; every
  other reference (``FOLLOWS_FROM``, or one into another trace) becomes a span link,
  which is how OpenTelemetry links reach Jaeger in the first place.
- tags ``span.kind``, ``otel.status_code``, ``otel.status_description``, ``error`` and
  ``otel.scope.name`` (``otel.library.name``) become the span's kind, status and scope;
  the process's ``serviceName`` and tags become its resource; logs become events.

Example::

    >>> doc = {"data": [{"traceID": "4bf92f3577b34da6a3ce929d0e0e4736", "spans": [
    ...     {"traceID": "4bf92f3577b34da6a3ce929d0e0e4736", "spanID": "f067aa0ba902b7",
    ...      "operationName": "reserve-inventory", "references": [], "startTime": 1000,
    ...      "duration": 30, "tags": [{"key": "span.kind", "value": "consumer"}],
    ...      "processID": "p1"}],
    ...     "processes": {"p1": {"serviceName": "inventory", "tags": []}}}]}
    >>> span = decode_jaeger(doc).spans[0]
    >>> span.span_id, span.kind.name, span.service, span.end_ns
    ('00f067aa0ba902b7', 'CONSUMER', 'inventory', 1030000)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tracebraid.collector.validate import Decoded, Rejection, scalar_tuple, span_problem
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

__all__ = ["decode_jaeger", "is_jaeger"]

_KINDS = {k.name.lower(): k for k in SpanKind if k is not SpanKind.UNSPECIFIED}
_TRANSLATED = frozenset(
    (
        "span.kind",
        "otel.status_code",
        "otel.status_description",
        "otel.scope.name",
        "otel.scope.version",
        "otel.library.name",
        "otel.library.version",
    )
)
_MICROS_MAX = 2**64 // 1000


class _Bad(Exception):
    """A malformed field; becomes the span's ``Rejection``."""


def is_jaeger(doc: object) -> bool:
    """True when ``doc`` looks like Jaeger's JSON (``data`` of traces, or one trace)."""
    if isinstance(doc, dict):
        return "data" in doc or ("spans" in doc and "processes" in doc)
    return isinstance(doc, list) and bool(doc) and isinstance(doc[0], dict) and "spans" in doc[0]


def decode_jaeger(doc: object) -> Decoded:
    """Decode a Jaeger JSON export into valid spans and rejections.

    Accepts the UI's ``{"data": [trace, ...]}``, a bare trace object, or a list of
    traces. Raises ``InputError`` when ``doc`` has none of those shapes.
    """
    if isinstance(doc, dict) and "data" in doc:
        traces, prefix = doc["data"], "data"
    elif isinstance(doc, dict):
        traces, prefix = [doc], "trace"
    else:
        traces, prefix = doc, "traces"
    if not isinstance(traces, list):
        raise InputError('Jaeger JSON needs "data" to be an array of traces')
    out = Decoded()
    seen = 0
    for t, trace in enumerate(traces):
        where = f"{prefix}[{t}]" if prefix != "trace" else "trace"
        if not isinstance(trace, dict) or not isinstance(trace.get("spans"), list):
            out.reject(Rejection(where, 'a trace needs a "spans" array', 0))
            continue
        processes = trace.get("processes")
        processes = processes if isinstance(processes, dict) else {}
        for i, raw in enumerate(trace["spans"]):
            try:
                span = _span(raw, processes)
                problem = span_problem(span)
            except _Bad as exc:
                problem = str(exc)
            if problem is None:
                out.spans.append(span)
            else:
                label = f"{where}.spans[{i}]"
                if isinstance(raw, dict) and isinstance(raw.get("spanID"), str):
                    label += f" (spanID {_printable(raw['spanID'][:32])})"
                out.reject(Rejection(label, problem, ordinal=seen))
            seen += 1
    return out


def _span(raw: object, processes: Mapping[str, Any]) -> Span:
    if not isinstance(raw, dict):
        raise _Bad("a span must be an object")
    trace_id = _id(raw.get("traceID"), 32, "traceID")
    tags = _tags(raw.get("tags"), "tags")
    process = raw.get("process") or processes.get(str(raw.get("processID")))
    if not isinstance(process, dict):
        raise _Bad(f"processID {raw.get('processID')!r} names no process of the trace")
    resource = _tags(process.get("tags"), "process tags")
    service = process.get("serviceName")
    resource["service.name"] = service if isinstance(service, str) and service else "unknown"
    parent: SpanId | None = None
    links: list[SpanLink] = []
    for ref in _list(raw.get("references"), "references"):
        if not isinstance(ref, dict):
            raise _Bad("a reference must be an object")
        ref_trace = _id(ref.get("traceID"), 32, "references[].traceID")
        ref_span = _id(ref.get("spanID"), 16, "references[].spanID")
        if parent is None and ref.get("refType") == "CHILD_OF" and ref_trace == trace_id:
            parent = SpanId(ref_span)
        else:
            links.append(SpanLink(TraceId(ref_trace), SpanId(ref_span)))
    legacy_parent = raw.get("parentSpanID")
    if parent is None and isinstance(legacy_parent, str) and legacy_parent.strip("0"):
        parent = SpanId(_id(legacy_parent, 16, "parentSpanID"))
    start_us = _micros(raw.get("startTime"), "startTime")
    duration_us = _micros(raw.get("duration", 0), "duration")
    kind = _KINDS.get(str(tags.get("span.kind", "")).lower(), SpanKind.UNSPECIFIED)
    status, message = _status(tags)
    scope = tags.get("otel.scope.name", tags.get("otel.library.name", ""))
    name = raw.get("operationName", "")
    return Span(
        trace_id=TraceId(trace_id),
        span_id=SpanId(_id(raw.get("spanID"), 16, "spanID")),
        parent_span_id=parent,
        name=name if isinstance(name, str) else str(name),
        kind=kind,
        start_ns=start_us * 1000,
        end_ns=(start_us + duration_us) * 1000,
        service=str(resource["service.name"]),
        status=status,
        status_message=message,
        attributes={k: v for k, v in tags.items() if k not in _TRANSLATED},
        events=tuple(_event(log) for log in _list(raw.get("logs"), "logs")),
        links=tuple(links),
        resource=resource,
        scope=scope if isinstance(scope, str) else str(scope),
    )


def _status(tags: dict[str, AttributeValue]) -> tuple[StatusCode, str]:
    code = str(tags.get("otel.status_code", "")).upper()
    message = tags.get("otel.status_description", "")
    message = message if isinstance(message, str) else str(message)
    if code == "ERROR":
        return StatusCode.ERROR, message
    if code == "OK":
        return StatusCode.OK, message
    error = tags.get("error")
    if error is True or error == "true":
        # The status now says it; the tag would only repeat it.
        del tags["error"]
        return StatusCode.ERROR, message
    return StatusCode.UNSET, message


def _event(log: object) -> SpanEvent:
    if not isinstance(log, dict):
        raise _Bad("a log must be an object")
    fields = _tags(log.get("fields"), "log fields")
    name = fields.pop("event", "log")
    return SpanEvent(
        name=name if isinstance(name, str) else str(name),
        time_ns=_micros(log.get("timestamp"), "logs[].timestamp") * 1000,
        attributes=fields,
    )


def _tags(raw: object, what: str) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {}
    for tag in _list(raw, what):
        if not isinstance(tag, dict) or not isinstance(tag.get("key"), str):
            raise _Bad(f"each of the {what} must be an object with a string key")
        value = tag.get("value")
        if isinstance(value, str | bool | int | float):
            out[tag["key"]] = value
        elif isinstance(value, list):
            packed = scalar_tuple(value)
            out[tag["key"]] = packed if packed is not None else str(value)
        elif value is not None:
            out[tag["key"]] = str(value)
    return out


def _id(value: object, digits: int, name: str) -> str:
    if not isinstance(value, str):
        raise _Bad(f"{name} must be a hex string")
    value = value.lower()
    # Jaeger writes IDs without leading zeros; a 64-bit trace ID pads to 128 bits.
    return value.rjust(digits, "0") if 0 < len(value) < digits else value


def _micros(value: object, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _MICROS_MAX:
        return value
    if isinstance(value, float) and value.is_integer() and 0 <= value < _MICROS_MAX:
        return int(value)
    raise _Bad(f"{name} must be a whole number of microseconds; got {value!r}"[:200])


def _list(value: object, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Bad(f"{name} must be an array")
    return value


def _printable(text: str) -> str:
    # A label quotes the client's text, which may hold a lone surrogate: escaped.
    return text.encode("utf-8", "backslashreplace").decode()
