"""The API's I/O edge: learned consumers off the request path, views kept while nothing
new arrives."""

from __future__ import annotations

import json
import time

import pytest

from tracebraid.analysis import analyze, parse_topology
from tracebraid.store import SqliteStore
from tracebraid.testing.workflows import WorkflowBuilder, order_flow
from tracebraid.views.web import reader as reader_module
from tracebraid.views.web.reader import WorkflowReader


def test_a_view_is_answered_again_until_a_span_arrives() -> None:
    with SqliteStore(":memory:") as store:
        flow = order_flow()
        store.write(list(flow.spans[:-1]))
        reader = WorkflowReader(store, clock=lambda: flow.end_ns)
        first = reader.view_json("order_441")
        assert reader.view_json("order_441") is first
        store.write(list(flow.spans[-1:]))
        fresh = reader.view_json("order_441")
        assert fresh is not first
        # The span that arrived is in the fresh view (a copy of the old one would pass `is not`).
        spans = json.loads(first)["workflow"]["summary"]["span_count"]
        assert json.loads(fresh)["workflow"]["summary"]["span_count"] == spans + 1


def test_consumers_are_learned_in_the_background() -> None:
    with SqliteStore(":memory:") as store:
        flow = order_flow()
        store.write(list(flow.spans))
        reader = WorkflowReader(store, history_ttl_s=0.0)
        reader.warm_up()
        deadline = time.monotonic() + 5
        while reader._learned is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert reader._learned is not None, "learned before any request asked"
        learned = reader.topology()
        expected = learned.expectation("order.placed")
        assert expected is not None
        took = {b.consumer for b in analyze(flow.spans).branches if b.event_name == "order.placed"}
        assert set(expected.consumers) == took
        # Stale at once (ttl 0): answered from what was learned, relearned behind.
        learned_at = reader._learned[0]
        assert reader.topology() == learned
        while reader._learned[0] == learned_at and time.monotonic() < deadline:
            time.sleep(0.01)
        assert reader._learned[0] > learned_at, "relearned in the background"


def test_a_topology_file_is_used_as_given() -> None:
    topology = parse_topology("events:\n  order.placed:\n    consumers: [reserve-inventory]\n")
    with SqliteStore(":memory:") as store:
        reader = WorkflowReader(store, topology=topology)
        reader.warm_up()
        assert reader.topology() is topology


def _fleet(store: SqliteStore, workflows: int) -> list[str]:
    """``workflows`` workflows of the same shape, keyed order_0, order_1..."""
    keys = []
    for n in range(workflows):
        b = WorkflowBuilder(correlation_id=f"order_{n}", start_ns=10**18 + n * 10**10, seed=n)
        post = b.action("POST /orders", service="api", duration_ms=5)
        placed = b.publish(post, "order.placed", destination="orders")
        b.consume(placed, "reserve", service="inventory")
        b.consume(placed, "charge", service="payment")
        store.write(list(b.build().spans))
        keys.append(f"order_{n}")
    return keys


def test_a_view_past_the_span_cap_shows_its_first_spans_and_says_so() -> None:
    with SqliteStore(":memory:") as store:
        flow = order_flow()
        store.write(list(flow.spans))
        total = len(flow.spans)
        reader = WorkflowReader(store, clock=lambda: flow.end_ns, max_view_spans=5)
        view = json.loads(reader.view_json("order_441"))
        assert view["limited"]["shown"] == 5
        assert view["limited"]["total"] == total
        assert f"showing the first 5 of {total} spans" in view["limited"]["message"]
        assert "scope=trace" in view["limited"]["message"]
        assert len(view["spans"]["spans"]) == 5
        assert view["workflow"]["summary"]["span_count"] <= 5  # start markers are not counted
        first = sorted(flow.spans, key=lambda s: s.start_ns)[:5]
        assert {s["span_id"] for s in view["spans"]["spans"]} == {s.span_id for s in first}
        whole = WorkflowReader(store, clock=lambda: flow.end_ns)
        assert json.loads(whole.view_json("order_441"))["limited"] is None


def test_the_view_cache_is_bounded_in_bytes() -> None:
    with SqliteStore(":memory:") as store:
        keys = _fleet(store, 12)
        one = len(WorkflowReader(store).view_json(keys[0]))
        reader = WorkflowReader(store, view_cache_bytes=one * 4 + one // 2)
        for key in keys:
            reader.view_json(key)
            assert reader.cached_view_bytes <= reader.view_cache_bytes
        assert reader.cached_view_bytes >= one * 3  # it does keep what fits
        tiny = WorkflowReader(store, view_cache_bytes=one)  # a view over a quarter: not kept
        tiny.view_json(keys[0])
        assert tiny.cached_view_bytes == 0


def test_expired_views_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    with SqliteStore(":memory:") as store:
        keys = _fleet(store, 3)
        reader = WorkflowReader(store)
        for key in keys:
            reader.view_json(key)
        assert reader.cached_view_bytes > 0
        monkeypatch.setattr(reader_module, "VIEW_TTL_S", 0.0)
        reader.view_json(keys[0])  # any request sweeps what expired
        assert reader.cached_view_bytes == len(reader.view_json(keys[0]))
        assert len(reader._views) == 1
