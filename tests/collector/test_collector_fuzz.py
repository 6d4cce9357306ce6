"""Fuzzing decode + validate + store, for OTLP protobuf and OTLP/JSON: no 500, no
exception, and exactly the valid spans stored (bounded: a few hundred requests).

Each request mixes spans at the edges of what OTLP carries (IDs of any length, times
at 0, 2^63-1, 2^63 and 2^64-1, events past 2^63, every attribute type, NaN and
infinities, nested values, text with lone surrogates in JSON). Which spans are valid
is decided here, independently of the collector, from the rules the store needs; the
collector must store those, refuse the others in ``partial_success``, and answer 400
only when none is valid.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tracebraid.collector import Limits, create_app
from tracebraid.model import TraceId
from tracebraid.store import SqliteStore

FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
INT64_MAX = 2**63 - 1
TIMES = st.one_of(
    st.sampled_from([0, 1, INT64_MAX, 2**63, 2**64 - 1]),
    st.integers(1, INT64_MAX),
)
_COUNTER = itertools.count(1)


class Driver:
    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.app = create_app(store, limits=Limits(max_body_bytes=4 << 20))
        self.loop = asyncio.new_event_loop()
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=True)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")

    def post(self, media: str, body: bytes) -> httpx.Response:
        request = self.client.post("/v1/traces", content=body, headers={"Content-Type": media})
        return self.loop.run_until_complete(request)

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.run_until_complete(self.app.state.collector.close())
        self.loop.close()


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Driver]:
    store = SqliteStore(tmp_path_factory.mktemp("fuzz") / "spans.db")
    d = Driver(store)
    yield d
    d.close()
    store.close()


def _trace() -> bytes:
    """A fresh trace ID per request, so what is stored can be counted per request."""
    return next(_COUNTER).to_bytes(16, "big")


def _id_ok(value: bytes, size: int) -> bool:
    return len(value) == size and any(value)


# -- protobuf ------------------------------------------------------------------------

ids8 = st.one_of(st.binary(min_size=8, max_size=8), st.binary(max_size=10))
scalars = st.one_of(
    st.text(max_size=8).map(lambda t: ("string_value", t)),
    st.booleans().map(lambda b: ("bool_value", b)),
    st.integers(-(2**63), INT64_MAX).map(lambda i: ("int_value", i)),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda f: ("double_value", f)),
    st.binary(max_size=8).map(lambda b: ("bytes_value", b)),
)


def _fill(value: AnyValue, tree: Any) -> None:
    if isinstance(tree, list):
        for item in tree:
            _fill(value.array_value.values.add(), item)
    elif isinstance(tree, dict):
        for key, item in tree.items():
            kv = value.kvlist_value.values.add()
            kv.key = key
            _fill(kv.value, item)
    else:
        setattr(value, tree[0], tree[1])


values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
pb_spans = st.fixed_dictionaries(
    {
        "span_id": ids8,
        "parent": st.one_of(st.just(b""), ids8),
        "start": TIMES,
        "end": TIMES,
        "name": st.text(max_size=10),
        "kind": st.integers(0, 6),
        "attributes": st.dictionaries(st.text(max_size=6), values, max_size=3),
        "events": st.lists(TIMES, max_size=2),
        "links": st.lists(st.tuples(st.binary(max_size=17), ids8), max_size=2),
    }
)


def _pb_valid(span: dict[str, Any]) -> bool:
    return (
        _id_ok(span["span_id"], 8)
        and (not span["parent"] or len(span["parent"]) == 8)
        and 0 < span["start"] <= span["end"] <= INT64_MAX
        and span["kind"] <= 5
        and all(t <= INT64_MAX for t in span["events"])
        and all(_id_ok(t, 16) and _id_ok(s, 8) for t, s in span["links"])
    )


@FUZZ
@given(spans=st.lists(pb_spans, min_size=1, max_size=8))
def test_fuzz_protobuf(driver: Driver, spans: list[dict[str, Any]]) -> None:
    trace = _trace()
    request = ExportTraceServiceRequest()
    scope_spans = request.resource_spans.add().scope_spans.add()
    for s in spans:
        pb = scope_spans.spans.add()
        pb.trace_id, pb.span_id, pb.parent_span_id = trace, s["span_id"], s["parent"]
        pb.start_time_unix_nano, pb.end_time_unix_nano = s["start"], s["end"]
        pb.name, pb.kind = s["name"], s["kind"]
        for key, tree in s["attributes"].items():
            kv = pb.attributes.add()
            kv.key = key
            _fill(kv.value, tree)
        for t in s["events"]:
            pb.events.add(name="e", time_unix_nano=t)
        for link_trace, link_span in s["links"]:
            pb.links.add(trace_id=link_trace, span_id=link_span)
    response = driver.post("application/x-protobuf", request.SerializeToString())
    # Two spans with one ID: the store keeps one (idempotent), as a replay.
    valid = {s["span_id"].hex() for s in spans if _pb_valid(s)}
    invalid = sum(1 for s in spans if not _pb_valid(s))
    _check(driver, response, trace, valid, invalid, protobuf=True)


# -- JSON ----------------------------------------------------------------------------

texts = st.one_of(
    st.text(max_size=8),
    st.text(st.characters(categories=["Cs"]), min_size=1, max_size=2),  # lone surrogates
    st.just("\ud83d\ude00"),  # a pair, escaped as two halves in JSON: one character
)
hex_ids = st.one_of(
    st.binary(min_size=8, max_size=8).map(bytes.hex),
    st.sampled_from(["", "0" * 16, "zz" * 8, "ab" * 9, "AB" * 8]),
)
json_times = st.one_of(TIMES, TIMES.map(str), st.sampled_from(["x", 1.5, -1, 10**30, None]))
json_values = st.one_of(
    texts.map(lambda t: {"stringValue": t}),
    st.integers(-(2**64), 2**64).map(lambda i: {"intValue": str(i)}),
    st.sampled_from([1e308, 10**400, "NaN", "Infinity", "x"]).map(lambda d: {"doubleValue": d}),
    st.booleans().map(lambda b: {"boolValue": b}),
)
json_spans = st.fixed_dictionaries(
    {
        "spanId": hex_ids,
        "name": texts,
        "start": json_times,
        "end": json_times,
        "attributes": st.dictionaries(texts, json_values, max_size=3),
        "status": texts,
    }
)


def _number(value: object) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and value.isascii() and value.lstrip("-").isdigit():
        return int(value)
    return None


def _text_ok(text: str) -> bool:
    """Whether ``text``, as it arrives through JSON, is storable: a surrogate pair in
    JSON (two escapes) is one character, a lone one is not text."""
    try:
        json.loads(json.dumps(text)).encode()
    except UnicodeEncodeError:
        return False
    return True


def _json_value_ok(value: dict[str, Any]) -> bool:
    if "stringValue" in value:
        return _text_ok(value["stringValue"])
    if "intValue" in value:
        return -(2**63) <= int(value["intValue"]) <= INT64_MAX
    if "doubleValue" in value:
        d = value["doubleValue"]
        if isinstance(d, str):
            return d in ("NaN", "Infinity")
        return isinstance(d, float) or abs(d) < 2**1023
    return True


def _json_valid(span: dict[str, Any]) -> bool:
    start, end = _number(span["start"]), _number(span["end"])
    span_id = span["spanId"]
    return (
        len(span_id) == 16
        and all(c in "0123456789abcdefABCDEF" for c in span_id)
        and span_id.strip("0") != ""
        and start is not None
        and end is not None
        and 0 < start <= end <= INT64_MAX
        and _text_ok(span["name"])
        and _text_ok(span["status"])
        and all(_text_ok(k) and _json_value_ok(v) for k, v in span["attributes"].items())
    )


@FUZZ
@given(spans=st.lists(json_spans, min_size=1, max_size=8))
def test_fuzz_json(driver: Driver, spans: list[dict[str, Any]]) -> None:
    trace = _trace()
    doc = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace.hex(),
                                "spanId": s["spanId"],
                                "name": s["name"],
                                "startTimeUnixNano": s["start"],
                                "endTimeUnixNano": s["end"],
                                "status": {"message": s["status"]},
                                "attributes": [
                                    {"key": k, "value": v} for k, v in s["attributes"].items()
                                ],
                            }
                            for s in spans
                        ]
                    }
                ]
            }
        ]
    }
    body = json.dumps(doc).encode()  # lone surrogates become \\udXXX escapes
    response = driver.post("application/json", body)
    valid = {s["spanId"].lower() for s in spans if _json_valid(s)}
    invalid = sum(1 for s in spans if not _json_valid(s))
    _check(driver, response, trace, valid, invalid, protobuf=False)


def _check(
    driver: Driver,
    response: httpx.Response,
    trace: bytes,
    valid: set[str],
    invalid: int,
    *,
    protobuf: bool,
) -> None:
    assert response.status_code in (200, 400), response.text[:300]
    stored = {s.span_id for s in driver.store.spans_of_trace(TraceId(trace.hex()))}
    assert stored == valid, (stored, valid)
    if not valid:
        assert response.status_code == 400
        return
    assert response.status_code == 200
    if protobuf:
        rejected = ExportTraceServiceResponse.FromString(response.content).partial_success
        assert rejected.rejected_spans == invalid
    else:
        partial = response.json().get("partialSuccess", {})
        assert int(partial.get("rejectedSpans", 0)) == invalid


def test_the_oracle_agrees_on_known_cases() -> None:
    """The fuzz oracle itself, on cases decided by hand (it could pass vacuously)."""
    base = {"span_id": b"\x01" * 8, "parent": b"", "start": 1, "end": 2, "kind": 1}
    base |= {"events": [], "links": []}
    assert _pb_valid(base)
    assert not _pb_valid({**base, "end": 2**63})
    assert not _pb_valid({**base, "events": [2**63]})
    assert not _pb_valid({**base, "span_id": b"\x00" * 8})
    js = {"spanId": "ab" * 8, "name": "n", "start": "1", "end": 2, "status": "", "attributes": {}}
    assert _json_valid(js)
    assert not _json_valid({**js, "name": "\ud800"})
    assert not _json_valid({**js, "attributes": {"k": {"intValue": str(2**63)}}})
