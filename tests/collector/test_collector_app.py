"""The ASGI app in-process: OTLP/HTTP responses, limits, throttling, durable acks, the token."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from collector_spans import make_span
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tracebraid.collector import Limits, create_app, encode_protobuf
from tracebraid.errors import StoreError
from tracebraid.model import Span
from tracebraid.store import SqliteStore
from tracebraid.store.base import WriteResult

PB = {"Content-Type": "application/x-protobuf"}


class GatedStore(SqliteStore):
    """A real SQLite store whose writes wait for the test to open the gate (or fail)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.fail_with: Exception | None = None

    def write(self, spans: Sequence[Span]) -> WriteResult:
        self.entered.set()
        self.gate.wait(30)
        if self.fail_with is not None:
            raise self.fail_with
        return super().write(spans)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "spans.db")
    yield store
    store.close()


async def _client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://collector") as client:
        yield client
    await app.state.collector.close()


@pytest.fixture
async def client(store: SqliteStore) -> AsyncIterator[httpx.AsyncClient]:
    async for c in _client(create_app(store, limits=Limits(max_body_bytes=1 << 20))):
        yield c


def _spans(n: int, start: int = 0) -> list[Span]:
    return [make_span(i) for i in range(start, start + n)]


async def test_protobuf_export_is_stored_and_answered_in_protobuf(
    client: httpx.AsyncClient, store: SqliteStore
) -> None:
    spans = _spans(20)
    response = await client.post("/v1/traces", content=encode_protobuf(spans), headers=PB)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    assert not ExportTraceServiceResponse.FromString(response.content).HasField("partial_success")
    assert store.spans_of_trace(spans[0].trace_id) == sorted(spans, key=lambda s: s.start_ns)


async def test_replayed_export_stores_nothing_twice(
    client: httpx.AsyncClient, store: SqliteStore
) -> None:
    body = encode_protobuf(_spans(30))
    for _ in range(3):
        assert (await client.post("/v1/traces", content=body, headers=PB)).status_code == 200
    assert store.span_count() == 30
    stats = (await client.get("/stats")).json()
    assert stats["spans_inserted"] == 30
    assert stats["spans_duplicate"] == 60


async def test_json_export_is_answered_in_json_with_partial_success(
    client: httpx.AsyncClient, store: SqliteStore
) -> None:
    good = {
        "traceId": "5B8EFFF798038103D269B633813FC60C",
        "spanId": "EEE19B7EC3C1B174",
        "name": "ok",
        "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": "1544712661000000000",
    }
    bad = {**good, "spanId": "EEE19B7EC3C1B175", "endTimeUnixNano": "1"}
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [good, bad]}]}]}
    response = await client.post("/v1/traces", json=doc)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert "1 of 2 spans rejected" in partial["errorMessage"]
    assert "end_time_unix_nano (1) is before start_time_unix_nano" in partial["errorMessage"]
    assert store.span_count() == 1


async def test_all_spans_invalid_is_400_with_a_status(client: httpx.AsyncClient) -> None:
    bad = encode_protobuf([make_span(0, end_ns=1)])
    response = await client.post("/v1/traces", content=bad, headers=PB)
    assert response.status_code == 400
    status = Status.FromString(response.content)
    assert status.code == 3
    assert "1 of 1 spans rejected" in status.message


async def test_undecodable_bodies_are_400_saying_why(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/traces", content=b"\x0a\xff\xff", headers=PB)
    assert response.status_code == 400
    assert "not an OTLP protobuf" in Status.FromString(response.content).message
    response = await client.post(
        "/v1/traces", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["message"].startswith("body is not valid JSON")


async def test_gzip_bodies_are_accepted(client: httpx.AsyncClient, store: SqliteStore) -> None:
    body = gzip.compress(encode_protobuf(_spans(10)))
    response = await client.post(
        "/v1/traces", content=body, headers={**PB, "Content-Encoding": "gzip"}
    )
    assert response.status_code == 200
    assert store.span_count() == 10


async def test_gzip_bomb_is_413_without_inflating_it(client: httpx.AsyncClient) -> None:
    bomb = gzip.compress(b"\0" * (512 << 20), compresslevel=9)  # 512 MiB in ~500 KiB
    assert len(bomb) < 1 << 20
    started = time.perf_counter()
    response = await client.post(
        "/v1/traces", content=bomb, headers={**PB, "Content-Encoding": "gzip"}
    )
    assert response.status_code == 413
    assert "inflates past the limit" in Status.FromString(response.content).message
    # Inflating all 512 MiB takes seconds; stopping at the 1 MiB limit takes milliseconds.
    assert time.perf_counter() - started < 1.0


async def test_body_over_the_limit_is_413_declared_or_streamed(client: httpx.AsyncClient) -> None:
    big = b"\0" * ((1 << 20) + 1)
    response = await client.post("/v1/traces", content=big, headers=PB)
    assert response.status_code == 413
    assert "over the limit of 1048576" in Status.FromString(response.content).message

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"\0" * 65536

    response = await client.post("/v1/traces", content=chunks(), headers=PB)
    assert response.status_code == 413


async def test_unsupported_media_type_and_encoding_are_415(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/traces", content=b"x", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert "text/plain is not an OTLP media type" in response.json()["message"]
    response = await client.post(
        "/v1/traces", content=b"x", headers={**PB, "Content-Encoding": "br"}
    )
    assert response.status_code == 415
    assert "Content-Encoding 'br' is not supported" in Status.FromString(response.content).message


async def test_ack_waits_for_the_commit_and_a_full_queue_is_503(tmp_path: Path) -> None:
    store = GatedStore(tmp_path / "gated.db")
    app = create_app(store, limits=Limits(max_queue_spans=10))
    async for client in _client(app):
        first = asyncio.create_task(
            client.post("/v1/traces", content=encode_protobuf(_spans(10)), headers=PB)
        )
        await asyncio.to_thread(store.entered.wait, 10)
        await asyncio.sleep(0.1)
        assert not first.done(), "answered before the store committed"
        assert store.span_count() == 0

        throttled = await client.post(
            "/v1/traces", content=encode_protobuf(_spans(5, 100)), headers=PB
        )
        assert throttled.status_code == 503
        assert int(throttled.headers["Retry-After"]) >= 1
        assert "write queue is full" in Status.FromString(throttled.content).message

        store.gate.set()
        assert (await first).status_code == 200
        assert store.span_count() == 10
        stats = (await client.get("/stats")).json()
        assert stats["refusals"] == {"503": 1}
        assert stats["queue_depth_spans"] == 0
    store.close()


async def test_store_failure_is_503_retryable_and_nothing_is_acknowledged(
    tmp_path: Path,
) -> None:
    store = GatedStore(tmp_path / "failing.db")
    store.fail_with = StoreError("disk full")
    store.gate.set()
    async for client in _client(create_app(store)):
        response = await client.post("/v1/traces", content=encode_protobuf(_spans(3)), headers=PB)
        assert response.status_code == 503
        assert "Retry-After" in response.headers
        assert "disk full" in Status.FromString(response.content).message
        store.fail_with = None
        response = await client.post("/v1/traces", content=encode_protobuf(_spans(3)), headers=PB)
        assert response.status_code == 200
        assert store.span_count() == 3
    store.close()


async def test_token_guards_every_route_including_extra_ones(store: SqliteStore) -> None:
    extra = Route("/ui", lambda request: PlainTextResponse("ui"))
    app = create_app(store, token="s3cret", extra_routes=[extra])
    async for client in _client(app):
        for method, path in [("POST", "/v1/traces"), ("GET", "/healthz"), ("GET", "/stats")]:
            response = await client.request(method, path, headers=PB)
            assert response.status_code == 401, path
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        response = await client.get("/ui", headers={"Authorization": "Bearer wrong"})
        assert response.status_code == 401
        assert response.json()["message"] == "the bearer token is wrong"
        good = {"Authorization": "Bearer s3cret"}
        assert (await client.get("/ui", headers=good)).text == "ui"
        response = await client.post(
            "/v1/traces", content=encode_protobuf(_spans(2)), headers={**PB, **good}
        )
        assert response.status_code == 200


async def test_health_and_stats(client: httpx.AsyncClient, store: SqliteStore) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    await client.post("/v1/traces", content=encode_protobuf(_spans(4)), headers=PB)
    mixed = encode_protobuf([make_span(10), make_span(11, start_ns=0)])
    await client.post("/v1/traces", content=mixed, headers=PB)
    stats = (await client.get("/stats")).json()
    assert stats["spans_accepted"] == 5
    assert stats["spans_rejected"] == 1
    assert stats["store_spans"] == 5 == store.span_count()
    assert stats["queue_capacity_spans"] == Limits().max_queue_spans
    assert json.dumps(stats)  # plain JSON all the way down


async def test_requests_waiting_to_be_queued_are_bounded_too(tmp_path: Path) -> None:
    store = GatedStore(tmp_path / "gated.db")
    app = create_app(store, limits=Limits(max_unqueued_requests=2))
    async for client in _client(app):

        def post(start: int, client: httpx.AsyncClient = client) -> asyncio.Task[httpx.Response]:
            body = encode_protobuf(_spans(5, start))
            return asyncio.create_task(client.post("/v1/traces", content=body, headers=PB))

        writing = post(0)  # the writer takes it and blocks in the store, holding its turn
        await asyncio.to_thread(store.entered.wait, 10)
        waiting = [post(100), post(200)]  # read, then wait for their turn to decode
        while app.state.collector.unqueued < 2:
            await asyncio.sleep(0.01)
        refused = await post(300)
        assert refused.status_code == 503
        assert "Retry-After" in refused.headers
        store.gate.set()
        assert [(await t).status_code for t in [writing, *waiting]] == [200, 200, 200]
        assert store.span_count() == 15
    store.close()
