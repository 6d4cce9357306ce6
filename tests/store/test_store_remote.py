"""RemoteStore: a collector's store over HTTP; writes through OTLP, errors that say what to do.

The read contract runs in test_contract (``remote``); here: writing through
``POST /v1/traces``, the bearer token, a server that is not a tracebraid collector,
an unreachable one, and a trace-ID stream cut short.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tracebraid.collector.otlp import decode_protobuf, encode_protobuf
from tracebraid.errors import ConfigurationError, StoreError
from tracebraid.store import SqliteStore, open_store
from tracebraid.store.remote import RemoteStore
from tracebraid.testing import running_collector
from tracebraid.testing.workflows import order_flow


@pytest.fixture
def backing(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "spans.db")
    yield store
    store.close()


def test_writes_go_through_otlp_and_read_back_as_stored(backing: SqliteStore) -> None:
    flow = order_flow()
    with running_collector(backing) as url, RemoteStore(url) as remote:
        assert remote.write(flow.spans).inserted == len(flow.spans)
        assert backing.span_count() == remote.span_count() == len(flow.spans)
        traces = {s.trace_id for s in flow.spans}
        # What OTLP made of them (a resource gains service.name), exactly as stored.
        assert remote.spans_of_traces(traces) == backing.spans_of_traces(traces)
        expected = decode_protobuf(encode_protobuf(flow.spans)).spans
        assert {s.key: s for s in remote.spans_of_traces(traces)} == {s.key: s for s in expected}


def test_open_store_takes_http_urls(backing: SqliteStore) -> None:
    with running_collector(backing) as url:
        store = open_store(url)
        assert isinstance(store, RemoteStore) and store.span_count() == 0
        store.close()


def test_the_token_is_sent_and_a_missing_one_is_named(
    backing: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRACEBRAID_TOKEN", raising=False)
    with running_collector(backing, token="s3cret") as url:
        with RemoteStore(url) as anonymous, pytest.raises(ConfigurationError) as refused:
            anonymous.span_count()
        assert "set TRACEBRAID_TOKEN to the token its serve was given" in str(refused.value)
        with RemoteStore(url, token="s3cret") as remote:
            assert remote.span_count() == 0
        monkeypatch.setenv("TRACEBRAID_TOKEN", "s3cret")
        with RemoteStore(url) as from_env:
            assert list(from_env.iter_trace_ids()) == []


def test_a_collector_without_the_api_says_so(backing: SqliteStore) -> None:
    with (
        running_collector(backing, api=False) as url,
        RemoteStore(url) as remote,
        pytest.raises(ConfigurationError, match="serves no tracebraid store API"),
    ):
        remote.recent_traces()


def test_nothing_listening_is_a_store_error_naming_the_address() -> None:
    unreachable = "cannot reach the collector at http://127.0.0.1:9"
    with RemoteStore("http://127.0.0.1:9") as remote, pytest.raises(StoreError) as failed:
        remote.spans_of_trace(order_flow().spans[0].trace_id)
    assert unreachable in str(failed.value)


def test_a_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="starts with http:// or https://"):
        RemoteStore("ftp://collector")


def test_every_trace_id_streams_back(backing: SqliteStore) -> None:
    flows = [order_flow(seed=n) for n in range(120)]
    for flow in flows:
        backing.write(flow.spans)
    with running_collector(backing) as url, RemoteStore(url) as remote:
        assert sorted(remote.iter_trace_ids()) == sorted(backing.iter_trace_ids())
        assert len(set(remote.iter_trace_ids())) >= 120


def test_the_wire_refuses_what_it_did_not_write() -> None:
    from tracebraid.errors import InputError
    from tracebraid.store.wire import decode_spans, decode_summaries

    for garbage in (b"", b"\xc1", b'{"spans": []}', b"\x92\x90\x91\x93\x01\x02\x03"):
        with pytest.raises(InputError, match="not a tracebraid spans document"):
            decode_spans(garbage)
    with pytest.raises(InputError, match="not a list of trace summaries"):
        decode_summaries(b'[{"trace_id": 1}]')


def test_the_store_api_says_what_a_bad_request_lacks(backing: SqliteStore) -> None:
    import httpx

    with running_collector(backing) as url:
        for query, said in (
            ("", "give trace_id (repeatable), one correlation_id"),
            ("?trace_id=a&correlation_id=b", "give trace_id (repeatable), one correlation_id"),
            ("?linked=abc", "linked must be TRACE_ID:SPAN_ID"),
        ):
            answer = httpx.get(f"{url}/api/store/spans{query}")
            assert answer.status_code == 400 and said in answer.json()["error"], query
        answer = httpx.get(f"{url}/api/store/recent?limit=-1")
        assert answer.status_code == 400 and "limit must be between 0" in answer.json()["error"]
        spec = httpx.get(f"{url}/api/openapi.json").json()
        spans = spec["paths"]["/api/store/spans"]["get"]["responses"]["200"]["content"]
        assert list(spans) == ["application/vnd.tracebraid.spans+msgpack"]
        assert "/api/store/trace-ids/all" in spec["paths"]
