"""The API's I/O edge: learned consumers off the request path, views kept while nothing
new arrives."""

from __future__ import annotations

import time

from tracebraid.analysis import analyze, parse_topology
from tracebraid.store import SqliteStore
from tracebraid.testing.workflows import order_flow
from tracebraid.views.web.reader import WorkflowReader


def test_a_view_is_answered_again_until_a_span_arrives() -> None:
    with SqliteStore(":memory:") as store:
        flow = order_flow()
        store.write(list(flow.spans[:-1]))
        reader = WorkflowReader(store, clock=lambda: flow.end_ns)
        first = reader.view("order_441")
        assert reader.view("order_441") is first
        store.write(list(flow.spans[-1:]))
        fresh = reader.view("order_441")
        assert fresh is not first
        # The span that arrived is in the fresh view (a copy of the old one would pass `is not`).
        spans = first["workflow"]["summary"]["span_count"]
        assert fresh["workflow"]["summary"]["span_count"] == spans + 1


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
