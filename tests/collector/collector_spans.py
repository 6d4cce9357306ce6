"""Spans for the collector tests: realistic, with every field an exporter can carry."""

from __future__ import annotations

from tracebraid.model import Span, SpanEvent, SpanId, SpanKind, SpanLink, StatusCode, TraceId

__all__ = ["make_span"]


def make_span(n: int, *, trace: int = 1, parent: int | None = None, **changes: object) -> Span:
    """A realistic consumer span with attributes, an event and a link; IDs derived from n."""
    fields: dict[str, object] = {
        "trace_id": TraceId(f"{trace:032x}"),
        "span_id": SpanId(f"{n + 1:016x}"),
        "parent_span_id": SpanId(f"{parent + 1:016x}") if parent is not None else None,
        "name": "reserve-inventory",
        "kind": SpanKind.CONSUMER,
        "start_ns": 1_700_000_000_000_000_000 + n * 1000,
        "end_ns": 1_700_000_000_000_000_000 + n * 1000 + 500,
        "service": "inventory",
        "status": StatusCode.OK,
        "attributes": {
            "messaging.system": "rabbitmq",
            "messaging.message.id": f"evt_{n}",
            "tracebraid.attempt": 1,
            "ratio": 0.5,
            "flags": (True, False),
            "tags": ("a", "b"),
        },
        "events": (SpanEvent("tracebraid.started", 1_700_000_000_000_000_000 + n * 1000),),
        "links": (SpanLink(TraceId(f"{trace + 1:032x}"), SpanId(f"{n + 7:016x}"), {"k": "v"}),),
        "resource": {"service.name": "inventory", "host.name": "h1"},
        "scope": "tracebraid",
    }
    fields.update(changes)
    return Span(**fields)  # type: ignore[arg-type]
