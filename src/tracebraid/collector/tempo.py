"""Grafana Tempo's trace JSON -> the OTLP/JSON ``otlp_json`` decodes.

Tempo's query API (``GET /api/traces/<id>``) answers ``{"batches": [ResourceSpans...]}``,
and its v2 API (``/api/v2/traces/<id>``) ``{"trace": {"resourceSpans": [...]}}``. Both are
protobuf's own JSON mapping of OTLP rather than OTLP/JSON: trace and span IDs are base64,
not hex, and older Tempo versions still say ``instrumentationLibrarySpans`` and
``instrumentationLibrary`` for ``scopeSpans`` and ``scope``. ``as_otlp`` rewrites those
and leaves everything else (values, kinds, status) to the OTLP/JSON decoder, which
already reads enum names and integers alike.

Example::

    >>> doc = {"batches": [{"instrumentationLibrarySpans": [{"spans": [
    ...     {"traceId": "S/kvNXezTaajzpKdDg5HNg==", "spanId": "APBnqgupArc="}]}]}]}
    >>> as_otlp(doc)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"]
    '00f067aa0ba902b7'
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, TypeGuard

__all__ = ["as_otlp", "is_tempo"]

_HEX = re.compile(r"[0-9a-fA-F]*")
_ID_BYTES = {"traceId": 16, "spanId": 8, "parentSpanId": 8}


def is_tempo(doc: object) -> TypeGuard[dict[str, Any]]:
    """True for Tempo's ``{"batches": [...]}`` or ``{"trace": {...}}`` answers."""
    if not isinstance(doc, dict):
        return False
    return isinstance(doc.get("batches"), list) or isinstance(doc.get("trace"), dict)


def as_otlp(doc: dict[str, Any]) -> dict[str, Any]:
    """An OTLP/JSON ``TracesData`` holding what Tempo's answer ``doc`` holds."""
    if isinstance(doc.get("trace"), dict):
        doc = doc["trace"]
    batches = doc.get("batches", doc.get("resourceSpans"))
    if not isinstance(batches, list):
        return {"resourceSpans": batches}
    return {"resourceSpans": [_resource_spans(batch) for batch in batches]}


def _resource_spans(batch: object) -> object:
    if not isinstance(batch, dict):
        return batch  # left for the decoder to reject, with its place
    out = {k: v for k, v in batch.items() if k != "instrumentationLibrarySpans"}
    scopes = batch.get("scopeSpans", batch.get("instrumentationLibrarySpans"))
    if isinstance(scopes, list):
        out["scopeSpans"] = [_scope_spans(scope) for scope in scopes]
    return out


def _scope_spans(scope: object) -> object:
    if not isinstance(scope, dict):
        return scope
    out = {k: v for k, v in scope.items() if k != "instrumentationLibrary"}
    if "scope" not in out and "instrumentationLibrary" in scope:
        out["scope"] = scope["instrumentationLibrary"]
    spans = scope.get("spans")
    if isinstance(spans, list):
        out["spans"] = [_span(span) for span in spans]
    return out


def _span(span: object) -> object:
    if not isinstance(span, dict):
        return span
    out = dict(span)
    for key, size in _ID_BYTES.items():
        out[key] = _hex_id(span.get(key), size)
    links = span.get("links")
    if isinstance(links, list):
        out["links"] = [
            {**link, "traceId": _hex_id(link.get("traceId"), 16),
             "spanId": _hex_id(link.get("spanId"), 8)}
            if isinstance(link, dict) else link
            for link in links
        ]  # fmt: skip
    return {k: v for k, v in out.items() if v is not None}


def _hex_id(value: object, size: int) -> object:
    """A base64 ID as hex; a hex ID (or anything else) as it was, for the decoder to judge."""
    if not isinstance(value, str) or (len(value) == size * 2 and _HEX.fullmatch(value)):
        return value
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return value
    return raw.hex() if len(raw) == size else value
