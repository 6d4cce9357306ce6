"""Ingest processes: the same answers as ingesting in-process, and they never outlive the collector.

The worker processes are compared with the in-process path on the seed's order flow
and on hostile payloads (the hostile suite's own generators): the same spans stored,
the same refusals with the same messages. A dead worker costs a 503 and a new pool;
workers exit once the collector process is gone, even after a SIGKILL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from collector_serve import ServeProcess
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc.status_pb2 import Status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from starlette.applications import Starlette
from test_collector_hostile import (
    VALID_SPANS,
    Payload,
    bad_compression,
    broken_protobuf,
    extreme_values,
    wrong_json_types,
)

from tracebraid.collector import (
    Limits,
    OtlpRefusal,
    create_app,
    decode_protobuf,
    encode_protobuf,
)
from tracebraid.collector.ingest_processes import Ingested, IngestProcesses
from tracebraid.model import SpanId
from tracebraid.store import SqliteStore
from tracebraid.testing.workflows import order_flow

LIMIT = 256 * 1024


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    running = asyncio.new_event_loop()
    yield running
    running.close()


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SqliteStore, SqliteStore]]:
    """Two stores: one the ingest processes write, one the in-process path writes."""
    directory = tmp_path_factory.mktemp("ingest")
    pooled, local = SqliteStore(directory / "pooled.db"), SqliteStore(directory / "local.db")
    yield pooled, local
    pooled.close()
    local.close()


@pytest.fixture(scope="module")
def collectors(
    loop: asyncio.AbstractEventLoop, stores: tuple[SqliteStore, SqliteStore]
) -> Iterator[tuple[Starlette, Starlette]]:
    """Two collector apps: one with two ingest processes, one ingesting in-process."""
    pooled = create_app(stores[0], limits=Limits(max_body_bytes=LIMIT, ingest_processes=2))
    local = create_app(stores[1], limits=Limits(max_body_bytes=LIMIT))
    assert local.state.collector.processes is None
    for app in (pooled, local):
        loop.run_until_complete(app.state.collector.start())
    yield pooled, local
    for app in (pooled, local):
        loop.run_until_complete(app.state.collector.close())


@pytest.fixture(scope="module")
def processes(collectors: tuple[Starlette, Starlette]) -> IngestProcesses:
    """The pooled collector's ingest processes."""
    pool: IngestProcesses | None = collectors[0].state.collector.processes
    assert pool is not None and pool.processes == 2
    return pool


DEFAULT_RECURSION_LIMIT = sys.getrecursionlimit()


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    """What a client heard for one request, and what the collector counted for it."""

    status: int
    message: str
    retry_after: str | None
    accepted: int
    rejected: int
    inserted: int
    duplicates: int


async def _exchange(app: Starlette, payload: Payload) -> Answer:
    media, headers, body = payload
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://collector") as client:
        before = (await client.get("/stats")).json()
        headers = {"Content-Type": media, **headers}
        response = await client.post("/v1/traces", content=body, headers=headers)
        after = (await client.get("/stats")).json()
    protobuf = response.headers["content-type"].startswith("application/x-protobuf")
    reply: Message = ExportTraceServiceResponse() if response.status_code == 200 else Status()
    if protobuf:
        reply.ParseFromString(response.content)
    else:
        json_format.Parse(response.content, reply)
    message = reply.partial_success.error_message if response.status_code == 200 else reply.message

    def grew(name: str) -> int:
        return int(after[name] - before[name])

    return Answer(
        response.status_code,
        message,
        response.headers.get("retry-after"),
        grew("spans_accepted"),
        grew("spans_rejected"),
        grew("spans_inserted"),
        grew("spans_duplicate"),
    )


def _in_process(loop: asyncio.AbstractEventLoop, app: Starlette, payload: Payload) -> Answer:
    """The collector ingesting in its own process, at the usual recursion limit.

    The standard library's JSON decoder recurses, so how deep a document it takes
    depends on the limit and on the stack it starts from: the collector decodes on a
    thread of its pool, whose stack starts about where an ingest process's does.
    """
    raised = sys.getrecursionlimit()
    sys.setrecursionlimit(DEFAULT_RECURSION_LIMIT)
    try:
        return loop.run_until_complete(_exchange(app, payload))
    finally:
        sys.setrecursionlimit(raised)


def _in_processes(loop: asyncio.AbstractEventLoop, app: Starlette, payload: Payload) -> Answer:
    return loop.run_until_complete(_exchange(app, payload))


def _too_deep(answer: Answer) -> bool:
    return answer.status == 400 and "maximum recursion depth" in answer.message


def _same(pooled: Answer, local: Answer) -> None:
    if _too_deep(pooled) or _too_deep(local):
        # The standard library's JSON parser recurses: a document nesting within a few
        # levels of the interpreter's limit parses or not depending on how deep the
        # stack already is, which differs by a few frames between a thread and a
        # process. Either way the answer is a 400, or a stored span with the deep
        # attribute refused; past that band both sides refuse alike.
        other = local if _too_deep(pooled) else pooled
        assert _too_deep(other) or "nests deeper" in other.message, other
        return
    assert (pooled.status, pooled.message, pooled.retry_after) == (
        local.status,
        local.message,
        local.retry_after,
    )
    # Spans new to one store may be replays to the other (other tests write only
    # one of them): what was committed must agree, not how much of it was new.
    assert (pooled.accepted, pooled.rejected) == (local.accepted, local.rejected)
    stored = pooled.inserted + pooled.duplicates
    assert stored == local.inserted + local.duplicates == pooled.accepted
    if pooled.status != 200:
        assert pooled.accepted == 0, pooled


def test_the_order_flow_is_stored_as_in_process(
    loop: asyncio.AbstractEventLoop,
    collectors: tuple[Starlette, Starlette],
    stores: tuple[SqliteStore, SqliteStore],
) -> None:
    spans = order_flow(seed=7).spans
    body = encode_protobuf(spans)
    for coding, sent in (("identity", body), ("gzip", gzip.compress(body))):
        payload = ("application/x-protobuf", {"Content-Encoding": coding}, sent)
        pooled = _in_processes(loop, collectors[0], payload)
        _same(pooled, _in_process(loop, collectors[1], payload))
        assert pooled.status == 200 and pooled.accepted == len(spans)
    # The second time round, gzipped, was an exporter's retry: nothing stored twice.
    assert pooled.duplicates == len(spans)
    traces = {s.trace_id for s in spans}
    assert stores[0].spans_of_traces(traces) == stores[1].spans_of_traces(traces)
    assert stores[0].spans_of_traces(traces) == sorted(
        decode_protobuf(body).spans, key=lambda s: (s.start_ns, s.trace_id, s.span_id)
    )


def test_a_mixed_batch_keeps_its_valid_spans_and_names_the_bad_one(
    loop: asyncio.AbstractEventLoop, processes: IngestProcesses
) -> None:
    bad = dataclasses.replace(VALID_SPANS[1], span_id=SpanId("0" * 16))
    body = encode_protobuf([VALID_SPANS[0], bad, VALID_SPANS[2]])
    ingested = loop.run_until_complete(processes.ingest(body, "identity", "protobuf"))
    assert ingested.accepted == 2
    assert ingested.rejected_count == 1
    assert "span_id is all zeros" in str(ingested.rejections[0])


def test_refusals_cross_back_with_their_status(
    loop: asyncio.AbstractEventLoop, processes: IngestProcesses
) -> None:
    bomb = gzip.compress(b"\0" * (LIMIT * 4))
    with pytest.raises(OtlpRefusal) as refused:
        loop.run_until_complete(processes.ingest(bomb, "gzip", "protobuf"))
    assert refused.value.status == 413
    assert "inflates past the limit" in refused.value.message
    with pytest.raises(OtlpRefusal) as refused:
        loop.run_until_complete(processes.ingest(b"\xff" * 40, "identity", "protobuf"))
    assert refused.value.status == 400
    assert "not an OTLP protobuf" in refused.value.message


@pytest.fixture(scope="module", autouse=True)
def _deep_stack() -> Iterator[None]:
    # extreme_values builds 400-deep attribute values with json.dumps, which recurses
    # about three frames a level: near the default limit once pytest's frames are added.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 5000))
    yield
    sys.setrecursionlimit(limit)


SAME_ANSWER = settings(
    deadline=None,
    database=None,
    max_examples=100,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@SAME_ANSWER
@given(data=st.data())
@pytest.mark.parametrize(
    "generator", [wrong_json_types, broken_protobuf, extreme_values, bad_compression]
)
def test_hostile_payloads_get_the_same_answer_as_in_process(
    loop: asyncio.AbstractEventLoop,
    collectors: tuple[Starlette, Starlette],
    generator: Callable[[], st.SearchStrategy[Payload]],
    data: st.DataObject,
) -> None:
    payload = data.draw(generator())
    pooled, local = collectors
    _same(_in_processes(loop, pooled, payload), _in_process(loop, local, payload))


def test_two_processes_writing_at_once_lose_and_double_nothing(
    loop: asyncio.AbstractEventLoop,
    processes: IngestProcesses,
    stores: tuple[SqliteStore, SqliteStore],
) -> None:
    flows = [order_flow(seed=1000 + n).spans for n in range(40)]
    before = stores[0].span_count()

    async def send_all() -> list[Ingested]:
        bodies = [encode_protobuf(spans) for spans in flows]
        # Every flow twice, all at once: retries race their originals.
        sent = [processes.ingest(body, "identity", "protobuf") for body in bodies * 2]
        return list(await asyncio.gather(*sent))

    answers = loop.run_until_complete(send_all())
    total = sum(len(spans) for spans in flows)
    assert sum(a.result.inserted for a in answers) == total
    assert sum(a.result.duplicates for a in answers) == total
    assert stores[0].span_count() == before + total
    for spans in flows:
        traces = {s.trace_id for s in spans}
        assert len(stores[0].spans_of_traces(traces)) == len(spans)


def test_a_dead_worker_costs_a_retryable_503_and_the_pool_comes_back(
    loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    store = SqliteStore(tmp_path / "spans.db")
    reopen = store.reopener()
    assert reopen is not None
    pool = IngestProcesses(1, reopen, max_body_bytes=LIMIT)
    try:
        loop.run_until_complete(pool.start())
        assert len(pool.pids) == 1
        for pid in pool.pids:
            os.kill(pid, signal.SIGKILL)
        body = encode_protobuf(VALID_SPANS)
        answers: list[int] = []
        for _ in range(2):
            try:
                loop.run_until_complete(pool.ingest(body, "identity", "protobuf"))
                answers.append(200)
            except OtlpRefusal as refusal:
                assert refusal.retry_after_s == 1
                answers.append(refusal.status)
        # The death is noticed on the next request (503) or before it (the pool's own
        # watcher); either way the request after that is stored by a new pool.
        assert answers in ([503, 200], [200, 200])
        assert pool.stats().restarts == 1
        assert store.span_count() == len(VALID_SPANS)
    finally:
        pool.close()
        store.close()


ORPHANING = """
import asyncio, sys
from tracebraid.collector.ingest_processes import IngestProcesses
from tracebraid.store import SqliteStore
store = SqliteStore(sys.argv[1])
pool = IngestProcesses(2, store.reopener(), max_body_bytes=1024)
asyncio.run(pool.start())
print(*pool.pids, flush=True)
sys.stdin.readline()
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_workers_exit_when_the_collector_is_killed(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", ORPHANING, str(tmp_path / "spans.db")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None and parent.stdin is not None
    workers = [int(pid) for pid in parent.stdout.readline().split()]
    assert len(workers) == 2 and all(_alive(pid) for pid in workers)
    parent.kill()
    parent.wait(10)
    parent.stdout.close()
    parent.stdin.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)], "orphaned ingest processes"


def test_a_collector_with_ingest_processes_stores_what_it_acknowledges(
    loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    store = SqliteStore(tmp_path / "spans.db")
    app = create_app(store, limits=Limits(max_body_bytes=LIMIT, ingest_processes=1))
    collector = app.state.collector
    assert collector.processes is not None
    spans = order_flow().spans

    async def exchange() -> list[httpx.Response]:
        await collector.start()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://c") as client:
            headers = {"Content-Type": "application/x-protobuf"}
            body = encode_protobuf(spans)
            # Twice: an exporter's retry stores nothing twice.
            answers = [await client.post("/v1/traces", content=body, headers=headers)]
            answers.append(await client.post("/v1/traces", content=body, headers=headers))
            answers.append(await client.get("/stats"))
        await collector.close()
        return answers

    first, retry, stats = loop.run_until_complete(exchange())
    assert first.status_code == retry.status_code == 200
    figures = stats.json()
    assert figures["ingest_processes"] == 1
    assert figures["spans_accepted"] == 2 * len(spans)
    assert figures["spans_inserted"] == figures["spans_duplicate"] == len(spans)
    assert figures["store_spans"] == len(spans)
    # Exactly what the in-process decoder makes of the body (encoding adds service.name
    # to each resource, as every SDK sends it).
    expected = decode_protobuf(encode_protobuf(spans)).spans
    stored = store.spans_of_traces({s.trace_id for s in spans})
    assert {(s.trace_id, s.span_id): s for s in stored} == {
        (s.trace_id, s.span_id): s for s in expected
    }
    store.close()


def test_a_store_in_memory_is_ingested_in_process() -> None:
    store = SqliteStore(":memory:")
    app = create_app(store, limits=Limits(ingest_processes=2))
    assert app.state.collector.processes is None
    store.close()


def test_past_the_requests_in_progress_a_real_collector_answers_503_and_loses_nothing(
    serve: Callable[..., ServeProcess],
) -> None:
    process = serve("--ingest-processes", "1", "--requests-in-progress", "1")
    # 25 order flows a request (500 spans): each takes a worker several milliseconds.
    flows = [order_flow(seed=2000 + n).spans for n in range(24 * 25)]
    bodies = [encode_protobuf([s for f in flows[n : n + 25] for s in f]) for n in range(0, 600, 25)]
    headers = {"Content-Type": "application/x-protobuf"}

    def send(body: bytes) -> httpx.Response:
        return httpx.post(f"{process.url}/v1/traces", content=body, headers=headers, timeout=60)

    with ThreadPoolExecutor(8) as senders:
        answers = list(senders.map(send, bodies))
    statuses = {answer.status_code for answer in answers}
    assert statuses <= {200, 503} and 503 in statuses, statuses
    refused = [a for a in answers if a.status_code == 503]
    assert all(int(a.headers["Retry-After"]) >= 1 for a in refused)
    messages = {Status.FromString(a.content).message for a in refused}
    assert all("retry after the Retry-After delay" in m for m in messages), messages
    # Every acknowledged request is stored; none of the refused ones is.
    acknowledged = [b for b, a in zip(bodies, answers, strict=True) if a.status_code == 200]
    stats = httpx.get(f"{process.url}/stats").json()
    expected = sum(len(decode_protobuf(b).spans) for b in acknowledged)
    assert stats["spans_accepted"] == stats["store_spans"] == expected


def test_requests_in_progress_must_be_positive(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tracebraid", "serve", "--port", "0", "--requests-in-progress", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "--requests-in-progress must be at least 1, not 0" in result.stderr
