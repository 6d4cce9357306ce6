"""Hostile input: over 10,000 malformed payloads, and not one 500, crash or silent refusal.

The bulk runs against the ASGI app in-process (httpx's ASGI transport: the same app,
without sockets, so thousands of payloads take seconds); a smaller sample of the same
payloads goes to a real ``tracebraid serve`` process. Every answer must be a status
the OTLP/HTTP spec allows, carry a message that says what was wrong, and the valid
spans of a mixed batch must be stored.
"""

from __future__ import annotations

import asyncio
import copy
import gzip
import json
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from collector_serve import ServeProcess
from collector_spans import make_span
from google.rpc.status_pb2 import Status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

from tracebraid.collector import Limits, create_app, encode_protobuf
from tracebraid.model import SpanId, TraceId
from tracebraid.store import SqliteStore

LIMIT = 256 * 1024
PB = "application/x-protobuf"
JS = "application/json"
# TRACEBRAID_HOSTILE_SCALE=0.1 for a quick local run; the default sends the full 10,000+.
pytestmark = pytest.mark.slow
SCALE = float(os.environ.get("TRACEBRAID_HOSTILE_SCALE", "1"))
FAST = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _n(examples: int) -> int:
    return max(10, int(examples * SCALE))


Payload = tuple[str, dict[str, str], bytes]  # (media type, extra headers, body)

VALID_SPANS = [make_span(i, parent=None if i == 0 else 0) for i in range(4)]
VALID_PB = encode_protobuf(VALID_SPANS)
VALID_JSON: dict[str, Any] = {
    "resourceSpans": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "x"}}]},
            "scopeSpans": [
                {
                    "scope": {"name": "lib"},
                    "spans": [
                        {
                            "traceId": "5b8efff798038103d269b633813fc60c",
                            "spanId": "eee19b7ec3c1b174",
                            "parentSpanId": "eee19b7ec3c1b173",
                            "name": "span",
                            "kind": 2,
                            "startTimeUnixNano": "1544712660000000000",
                            "endTimeUnixNano": "1544712661000000000",
                            "attributes": [{"key": "a", "value": {"stringValue": "b"}}],
                            "events": [{"name": "e", "timeUnixNano": "1", "attributes": []}],
                            "links": [
                                {
                                    "traceId": "5b8efff798038103d269b633813fc60d",
                                    "spanId": "eee19b7ec3c1b175",
                                }
                            ],
                            "status": {"code": 1, "message": ""},
                        }
                    ],
                }
            ],
        }
    ]
}
SPAN_PATH = ("resourceSpans", 0, "scopeSpans", 0, "spans", 0)
PATHS: list[tuple[Any, ...]] = [
    (),
    ("resourceSpans",),
    ("resourceSpans", 0),
    ("resourceSpans", 0, "resource"),
    ("resourceSpans", 0, "resource", "attributes"),
    ("resourceSpans", 0, "resource", "attributes", 0, "value"),
    ("resourceSpans", 0, "scopeSpans"),
    ("resourceSpans", 0, "scopeSpans", 0, "scope"),
    ("resourceSpans", 0, "scopeSpans", 0, "spans"),
    SPAN_PATH,
    *[
        (*SPAN_PATH, *p)
        for p in [
            ("traceId",),
            ("spanId",),
            ("parentSpanId",),
            ("name",),
            ("kind",),
            ("startTimeUnixNano",),
            ("endTimeUnixNano",),
            ("attributes",),
            ("attributes", 0),
            ("attributes", 0, "key"),
            ("attributes", 0, "value"),
            ("events",),
            ("events", 0),
            ("events", 0, "timeUnixNano"),
            ("links",),
            ("links", 0, "traceId"),
            ("status",),
            ("status", "code"),
        ]
    ],
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    doc = copy.deepcopy(doc)
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return doc


@st.composite
def wrong_json_types(draw: st.DrawFn) -> Payload:
    doc = _replace(VALID_JSON, draw(st.sampled_from(PATHS)), draw(json_values))
    body = json.dumps(doc, allow_nan=True).encode()
    return JS, {}, body


@st.composite
def broken_protobuf(draw: st.DrawFn) -> Payload:
    how = draw(st.sampled_from(["truncate", "flip", "random", "append"]))
    body = bytearray(VALID_PB)
    if how == "truncate":
        body = body[: draw(st.integers(0, len(body) - 1))]
    elif how == "flip":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(body) - 1))
            body[i] = draw(st.integers(0, 255))
    elif how == "random":
        body = bytearray(draw(st.binary(max_size=2048)))
    else:
        body += draw(st.binary(min_size=1, max_size=64))
    media = draw(st.sampled_from([PB, PB, JS]))
    return media, {}, bytes(body)


def _nested_any_value(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"stringValue": "leaf"}
    for i in range(depth):
        value = (
            {"arrayValue": {"values": [value]}}
            if i % 2
            else {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
        )
    return value


@st.composite
def extreme_values(draw: st.DrawFn) -> Payload:
    kind = draw(
        st.sampled_from(
            ["huge_attr", "deep_json", "deep_attr", "zero_ids", "bad_utf8_pb", "bad_utf8_json"]
        )
    )
    if kind == "huge_attr":
        size = draw(st.sampled_from([10_000, 100_000, LIMIT]))
        span = make_span(draw(st.integers(0, 10**6)), attributes={"big": "x" * size})
        return PB, {}, encode_protobuf([span])
    if kind == "deep_json":
        depth = draw(st.integers(10, 200_000))
        return JS, {}, b'{"resourceSpans": ' + b"[" * depth + b"]" * depth + b"}"
    if kind == "deep_attr":
        depth = draw(st.integers(5, 400))
        doc = _replace(VALID_JSON, (*SPAN_PATH, "attributes", 0, "value"), _nested_any_value(depth))
        return JS, {}, json.dumps(doc).encode()
    if kind == "zero_ids":
        field = draw(st.sampled_from(["trace_id", "span_id"]))
        zero = TraceId("0" * 32) if field == "trace_id" else SpanId("0" * 16)
        return PB, {}, encode_protobuf([make_span(1, **{field: zero})])
    if kind == "bad_utf8_pb":
        body = encode_protobuf([make_span(2, name="NAME-PLACEHOLDER")])
        junk = draw(st.binary(min_size=16, max_size=16).filter(_not_utf8))
        return PB, {}, body.replace(b"NAME-PLACEHOLDER", junk)
    body = json.dumps(VALID_JSON).encode().replace(b'"span"', b'"\xff\xfe\xfa"')
    return JS, {}, body


def _not_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


# Compressed once: zeros past the limit by one byte, by 4x and by 64x (16 MiB in 16 KiB).
BOMBS = [gzip.compress(b"\0" * n, compresslevel=9) for n in (LIMIT + 1, 4 * LIMIT, 64 * LIMIT)]


@st.composite
def bad_compression(draw: st.DrawFn) -> Payload:
    kind = draw(st.sampled_from(["bomb", "corrupt", "truncated", "wrong_coding", "not_gzip"]))
    if kind == "bomb":
        return PB, {"Content-Encoding": "gzip"}, draw(st.sampled_from(BOMBS))
    packed = bytearray(gzip.compress(VALID_PB))
    if kind == "corrupt":
        i = draw(st.integers(10, len(packed) - 9))
        packed[i] ^= draw(st.integers(1, 255))
    elif kind == "truncated":
        packed = packed[: draw(st.integers(0, len(packed) - 1))]
    elif kind == "not_gzip":
        packed = bytearray(VALID_PB)
    coding = "br" if kind == "wrong_coding" else draw(st.sampled_from(["gzip", "deflate"]))
    return PB, {"Content-Encoding": coding}, bytes(packed)


media_types = st.sampled_from(["text/plain", "application/xml", "", "application/grpc", "x/y"])


@st.composite
def wrong_media(draw: st.DrawFn) -> Payload:
    return draw(media_types), {}, draw(st.binary(max_size=64))


any_payload = st.one_of(
    wrong_json_types(), broken_protobuf(), extreme_values(), bad_compression(), wrong_media()
)


def check(response: httpx.Response, media: str) -> None:
    """Every answer: an allowed status, and a message whenever something was refused."""
    assert response.status_code in (200, 400, 413, 415), response.text[:300]
    encoding_pb = media == PB
    if response.status_code == 200:
        if encoding_pb:
            partial = ExportTraceServiceResponse.FromString(response.content).partial_success
            rejected, message = partial.rejected_spans, partial.error_message
        else:
            partial_json = response.json().get("partialSuccess", {})
            rejected = int(partial_json.get("rejectedSpans", 0))
            message = partial_json.get("errorMessage", "")
        assert bool(rejected) == bool(message)
        return
    if encoding_pb:
        message = Status.FromString(response.content).message
    else:
        message = response.json()["message"]
    assert len(message) > 15, message


class AppDriver:
    """The ASGI app driven in-process on its own event loop, from synchronous tests."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.app = create_app(store, limits=Limits(max_body_bytes=LIMIT))
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://collector"
        )

    def post(self, media: str, headers: dict[str, str], body: bytes) -> httpx.Response:
        request = self.client.post(
            "/v1/traces", content=body, headers={"Content-Type": media, **headers}
        )
        return self.loop.run_until_complete(request)

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.run_until_complete(self.app.state.collector.close())
        self.loop.close()


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppDriver]:
    store = SqliteStore(tmp_path_factory.mktemp("hostile") / "spans.db")
    driver = AppDriver(store)
    yield driver
    driver.close()
    store.close()


SENT: Counter[str] = Counter()


def _post(driver: AppDriver, payload: Payload) -> httpx.Response:
    SENT["in-process"] += 1
    return driver.post(*payload)


@settings(FAST, max_examples=_n(3000))
@given(payload=wrong_json_types())
def test_wrong_json_types(app_client: AppDriver, payload: Payload) -> None:
    check(_post(app_client, payload), payload[0])


@settings(FAST, max_examples=_n(3000))
@given(payload=broken_protobuf())
def test_broken_protobuf(app_client: AppDriver, payload: Payload) -> None:
    check(_post(app_client, payload), payload[0])


@settings(FAST, max_examples=_n(1500))
@given(payload=extreme_values())
def test_extreme_values(app_client: AppDriver, payload: Payload) -> None:
    check(_post(app_client, payload), payload[0])


@settings(FAST, max_examples=_n(1500))
@given(payload=bad_compression())
def test_bad_compression(app_client: AppDriver, payload: Payload) -> None:
    response = _post(app_client, payload)
    check(response, payload[0])
    if payload[2][:2] == b"\x1f\x8b" and len(payload[2]) < 10_000 and response.status_code == 413:
        assert "inflates past the limit" in Status.FromString(response.content).message


@settings(FAST, max_examples=_n(500))
@given(payload=wrong_media())
def test_wrong_media_type(app_client: AppDriver, payload: Payload) -> None:
    response = _post(app_client, payload)
    assert response.status_code == 415
    assert "is not an OTLP media type" in response.json()["message"]


span_numbers = st.lists(st.integers(0, 2**40), min_size=1, max_size=12, unique=True)
defects = st.sampled_from(
    [
        {"trace_id": TraceId("0" * 32)},
        {"span_id": SpanId("0" * 16)},
        {"end_ns": 5},
        {"start_ns": 0},
        {"parent_span_id": SpanId("00000000000000ff00")},  # nine bytes
    ]
)


@settings(FAST, max_examples=_n(500))
@given(numbers=span_numbers, bad=st.lists(defects, min_size=1, max_size=5), seed=st.integers())
def test_mixed_batch_stores_the_valid_spans(
    app_client: AppDriver,
    numbers: list[int],
    bad: list[dict[str, Any]],
    seed: int,
) -> None:
    store = app_client.store
    trace = TraceId(f"{abs(seed) % 2**120 + 1:032x}")
    good = [make_span(n, trace_id=trace) for n in numbers]
    broken = [make_span(10**13 + i, **{"trace_id": trace, **d}) for i, d in enumerate(bad)]
    response = _post(app_client, (PB, {}, encode_protobuf(good + broken)))
    check(response, PB)
    assert response.status_code == 200
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == len(broken)
    stored = {s.span_id for s in store.spans_of_trace(trace)}
    assert {s.span_id for s in good} <= stored
    assert not {s.span_id for s in broken if s.trace_id == trace} & stored


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    db = tmp_path_factory.mktemp("hostile-serve") / "spans.db"
    process = ServeProcess(f"sqlite:///{db}", "--max-body-bytes", str(LIMIT))
    process.start()
    process.client = httpx.Client(base_url=process.url, timeout=30)
    yield process
    process.client.close()
    assert process.proc is not None and process.proc.poll() is None, "serve crashed"
    process.stop()


@settings(FAST, max_examples=_n(150))
@given(payload=any_payload)
def test_sample_against_the_real_server(real_server: ServeProcess, payload: Payload) -> None:
    media, headers, body = payload
    SENT["real server"] += 1
    response = real_server.client.post(
        "/v1/traces", content=body, headers={"Content-Type": media, **headers}
    )
    if media in (PB, JS):
        check(response, media)
    else:
        assert response.status_code == 415
    assert real_server.client.get("/healthz").status_code == 200


def test_the_real_server_survived_and_still_stores(real_server: ServeProcess) -> None:
    spans = [make_span(i, trace_id=TraceId("f" * 32)) for i in range(3)]
    response = httpx.post(
        f"{real_server.url}/v1/traces",
        content=encode_protobuf(spans),
        headers={"Content-Type": PB},
    )
    assert response.status_code == 200
    stats = httpx.get(f"{real_server.url}/stats").json()
    assert stats["spans_accepted"] >= 3
    assert sum(stats["refusals"].values()) > 0


def test_at_least_ten_thousand_payloads_were_sent() -> None:
    assert sum(SENT.values()) >= 10_000 * min(SCALE, 1.0), SENT
