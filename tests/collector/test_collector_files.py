"""``tracebraid import``: every file format, malformed lines and spans reported and skipped."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from collector_serve import ServeProcess
from collector_spans import make_span
from rich.console import Console

from tracebraid.collector import encode_protobuf
from tracebraid.collector.files import read_span_file
from tracebraid.collector.import_cli import Delivered, import_files
from tracebraid.model import Span, SpanKind, StatusCode, TraceId
from tracebraid.store import SqliteStore, open_store
from tracebraid.views.cli import main


def _otlp_line(spans: list[Span]) -> str:
    """One line as the Collector's file exporter writes it (OTLP/JSON, hex IDs)."""
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [
                            {"key": "service.name", "value": {"stringValue": spans[0].service}}
                        ]
                    },
                    "scopeSpans": [
                        {
                            "scope": {"name": "lib"},
                            "spans": [
                                {
                                    "traceId": s.trace_id,
                                    "spanId": s.span_id,
                                    "name": s.name,
                                    "kind": int(s.kind),
                                    "startTimeUnixNano": str(s.start_ns),
                                    "endTimeUnixNano": str(s.end_ns),
                                }
                                for s in spans
                            ],
                        }
                    ],
                }
            ]
        }
    )


def _import(capsys: pytest.CaptureFixture[str], db: Path, *files: Path) -> tuple[int, str]:
    code = main(["import", *map(str, files), "--store", f"sqlite:///{db}"])
    return code, capsys.readouterr().err


def _stored(db: Path) -> set[str]:
    store = open_store(f"sqlite:///{db}")
    try:
        return {s.span_id for t in store.iter_trace_ids() for s in store.spans_of_trace(t)}
    finally:
        store.close()


def test_json_lines_report_bad_lines_and_spans_with_line_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = [make_span(i) for i in range(3)]
    bad_span = make_span(9, end_ns=1)
    path = tmp_path / "traces.jsonl"
    path.write_text(
        "\n".join(
            [_otlp_line(good[:2]), '{"resourceSpans": [', _otlp_line([bad_span, good[2]]), ""]
        )
    )
    code, err = _import(capsys, tmp_path / "s.db", path)
    assert code == 1
    assert f"{path}:2: not valid JSON" in err
    assert f"{path}:3: resourceSpans[0].scopeSpans[0].spans[0]" in err
    assert "end_time_unix_nano (1) is before start_time_unix_nano" in err
    assert "imported 3 spans from 1 file(s)" in err
    assert "2 skipped" in err
    assert _stored(tmp_path / "s.db") == {s.span_id for s in good}


def test_reimport_is_idempotent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "traces.jsonl"
    path.write_text(_otlp_line([make_span(i) for i in range(5)]) + "\n")
    assert _import(capsys, tmp_path / "s.db", path)[0] == 0
    code, err = _import(capsys, tmp_path / "s.db", path)
    assert code == 0
    assert "(0 new, 5 already there)" in err


def test_pretty_printed_document_reports_the_line_of_the_bad_span(tmp_path: Path) -> None:
    spans = [make_span(i) for i in range(3)]
    doc = json.loads(_otlp_line(spans))
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][2]["spanId"] = "0" * 16
    path = tmp_path / "pretty.json"
    text = json.dumps(doc, indent=2)
    path.write_text(text)
    [chunk] = list(read_span_file(path))
    assert [s.span_id for s in chunk.spans] == [s.span_id for s in spans[:2]]
    [problem] = chunk.problems
    # The line is the one inside the bad span that holds its start time.
    starts = [n for n, line in enumerate(text.splitlines(), 1) if '"startTimeUnixNano"' in line]
    assert problem.line == starts[2]
    assert "span_id is all zeros" in problem.reason


JAEGER = {
    "data": [
        {
            "traceID": "4bf92f3577b34da6",
            "spans": [
                {
                    "traceID": "4bf92f3577b34da6",
                    "spanID": "a1",
                    "operationName": "POST /orders",
                    "references": [],
                    "startTime": 1_700_000_000_000_000,
                    "duration": 12_000,
                    "tags": [
                        {"key": "span.kind", "type": "string", "value": "server"},
                        {"key": "http.status_code", "type": "int64", "value": 201},
                    ],
                    "logs": [],
                    "processID": "p1",
                    "warnings": None,
                },
                {
                    "traceID": "4bf92f3577b34da6",
                    "spanID": "b2",
                    "operationName": "reserve-inventory",
                    "references": [
                        {"refType": "CHILD_OF", "traceID": "4bf92f3577b34da6", "spanID": "a1"},
                        {
                            "refType": "FOLLOWS_FROM",
                            "traceID": "0000000000000000000000000000abcd",
                            "spanID": "c3",
                        },
                    ],
                    "startTime": 1_700_000_000_003_000,
                    "duration": 30_000,
                    "tags": [
                        {"key": "span.kind", "type": "string", "value": "consumer"},
                        {"key": "otel.status_code", "type": "string", "value": "ERROR"},
                        {"key": "otel.status_description", "type": "string", "value": "timeout"},
                        {"key": "otel.scope.name", "type": "string", "value": "tracebraid"},
                        {"key": "messaging.message.id", "type": "string", "value": "evt_8821"},
                    ],
                    "logs": [
                        {
                            "timestamp": 1_700_000_000_004_000,
                            "fields": [
                                {"key": "event", "type": "string", "value": "exception"},
                                {"key": "exception.type", "type": "string", "value": "Timeout"},
                            ],
                        }
                    ],
                    "processID": "p2",
                    "warnings": None,
                },
                {
                    "traceID": "4bf92f3577b34da6",
                    "spanID": "d4",
                    "operationName": "broken",
                    "references": [],
                    "startTime": "yesterday",
                    "duration": 5,
                    "tags": [],
                    "processID": "p1",
                },
            ],
            "processes": {
                "p1": {"serviceName": "checkout-api", "tags": []},
                "p2": {
                    "serviceName": "inventory",
                    "tags": [{"key": "host.name", "type": "string", "value": "h1"}],
                },
            },
            "warnings": None,
        }
    ],
    "total": 0,
    "limit": 0,
    "offset": 0,
    "errors": None,
}


def test_jaeger_export_maps_references_tags_and_logs(tmp_path: Path) -> None:
    path = tmp_path / "jaeger.json"
    text = json.dumps(JAEGER, indent=2)
    path.write_text(text)
    [chunk] = list(read_span_file(path))
    root, consumer = chunk.spans
    assert root.trace_id == "00000000000000004bf92f3577b34da6"
    assert root.span_id == "00000000000000a1"
    assert root.kind is SpanKind.SERVER
    assert root.attributes == {"http.status_code": 201}
    assert root.end_ns - root.start_ns == 12_000_000
    assert consumer.parent_span_id == root.span_id
    [link] = consumer.links
    assert (link.trace_id, link.span_id) == ("0000000000000000000000000000abcd", "00000000000000c3")
    assert consumer.status is StatusCode.ERROR
    assert consumer.status_message == "timeout"
    assert consumer.scope == "tracebraid"
    assert consumer.attributes == {"messaging.message.id": "evt_8821"}
    assert consumer.service == "inventory"
    assert consumer.resource == {"host.name": "h1", "service.name": "inventory"}
    [event] = consumer.events
    assert event.name == "exception"
    assert event.attributes == {"exception.type": "Timeout"}
    [problem] = chunk.problems
    assert problem.line == text.splitlines().index('          "operationName": "broken",') + 1
    assert "startTime must be a whole number of microseconds" in problem.reason
    assert "data[0].spans[2] (spanID d4)" in problem.where


def _framed(bodies: list[bytes], varint: bool) -> bytes:
    out = bytearray()
    for body in bodies:
        if varint:
            n = len(body)
            while True:
                byte, n = n & 0x7F, n >> 7
                out.append(byte | (0x80 if n else 0))
                if not n:
                    break
        else:
            out += len(body).to_bytes(4, "big")
        out += body
    return bytes(out)


@pytest.mark.parametrize("layout", ["fixed32", "varint", "bare", "gzip-fixed32"])
def test_protobuf_files_in_every_layout(tmp_path: Path, layout: str) -> None:
    batches = [[make_span(i * 10 + j) for j in range(3)] for i in range(4)]
    bodies = [encode_protobuf(b) for b in batches]
    if layout == "bare":
        data = encode_protobuf([s for b in batches for s in b])
    else:
        data = _framed(bodies, varint=layout == "varint")
    if layout.startswith("gzip"):
        data = gzip.compress(data)
    path = tmp_path / "spans.pb"
    path.write_bytes(data)
    spans = [s for chunk in read_span_file(path, chunk_spans=4) for s in chunk.spans]
    assert spans == [s for b in batches for s in b]


def test_truncated_protobuf_file_keeps_the_whole_records(tmp_path: Path) -> None:
    bodies = [encode_protobuf([make_span(i)]) for i in range(3)]
    path = tmp_path / "cut.pb"
    path.write_bytes(_framed(bodies, varint=False)[:-5])
    chunks = list(read_span_file(path))
    assert [s.span_id for c in chunks for s in c.spans] == [make_span(i).span_id for i in (0, 1)]
    [problem] = [p for c in chunks for p in c.problems]
    assert "record 3 at byte" in problem.where
    assert "the file ends" in problem.reason


def test_gzipped_json_lines_and_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "traces.jsonl.gz"
    path.write_bytes(gzip.compress((_otlp_line([make_span(1), make_span(2)]) + "\n").encode()))
    code, err = _import(capsys, tmp_path / "s.db", tmp_path / "missing.jsonl", path)
    assert code == 2  # a typo stops the import before anything is written
    assert "no such file" in err and "missing.jsonl" in err and "OTLP JSON lines" in err
    assert not (tmp_path / "s.db").exists()
    code, err = _import(capsys, tmp_path / "s.db", path)
    assert code == 0, err
    assert _stored(tmp_path / "s.db") == {make_span(1).span_id, make_span(2).span_id}


def test_import_to_a_remote_serve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], serve: Callable[..., ServeProcess]
) -> None:
    process = serve(token="imp0rt")
    path = tmp_path / "jaeger.json"
    path.write_text(json.dumps(JAEGER))
    code = main(["import", str(path), "--endpoint", process.url, "--token", "imp0rt"])
    err = capsys.readouterr().err
    assert code == 1  # the broken Jaeger span is skipped
    assert "imported 2 spans" in err and "accepted by the collector" in err
    store = open_store(process.store_url)
    try:
        spans = store.spans_of_trace(TraceId("00000000000000004bf92f3577b34da6"))
    finally:
        store.close()
    assert [s.name for s in spans] == ["POST /orders", "reserve-inventory"]


def test_progress_bar_on_a_large_file(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    with path.open("w") as out:
        for i in range(0, 12_000, 60):
            out.write(_otlp_line([make_span(n) for n in range(i, i + 60)]) + "\n")
    assert path.stat().st_size > 1 << 20
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    store = SqliteStore(tmp_path / "s.db")

    def deliver(spans: list[Span]) -> Delivered:
        result = store.write(spans)
        return Delivered(result.inserted + result.duplicates, result.inserted)

    totals = import_files([str(path)], deliver, console=console, batch_spans=2000)
    store.close()
    assert totals.kept == 12_000 and totals.skipped == 0
    assert "big.jsonl" in screen.getvalue()
    assert "MB" in screen.getvalue()  # the byte counter of the bar
