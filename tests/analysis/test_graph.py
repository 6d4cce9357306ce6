from __future__ import annotations

import dataclasses
import random

from tracebraid.analysis import EdgeKind, Role, build_graph
from tracebraid.model import SpanId
from tracebraid.testing.workflows import (
    Try,
    Workflow,
    WorkflowBuilder,
    islands,
    spread_over_traces,
)

from .support import spans_named


def edge_names(workflow: Workflow, kind: EdgeKind) -> set[tuple[str, str]]:
    graph = build_graph(workflow.spans)
    return {
        (graph.spans[e.source].name, graph.spans[e.target].name)
        for e in graph.edges
        if e.kind is kind
    }


def test_every_parent_child_pair_is_a_child_edge(flow: Workflow) -> None:
    graph = build_graph(flow.spans)
    by_key = {s.key: s for s in flow.spans}
    expected = {
        (s.trace_id, s.parent_span_id, s.span_id)
        for s in flow.spans
        if s.parent_span_id is not None and (s.trace_id, s.parent_span_id) in by_key
        and s.scope == ""
    }  # fmt: skip
    nodes = graph.spans
    found = {
        (nodes[e.source].trace_id, nodes[e.source].span_id, nodes[e.target].span_id)
        for e in graph.edges
        if e.kind is EdgeKind.CHILD
    }
    assert found == expected


def test_delivery_edges_join_each_producer_to_every_consumer_of_its_event(flow: Workflow) -> None:
    assert edge_names(flow, EdgeKind.DELIVERY) == {
        ("order.placed publish", "authorize-payment"),
        ("order.placed publish", "reserve-inventory"),
        ("payment.authorized publish", "project-order-summary"),
        ("inventory.reserved publish", "send-warehouse-webhook"),
    }
    graph = build_graph(flow.spans)
    webhook_attempts = [
        e for e in graph.edges
        if e.kind is EdgeKind.DELIVERY and graph.spans[e.target].name == "send-warehouse-webhook"
    ]  # fmt: skip
    assert len(webhook_attempts) == 3
    assert not any(e.stitched for e in graph.edges)


def test_links_point_from_the_linked_span_to_the_holder(flow: Workflow) -> None:
    holders = {s.name for s in flow.spans if s.links and s.scope == ""}
    assert {target for _, target in edge_names(flow, EdgeKind.LINK)} == holders


def test_start_markers_are_not_nodes(flow: Workflow) -> None:
    graph = build_graph(flow.spans)
    markers = [s for s in flow.spans if s.scope]
    assert markers and graph.marker_count == len(markers)
    assert graph.open_markers == ()  # every announced span arrived
    assert len(graph.spans) == len(flow.spans) - len(markers)


def test_missing_parents_are_tolerated_and_listed(flow: Workflow) -> None:
    (placed,) = spans_named(flow.spans, "order.placed publish")
    spans = [s for s in flow.spans if s.key != placed.key]
    graph = build_graph(spans)
    orphans = {graph.spans[n].name for n in graph.missing_parents}
    assert orphans == {"authorize-payment", "reserve-inventory"}
    # Their own subtrees are intact.
    assert ("reserve-inventory", "inventory.reserved publish") in {
        (graph.spans[e.source].name, graph.spans[e.target].name) for e in graph.edges
    }


def test_input_order_does_not_change_the_graph(flow: Workflow) -> None:
    shuffled = list(flow.spans)
    random.Random(3).shuffle(shuffled)
    assert build_graph(shuffled) == build_graph(flow.spans)


def test_replayed_spans_count_once_and_are_reported(flow: Workflow) -> None:
    graph = build_graph(flow.spans + flow.spans[:4])
    assert graph.replayed == 4
    assert len(graph.spans) == len(build_graph(flow.spans).spans)


def test_replay_keeps_the_longest_copy_whatever_arrives_first(flow: Workflow) -> None:
    original = flow.spans[0]
    longer = dataclasses.replace(original, end_ns=original.end_ns + 5)
    for spans in ([original, longer], [longer, original]):
        graph = build_graph(spans)
        assert graph.spans == (longer,)


def test_a_delivery_across_traces_without_context_is_stitched() -> None:
    graph = build_graph(islands(2).spans)
    stitched = [e for e in graph.edges if e.stitched]
    assert len(stitched) == 2
    for edge in stitched:
        producer, consumer = graph.spans[edge.source], graph.spans[edge.target]
        assert producer.trace_id != consumer.trace_id
        assert consumer.parent_span_id is None and not consumer.links
        assert edge.event_id == graph.views[edge.target].event_id


def test_a_link_only_hand_off_across_traces_is_not_stitched() -> None:
    graph = build_graph(spread_over_traces(5).spans)
    deliveries = [e for e in graph.edges if e.kind is EdgeKind.DELIVERY]
    assert len(deliveries) == 4
    assert all(graph.spans[e.source].trace_id != graph.spans[e.target].trace_id for e in deliveries)
    assert not any(e.stitched for e in deliveries)


def test_a_retry_republish_is_not_a_second_origin() -> None:
    b = WorkflowBuilder()
    post = b.action("POST /orders", service="api", duration_ms=5)
    placed = b.publish(post, "order.placed", destination="orders")
    first = b.consume(placed, "reserve", service="inventory", tries=[Try(10, error="E: x")])
    b.publish(first.last, "order.placed", destination="orders.retry", event_id=placed.event_id)
    graph = build_graph(b.build().spans)
    assert len(graph.origin_producers[placed.event_id]) == 1
    assert len(graph.republishers[placed.event_id]) == 1


def test_a_parent_loop_terminates() -> None:
    b = WorkflowBuilder()
    root = b.action("POST /orders", service="api", duration_ms=5)
    child = b.step(root, "validate", at_ms=1, duration_ms=1)
    looped = [
        dataclasses.replace(root, parent_span_id=child.span_id),
        child,
    ]
    graph = build_graph(looped)
    assert graph.owner == (-1, -1)
    assert {graph.views[n].role for n in range(2)} == {Role.OTHER, Role.INTERNAL}


def test_links_to_absent_spans_are_listed_for_fetching() -> None:
    b = WorkflowBuilder()
    root = b.action("POST /orders", service="api", duration_ms=5)
    ghost = b.action("elsewhere", service="api", duration_ms=5)
    b.add_link(root, ghost)
    b.drop(ghost)
    graph = build_graph(b.build().spans)
    assert [(m.trace_id, m.span_id) for m in graph.missing_links] == [
        (ghost.trace_id, SpanId(ghost.span_id))
    ]
