"""Interop with the real exporter: OTLPSpanExporter -> a running ``tracebraid serve`` process."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from collector_serve import ServeProcess
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from tracebraid.collector import encode_protobuf
from tracebraid.model import Span
from tracebraid.sdk.convert import to_span
from tracebraid.store import open_store


def _finished_spans() -> list[ReadableSpan]:
    """An order flow from the real SDK: producer, consumers, a link, events, an error."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout-api"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tracebraid.tests", "1.0")
    with (
        tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER) as root,
        tracer.start_as_current_span(
            "order.placed publish",
            kind=SpanKind.PRODUCER,
            attributes={"messaging.message.id": "evt_8821", "messaging.batch": (1, 2, 3)},
        ) as producer,
    ):
        producer.add_event("sent", {"bytes": 512, "ratio": 0.5, "ok": True})
    producer_context = producer.get_span_context()
    consumer = tracer.start_span(
        "reserve-inventory",
        kind=SpanKind.CONSUMER,
        links=[Link(producer_context, {"messaging.operation.type": "process"})],
        attributes={"tracebraid.attempt": 2, "tags": ("a", "b")},
    )
    consumer.record_exception(TimeoutError("warehouse timed out"))
    consumer.set_status(Status(StatusCode.ERROR, "timed out"))
    consumer.end()
    provider.shutdown()
    assert root.get_span_context().trace_id == producer_context.trace_id
    return list(memory.get_finished_spans())


def _stored(process: ServeProcess, expected: list[Span]) -> list[Span]:
    store = open_store(process.store_url)
    try:
        got = {s.key: s for t in {s.trace_id for s in expected} for s in store.spans_of_trace(t)}
    finally:
        store.close()
    return [got[s.key] for s in expected if s.key in got]


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_official_exporter_delivers_spans_as_exported(
    serve: Callable[..., ServeProcess], compression: Compression
) -> None:
    process = serve()
    spans = _finished_spans()
    exporter = OTLPSpanExporter(endpoint=f"{process.url}/v1/traces", compression=compression)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()
    expected = [to_span(s) for s in spans]
    assert _stored(process, expected) == expected
    consumer = next(s for s in expected if s.name == "reserve-inventory")
    assert consumer.links and consumer.events  # the comparison covered links and events


@pytest.mark.parametrize("gzipped", [False, True])
def test_otlp_json_as_the_spec_writes_it_is_stored(
    serve: Callable[..., ServeProcess], gzipped: bool
) -> None:
    process = serve()
    expected = [to_span(s) for s in _finished_spans()]
    body = json.dumps(_spec_json(expected)).encode()
    headers = {"Content-Type": "application/json"}
    if gzipped:
        body, headers = gzip.compress(body), {**headers, "Content-Encoding": "gzip"}
    response = httpx.post(f"{process.url}/v1/traces", content=body, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {}
    assert _stored(process, expected) == expected


def test_token_is_required_by_the_process(serve: Callable[..., ServeProcess]) -> None:
    process = serve(token="tok-123")
    body = encode_protobuf([to_span(s) for s in _finished_spans()])
    headers = {"Content-Type": "application/x-protobuf"}
    denied = httpx.post(f"{process.url}/v1/traces", content=body, headers=headers)
    assert denied.status_code == 401
    exporter = OTLPSpanExporter(
        endpoint=f"{process.url}/v1/traces", headers={"Authorization": "Bearer tok-123"}
    )
    assert exporter.export(_finished_spans()) is SpanExportResult.SUCCESS
    exporter.shutdown()
    stats = httpx.get(f"{process.url}/stats", headers=process.headers).json()
    assert stats["spans_accepted"] == 3


def test_non_loopback_bind_without_token_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tracebraid", "serve", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "TRACEBRAID_TOKEN": ""},
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0 without a token" in result.stderr
    assert "--insecure" in result.stderr
    assert not (tmp_path / "tracebraid.db").exists()


def _spec_json(spans: list[Span]) -> dict[str, object]:
    """OTLP/JSON exactly as the specification writes it: hex IDs, int64 as strings."""

    def value(v: object) -> dict[str, object]:
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}
        if isinstance(v, float):
            return {"doubleValue": v}
        if isinstance(v, tuple):
            return {"arrayValue": {"values": [value(x) for x in v]}}
        return {"stringValue": v}

    def attrs(a: object) -> list[dict[str, object]]:
        assert isinstance(a, dict)
        return [{"key": k, "value": value(v)} for k, v in a.items()]

    first = spans[0]
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": attrs(dict(first.resource))},
                "scopeSpans": [
                    {
                        "scope": {"name": first.scope, "version": "1.0"},
                        "spans": [
                            {
                                "traceId": s.trace_id.upper(),
                                "spanId": s.span_id,
                                "parentSpanId": s.parent_span_id or "",
                                "name": s.name,
                                "kind": int(s.kind),
                                "startTimeUnixNano": str(s.start_ns),
                                "endTimeUnixNano": str(s.end_ns),
                                "attributes": attrs(dict(s.attributes)),
                                "events": [
                                    {
                                        "name": e.name,
                                        "timeUnixNano": str(e.time_ns),
                                        "attributes": attrs(dict(e.attributes)),
                                    }
                                    for e in s.events
                                ],
                                "links": [
                                    {
                                        "traceId": li.trace_id,
                                        "spanId": li.span_id,
                                        "attributes": attrs(dict(li.attributes)),
                                    }
                                    for li in s.links
                                ],
                                "status": {"code": int(s.status), "message": s.status_message},
                            }
                            for s in spans
                        ],
                    }
                ],
            }
        ]
    }
