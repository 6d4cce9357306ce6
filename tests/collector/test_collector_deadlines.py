"""No client can starve the collector by holding connections: deadlines on the request
head and body, idle sockets not counted as requests, ``/healthz`` truthful, every 503
with ``Retry-After``, and ``Host`` checked on a loopback bind (DNS rebinding).

Raw sockets against a real ``tracebraid serve``: 64 bodies that stall after their
headers and 515 sockets that send nothing, while a well-behaved exporter posts on a
connection of its own and must get 200 every time.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
from collector_serve import ServeProcess
from collector_spans import make_span

from tracebraid.collector import encode_protobuf
from tracebraid.collector.connections import RequestAdmission
from tracebraid.model import TraceId

PB = {"Content-Type": "application/x-protobuf"}
FAST = ("--header-timeout", "2", "--body-timeout", "2", "--keep-alive-timeout", "2")


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


@contextmanager
def _sockets(count: int, port: int, first_bytes: bytes = b"") -> Iterator[list[socket.socket]]:
    opened = []
    try:
        for _ in range(count):
            sock = _connect(port)
            if first_bytes:
                sock.sendall(first_bytes)
            opened.append(sock)
        yield opened
    finally:
        for sock in opened:
            sock.close()


def _stalled_head(port: int) -> bytes:
    return (
        f"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/x-protobuf\r\nContent-Length: 100000\r\n\r\n"
    ).encode() + b"\x0a\x05"


def _answer(sock: socket.socket, timeout_s: float) -> bytes:
    """What the server sent before closing (b"" when it closed without a word)."""
    sock.settimeout(timeout_s)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except TimeoutError:
        raise AssertionError("the server never closed the connection") from None
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def test_stalled_bodies_and_idle_sockets_do_not_block_a_good_exporter(
    serve: Callable[..., ServeProcess],
) -> None:
    process = serve(*FAST, "--requests-in-progress", "64", "--max-requests", "64")
    trace = TraceId("d" * 32)
    with (
        _sockets(64, process.port, _stalled_head(process.port)) as stalled,
        _sockets(515, process.port) as idle,
        httpx.Client(base_url=process.url, timeout=10) as client,
    ):
        statuses = []
        healthz = []
        started = time.monotonic()
        n = 0
        # Across the deadlines: before they cut the stalled clients, and after.
        while time.monotonic() - started < 4.0:
            body = encode_protobuf([make_span(n, trace_id=trace)])
            statuses.append(client.post("/v1/traces", content=body, headers=PB).status_code)
            healthz.append(client.get("/healthz").status_code)
            n += 1
        assert set(statuses) == {200}, statuses
        assert set(healthz) == {200}
        answers = [_answer(s, 5) for s in stalled[:8]]
        assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers[0][:200]
        assert b"too slowly" in answers[0]
        assert all(_answer(s, 5) == b"" for s in idle[:8])
    stats = httpx.get(f"{process.url}/stats").json()
    assert stats["spans_accepted"] == n
    assert stats["buffered_bytes"] == 0


def test_a_slowloris_head_is_cut_at_the_deadline(serve: Callable[..., ServeProcess]) -> None:
    process = serve(*FAST)
    sock = _connect(process.port)
    started = time.monotonic()
    head = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{process.port}\r\nX-Slow: ".encode()
    try:
        for byte in head:
            sock.sendall(bytes([byte]))
            time.sleep(0.02)
        while time.monotonic() - started < 10:
            sock.sendall(b"a")  # a byte now and then does not reset the deadline
            time.sleep(0.3)
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer = _answer(sock, 5)
    sock.close()
    assert time.monotonic() - started < 6
    assert answer.startswith(b"HTTP/1.1 408") or answer == b""


def test_a_slow_but_steady_body_is_taken(serve: Callable[..., ServeProcess]) -> None:
    """Over the grace, a body sent at more than the minimum rate is still received."""
    process = serve(*FAST, "--body-min-rate", "2000")
    body = encode_protobuf([make_span(n, trace_id=TraceId("e" * 32)) for n in range(40)])
    sock = _connect(process.port)
    head = (
        f"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1:{process.port}\r\n"
        f"Content-Type: application/x-protobuf\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    sock.sendall(head)
    started = time.monotonic()
    for i in range(0, len(body), 1000):  # ~4,000 bytes/s: twice the minimum rate
        sock.sendall(body[i : i + 1000])
        time.sleep(0.25)
    answer = _answer(sock, 10)
    sock.close()
    assert time.monotonic() - started > 2.0  # longer than the grace alone
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:4318", "127.0.0.1.evil.example", "[::2]"]
)
def test_dns_rebinding_is_refused_on_loopback(
    serve: Callable[..., ServeProcess], host: str
) -> None:
    process = serve()
    body = encode_protobuf([make_span(1)])
    for method, path in (("GET", "/api/search"), ("POST", "/v1/traces"), ("GET", "/")):
        response = httpx.request(
            method, f"{process.url}{path}", content=body, headers={**PB, "Host": host}
        )
        assert response.status_code == 421, (path, response.text)
        assert "--allowed-host" in response.json()["error"]
    assert httpx.get(f"{process.url}/stats").json()["spans_accepted"] == 0


def test_the_bound_names_and_allowed_hosts_are_answered(
    serve: Callable[..., ServeProcess],
) -> None:
    process = serve("--allowed-host", "traces.internal")
    for host in ("127.0.0.1", f"127.0.0.1:{process.port}", "localhost", "traces.internal:443"):
        response = httpx.get(f"{process.url}/healthz", headers={"Host": host})
        assert response.status_code == 200, host


def test_requests_past_the_admission_limit_get_503_with_retry_after() -> None:
    """``RequestAdmission`` counts requests in progress, and says when to come back."""
    release = asyncio.Event()

    async def slow(scope: object, receive: object, send: Callable[..., object]) -> None:
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]

    admission = RequestAdmission(slow, 2)  # type: ignore[arg-type]

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=admission)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            held = [asyncio.create_task(client.get("/api/search")) for _ in range(2)]
            while admission.in_progress < 2:
                await asyncio.sleep(0.01)
            refused = await client.get("/api/search")
            release.set()
            return [refused, *await asyncio.gather(*held)]

    refused, *served = asyncio.run(run())
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert [r.status_code for r in served] == [200, 200]
    assert admission.in_progress == 0


def test_past_max_connections_idle_sockets_make_room(
    serve: Callable[..., ServeProcess],
) -> None:
    process = serve("--max-connections", "40")
    with _sockets(60, process.port) as idle:
        time.sleep(0.5)
        response = httpx.get(f"{process.url}/healthz")
        assert response.status_code == 200
        # 61 connections for 40 places: the 20-odd oldest idle ones were closed.
        assert all(_answer(s, 5) == b"" for s in idle[:15])


def test_healthz_says_when_exports_would_be_refused() -> None:
    from tracebraid.collector import Limits, create_app
    from tracebraid.store import SqliteStore

    async def run() -> list[httpx.Response]:
        store = SqliteStore(":memory:")
        app = create_app(store, limits=Limits(max_unqueued_requests=1))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            ok = await client.get("/healthz")
            app.state.collector.unqueued = 1  # one request being decoded: the limit
            saturated = await client.get("/healthz")
            export = await client.post(
                "/v1/traces", content=encode_protobuf([make_span(1)]), headers=PB
            )
            app.state.collector.unqueued = 0
        await app.state.collector.close()
        store.close()
        return [ok, saturated, export]

    ok, saturated, export = asyncio.run(run())
    assert ok.status_code == 200
    assert saturated.status_code == 503
    assert saturated.json()["status"] == "saturated"
    assert "requests are being decoded" in saturated.json()["reason"]
    assert int(saturated.headers["retry-after"]) >= 1
    assert export.status_code == 503 and int(export.headers["retry-after"]) >= 1
