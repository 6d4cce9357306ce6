"""Decoder processes: the same answer as decoding in-process, and they never outlive the collector.

The pool is compared against the in-process path on the seed's order flow and on
hostile payloads (the hostile suite's own generators): same rows, same refusals,
same messages. A dead worker costs a 503 and a new pool, and workers exit once the
collector process is gone, even after a SIGKILL.
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
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
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
from tracebraid.collector.decoders import DecoderPool, PreparedRequest, prepare_request
from tracebraid.collector.otlp_http import content_coding, encoding_of
from tracebraid.model import SpanId
from tracebraid.store import SqliteStore
from tracebraid.store._rows import EncodedBatch, encode_rows
from tracebraid.testing.workflows import order_flow

LIMIT = 256 * 1024


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    running = asyncio.new_event_loop()
    yield running
    running.close()


@pytest.fixture(scope="module")
def pool(loop: asyncio.AbstractEventLoop) -> Iterator[DecoderPool]:
    decoders = DecoderPool(1, encode_rows, max_body_bytes=LIMIT)
    loop.run_until_complete(decoders.start())
    yield decoders
    decoders.close()


DEFAULT_RECURSION_LIMIT = sys.getrecursionlimit()


def _in_process(payload: Payload) -> PreparedRequest | OtlpRefusal:
    """What the collector decodes in-process: on a worker thread, at the usual limit.

    The standard library's JSON decoder recurses, so how deep a document it takes
    depends on the stack it starts from: a fresh thread starts where a decoder
    process (or the collector's thread pool) does.
    """
    media, headers, body = payload

    def decode() -> PreparedRequest | OtlpRefusal:
        try:
            coding = content_coding(headers.get("Content-Encoding"))
            return prepare_request(body, coding, encoding_of(media), LIMIT, encode_rows)
        except OtlpRefusal as refusal:
            return refusal

    raised = sys.getrecursionlimit()
    sys.setrecursionlimit(DEFAULT_RECURSION_LIMIT)
    try:
        with ThreadPoolExecutor(1) as thread:
            return thread.submit(decode).result()
    finally:
        sys.setrecursionlimit(raised)


def _in_pool(
    loop: asyncio.AbstractEventLoop, pool: DecoderPool, payload: Payload
) -> PreparedRequest | OtlpRefusal:
    media, headers, body = payload
    try:
        coding = content_coding(headers.get("Content-Encoding"))
        return loop.run_until_complete(pool.prepare(body, coding, encoding_of(media)))
    except OtlpRefusal as refusal:
        return refusal


def _same(pooled: PreparedRequest | OtlpRefusal, local: PreparedRequest | OtlpRefusal) -> None:
    if isinstance(local, OtlpRefusal):
        assert isinstance(pooled, OtlpRefusal), pooled
        assert (pooled.status, pooled.message, pooled.retry_after_s) == (
            local.status,
            local.message,
            local.retry_after_s,
        )
        return
    assert isinstance(pooled, PreparedRequest), pooled
    assert pooled.rejections == local.rejections
    assert pooled.span_count == local.span_count
    if local.batch is not None:
        assert isinstance(pooled.batch, EncodedBatch) and isinstance(local.batch, EncodedBatch)
        assert pooled.batch.spans == local.batch.spans
        assert pooled.batch.links == local.batch.links
        assert pooled.batch.resources == local.batch.resources


def test_the_order_flow_decodes_to_the_same_rows(
    loop: asyncio.AbstractEventLoop, pool: DecoderPool
) -> None:
    spans = order_flow().spans
    body = encode_protobuf(spans)
    for coding, sent in (("identity", body), ("gzip", gzip.compress(body))):
        pooled = loop.run_until_complete(pool.prepare(sent, coding, "protobuf"))
        assert pooled.span_count == len(spans) and not pooled.rejections
        _same(pooled, _in_process(("application/x-protobuf", {"Content-Encoding": coding}, sent)))


def test_a_mixed_batch_keeps_its_valid_spans_and_names_the_bad_one(
    loop: asyncio.AbstractEventLoop, pool: DecoderPool
) -> None:
    bad = dataclasses.replace(VALID_SPANS[1], span_id=SpanId("0" * 16))
    body = encode_protobuf([VALID_SPANS[0], bad, VALID_SPANS[2]])
    pooled = loop.run_until_complete(pool.prepare(body, "identity", "protobuf"))
    assert pooled.span_count == 2
    assert pooled.rejected_count == 1
    assert "span_id is all zeros" in str(pooled.rejections[0])


def test_refusals_cross_back_with_their_status(
    loop: asyncio.AbstractEventLoop, pool: DecoderPool
) -> None:
    bomb = gzip.compress(b"\0" * (LIMIT * 4))
    with pytest.raises(OtlpRefusal) as refused:
        loop.run_until_complete(pool.prepare(bomb, "gzip", "protobuf"))
    assert refused.value.status == 413
    assert "inflates past the limit" in refused.value.message
    with pytest.raises(OtlpRefusal) as refused:
        loop.run_until_complete(pool.prepare(b"\xff" * 40, "identity", "protobuf"))
    assert refused.value.status == 400
    assert "not an OTLP protobuf" in refused.value.message


SAME_ANSWER = settings(
    deadline=None,
    database=None,
    max_examples=100,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module", autouse=True)
def _deep_stack() -> Iterator[None]:
    # extreme_values builds 400-deep attribute values with json.dumps, which recurses
    # about three frames a level: near the default limit once pytest's frames are added.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 5000))
    yield
    sys.setrecursionlimit(limit)


# One test per generator, as in the hostile suite.
@SAME_ANSWER
@given(payload=wrong_json_types())
def test_wrong_json_types_get_the_same_answer_as_in_process(
    loop: asyncio.AbstractEventLoop, pool: DecoderPool, payload: Payload
) -> None:
    _same(_in_pool(loop, pool, payload), _in_process(payload))


@SAME_ANSWER
@given(payload=broken_protobuf())
def test_broken_protobuf_gets_the_same_answer_as_in_process(
    loop: asyncio.AbstractEventLoop, pool: DecoderPool, payload: Payload
) -> None:
    _same(_in_pool(loop, pool, payload), _in_process(payload))


@SAME_ANSWER
@given(payload=extreme_values())
def test_extreme_values_get_the_same_answer_as_in_process(
    loop: asyncio.AbstractEventLoop, pool: DecoderPool, payload: Payload
) -> None:
    _same(_in_pool(loop, pool, payload), _in_process(payload))


@SAME_ANSWER
@given(payload=bad_compression())
def test_bad_compression_gets_the_same_answer_as_in_process(
    loop: asyncio.AbstractEventLoop, pool: DecoderPool, payload: Payload
) -> None:
    _same(_in_pool(loop, pool, payload), _in_process(payload))


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_dead_worker_costs_a_retryable_503_and_the_pool_comes_back(
    loop: asyncio.AbstractEventLoop,
) -> None:
    decoders = DecoderPool(1, encode_rows, max_body_bytes=LIMIT)
    try:
        loop.run_until_complete(decoders.start())
        assert len(decoders.pids) == 1
        for pid in decoders.pids:
            os.kill(pid, signal.SIGKILL)
        body = encode_protobuf(VALID_SPANS)
        answers: list[int] = []
        for _ in range(2):
            try:
                loop.run_until_complete(decoders.prepare(body, "identity", "protobuf"))
                answers.append(200)
            except OtlpRefusal as refusal:
                assert refusal.retry_after_s == 1
                answers.append(refusal.status)
        # The death is noticed on the next request (503) or before it (the pool's own
        # watcher); either way the request after that is decoded by a new pool.
        assert answers in ([503, 200], [200, 200])
        prepared = loop.run_until_complete(decoders.prepare(body, "identity", "protobuf"))
        assert prepared.span_count == len(VALID_SPANS)
        assert decoders.restarts == 1
    finally:
        decoders.close()


ORPHANING = """
import asyncio, sys
from tracebraid.collector.decoders import DecoderPool
from tracebraid.store._rows import encode_rows
pool = DecoderPool(2, encode_rows, max_body_bytes=1024)
asyncio.run(pool.start())
print("started", flush=True)
sys.stdin.readline()
"""


def test_workers_exit_when_the_collector_is_killed() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", ORPHANING], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    assert parent.stdout.readline().strip() == "started"
    workers = [pid for pid in _children(parent.pid) if _alive(pid)]
    # The spawn start method adds a resource tracker beside the two workers.
    assert len(workers) >= 2
    parent.kill()
    parent.wait(10)
    parent.stdout.close()
    assert parent.stdin is not None
    parent.stdin.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)], "orphaned decoder processes"


def test_a_collector_with_decoders_stores_what_it_acknowledges(
    loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    store = SqliteStore(tmp_path / "spans.db")
    app = create_app(store, limits=Limits(max_body_bytes=LIMIT, decoders=1))
    collector = app.state.collector
    assert collector.decoders is not None
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
    assert stats.json()["decoder_processes"] == 1
    assert stats.json()["spans_duplicate"] == len(spans)
    # Exactly what the in-process decoder makes of the body (encoding adds service.name
    # to each resource, as every SDK sends it).
    expected = decode_protobuf(encode_protobuf(spans)).spans
    stored = store.spans_of_traces({s.trace_id for s in spans})
    assert {(s.trace_id, s.span_id): s for s in stored} == {
        (s.trace_id, s.span_id): s for s in expected
    }
    store.close()
