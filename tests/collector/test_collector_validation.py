"""Per-span validation: one span the store cannot hold never costs the spans beside it.

A span is valid OTLP yet unstorable when a time lies between 2^63 and 2^64 (the store
keeps signed 64-bit nanoseconds), a JSON string holds a lone surrogate (``"\\ud800"``,
which cannot be written as UTF-8), or a Jaeger tag is an integer past 64 bits. Each
must be refused alone, in ``partial_success`` (HTTP) or as a skipped span (import),
and every valid span beside it stored.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from collector_spans import make_span
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from rich.console import Console

from tracebraid.collector import Limits, create_app, encode_protobuf
from tracebraid.collector.import_cli import Delivered, import_files
from tracebraid.collector.jaeger import decode_jaeger
from tracebraid.collector.memory import memory_bound
from tracebraid.collector.otlp import decode_protobuf
from tracebraid.collector.otlp_json import decode_json
from tracebraid.collector.validate import MAX_EXAMPLES, MAX_TIME_NS, span_problem
from tracebraid.errors import InputError
from tracebraid.model import Span, SpanEvent, TraceId
from tracebraid.store import SqliteStore
from tracebraid.views.cli import main

PB = "application/x-protobuf"
JS = "application/json"


def json_span(n: int, **changes: Any) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": f"{7:032x}",
        "spanId": f"{n + 1:016x}",
        "name": f"span-{n}",
        "kind": 2,
        "startTimeUnixNano": str(1_700_000_000_000_000_000 + n),
        "endTimeUnixNano": str(1_700_000_000_000_000_100 + n),
    }
    span.update(changes)
    return span


def json_body(spans: list[dict[str, Any]]) -> bytes:
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}
    return json.dumps(doc).encode()


class Driver:
    """The app in-process, synchronously."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.app = create_app(store, limits=Limits(max_body_bytes=1 << 20))
        self.loop = asyncio.new_event_loop()
        transport = httpx.ASGITransport(app=self.app)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")

    def post(self, media: str, body: bytes) -> httpx.Response:
        request = self.client.post("/v1/traces", content=body, headers={"Content-Type": media})
        return self.loop.run_until_complete(request)

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.run_until_complete(self.app.state.collector.close())
        self.loop.close()


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Driver]:
    store = SqliteStore(tmp_path / "spans.db")
    d = Driver(store)
    yield d
    d.close()
    store.close()


def _partial(response: httpx.Response, media: str) -> tuple[int, str]:
    assert response.status_code == 200, response.text
    if media == PB:
        partial = ExportTraceServiceResponse.FromString(response.content).partial_success
        return partial.rejected_spans, partial.error_message
    got = response.json().get("partialSuccess", {})
    return int(got.get("rejectedSpans", 0)), got.get("errorMessage", "")


@pytest.mark.parametrize(
    "changes",
    [
        {"start_ns": 2**63, "end_ns": 2**63 + 5},
        {"start_ns": 1, "end_ns": 2**64 - 1},
        {"events": (SpanEvent("late", 2**63 + 1),)},
    ],
    ids=["start-past-int64", "end-past-int64", "event-past-int64"],
)
def test_protobuf_time_past_int64_is_refused_alone(driver: Driver, changes: dict[str, Any]) -> None:
    trace = TraceId("a" * 32)
    good = [make_span(n, trace_id=trace) for n in range(5)]
    bad = make_span(99, trace_id=trace, **changes)
    rejected, message = _partial(driver.post(PB, encode_protobuf([*good, bad])), PB)
    assert rejected == 1
    assert "store cannot hold" in message
    assert {s.span_id for s in driver.store.spans_of_trace(trace)} == {s.span_id for s in good}


@pytest.mark.parametrize(
    "changes",
    [
        {"name": "\ud800"},
        {"attributes": [{"key": "k", "value": {"stringValue": "x\udfffy"}}]},
        {"attributes": [{"key": "\udc00", "value": {"intValue": "1"}}]},
        {"status": {"message": "\ud83d"}},
        {"events": [{"name": "\ud800", "timeUnixNano": "5"}]},
        {"startTimeUnixNano": str(2**63), "endTimeUnixNano": str(2**63)},
        {"attributes": [{"key": "d", "value": {"doubleValue": 10**400}}]},
    ],
    ids=["name", "attr-value", "attr-key", "status", "event", "time", "huge-double"],
)
def test_json_unstorable_span_is_refused_alone(driver: Driver, changes: dict[str, Any]) -> None:
    spans = [json_span(n) for n in range(3)] + [json_span(50, **changes)]
    rejected, message = _partial(driver.post(JS, json_body(spans)), JS)
    assert rejected == 1, message
    assert "spans[3]" in message
    assert driver.store.span_count() == 3


def test_json_surrogate_pairs_are_text_and_stored(driver: Driver) -> None:
    body = json_body([json_span(1, name="\ud83d\ude00")])  # json.dumps escapes it as a pair
    assert b"\\ud83d\\ude00" in body
    assert _partial(driver.post(JS, body), JS) == (0, "")
    assert [s.name for s in driver.store.spans_of_trace(TraceId(f"{7:032x}"))] == ["\U0001f600"]


def test_rejections_are_counted_with_a_few_examples_not_one_per_span() -> None:
    bad = [make_span(n, start_ns=2**63, end_ns=2**63) for n in range(1000)]
    decoded = decode_protobuf(encode_protobuf([*bad, make_span(5000)]))
    assert len(decoded.spans) == 1
    assert decoded.rejected_count == 1000
    assert len(decoded.rejections) == MAX_EXAMPLES


def test_a_body_of_only_bad_spans_says_how_many_and_a_few_why(driver: Driver) -> None:
    bad = [json_span(n, name="\ud800") for n in range(300)]
    response = driver.post(JS, json_body(bad))
    assert response.status_code == 400
    message = response.json()["message"]
    assert message.startswith("300 of 300 spans rejected")
    assert "and 295 more" in message


def test_span_problem_checks_every_value() -> None:
    assert span_problem(make_span(1)) is None
    assert span_problem(make_span(1, end_ns=MAX_TIME_NS)) is None
    assert "64 bits" in str(span_problem(make_span(1, attributes={"n": 2**64})))
    assert "64 bits" in str(span_problem(make_span(1, resource={"n": (1, -(2**63) - 1)})))
    assert "Unicode" in str(span_problem(make_span(1, scope="\udfff")))


def test_jaeger_tag_past_64_bits_is_refused_alone() -> None:
    def span(n: int, value: object) -> dict[str, Any]:
        return {
            "traceID": "ab" * 16,
            "spanID": f"{n + 1:016x}",
            "operationName": "op",
            "startTime": 1_700_000_000_000_000,
            "duration": 5,
            "processID": "p1",
            "tags": [{"key": "big", "type": "int64", "value": value}],
        }

    trace = {"processes": {"p1": {"serviceName": "svc"}}}
    doc = {"data": [{**trace, "spans": [span(1, 2**70), span(2, 5), span(3, "\ud800")]}]}
    decoded = decode_jaeger(doc)
    assert [s.span_id for s in decoded.spans] == [f"{3:016x}"]
    assert decoded.rejected_count == 2


def _jsonl_line(first: int, count: int, **bad: Any) -> str:
    spans = [json_span(n) for n in range(first, first + count)]
    if bad:
        spans[count // 2] = json_span(first + count // 2, **bad)
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})


def test_import_keeps_the_valid_spans_and_counts_the_unstorable_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "spans.jsonl"
    lines = [_jsonl_line(0, 2000), _jsonl_line(2000, 2001, name="\ud800"), _jsonl_line(4001, 2000)]
    path.write_text("\n".join(lines) + "\n")
    db = tmp_path / "spans.db"
    code = main(["import", str(path), "--store", f"sqlite:///{db}"])
    err = capsys.readouterr().err
    assert code == 1
    assert "imported 6,000 spans" in err
    assert "1 skipped" in err
    assert f"{path}:2:" in err and "Unicode" in err
    with SqliteStore(db) as store:
        assert store.span_count() == 6000


def test_import_skips_a_span_the_store_refuses_and_keeps_its_batch(tmp_path: Path) -> None:
    """A store stricter than the decoders: its refusal costs one span, not the file."""
    path = tmp_path / "spans.jsonl"
    path.write_text(_jsonl_line(0, 100) + "\n" + _jsonl_line(100, 100) + "\n")
    kept: list[Span] = []

    def deliver(spans: Any) -> Delivered:
        if any(s.name == "span-42" for s in spans):
            raise InputError("span-42 is not welcome")
        kept.extend(spans)
        return Delivered(len(spans), len(spans))

    console = Console(file=io.StringIO(), width=200)
    totals = import_files([str(path)], deliver, console=console, batch_spans=64)
    assert (totals.kept, totals.skipped, totals.unreadable) == (199, 1, 0)
    assert len(kept) == 199
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert "span-42 is not welcome" in output


def test_json_decode_skips_the_text_check_only_when_no_surrogate_can_be_there() -> None:
    clean = decode_json(json_body([json_span(1, name="caf\u00e9")]))
    assert clean.rejected_count == 0
    raw = json_body([json_span(1, name="PLACEHOLDER")]).replace(b"PLACEHOLDER", b"\xed\xa0\x80")
    assert decode_json(raw).rejected_count == 1


def test_json_denser_in_objects_than_any_export_is_refused_before_parsing(
    driver: Driver,
) -> None:
    """``[{},{},...]`` would cost 27 times its size parsed; refused at once, with why."""
    body = b'{"resourceSpans":[{"scopeSpans":[{"spans":[' + b",".join([b"{}"] * 50_000)
    response = driver.post(JS, body + b"]}]}]}")
    assert response.status_code == 400
    assert "objects and arrays" in response.json()["message"]


def test_the_memory_bound_follows_the_limits() -> None:
    small = memory_bound(Limits(max_body_bytes=1 << 20, max_buffered_bytes=64 << 20), processes=2)
    large = memory_bound(Limits(max_body_bytes=20 << 20), processes=2)
    assert small.total < large.total
    assert large.workers == 2 and large.per_worker > 16 * (20 << 20)
    assert memory_bound(Limits(), processes=0).workers == 0


def test_buffered_bytes_below_one_body_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve", "--max-body-bytes", "1000000", "--max-buffered-bytes", "1000"])
    assert code == 2
    assert "--max-buffered-bytes" in capsys.readouterr().err
