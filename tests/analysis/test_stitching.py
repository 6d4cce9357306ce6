from __future__ import annotations

from tracebraid.analysis import IslandCause, analyze, why
from tracebraid.testing.workflows import WorkflowBuilder, islands, spread_over_traces


def test_islands_are_joined_to_their_producers_and_reported_as_one_break() -> None:
    workflow = islands(3)
    analysis = analyze(workflow.spans)
    assert [i.cause for i in analysis.islands] == [IslandCause.STITCHED] * 3
    for island in analysis.islands:
        assert island.root.name == "legacy-audit"
        assert island.producer is not None and island.producer.trace_id != island.trace_id
    (broken,) = analysis.breaks
    assert (broken.producer_service, broken.consumer_service, broken.destination) == (
        "checkout-api",
        "audit",
        "orders",
    )
    assert (broken.producer_step, broken.consumer_step) == ("order.placed publish", "legacy-audit")
    assert broken.count == 3
    assert set(broken.consumer_trace_ids) == {i.trace_id for i in analysis.islands}
    audit = [b for b in analysis.branches if b.service == "audit"]
    assert len(audit) == 3 and all(b.stitched for b in audit)


def test_islands_without_a_producer_anywhere_are_reported_too() -> None:
    analysis = analyze(islands(1, orphans=2).spans)
    causes = sorted(i.cause for i in analysis.islands)
    assert causes.count(IslandCause.STITCHED) == 1
    assert causes.count(IslandCause.NO_PRODUCER) == 2  # the two orphans' audit consumers
    for island in analysis.islands:
        assert island.root.name == "legacy-audit"
        if island.cause is IslandCause.NO_PRODUCER:
            assert island.producer is None and island.event_id in analysis.frontier.event_ids


def test_a_consumer_whose_context_arrived_is_no_island_when_its_producer_span_is_absent() -> None:
    # The orphans' payment consumers are children of the (unexported) publish: propagation
    # worked, only spans are missing. That is a missing parent, not broken causality.
    analysis = analyze(islands(0, orphans=1).spans)
    assert [(i.root.name, i.cause) for i in analysis.islands] == [
        ("legacy-audit", IslandCause.NO_PRODUCER)
    ]
    assert [m.span.name for m in analysis.missing_parents] == ["authorize-payment"]
    assert analysis.limitation("missing_parents") is not None


def test_a_trace_cut_below_its_root_is_no_island() -> None:
    b = WorkflowBuilder()
    post = b.action("POST /orders", service="api", duration_ms=20)
    b.step(post, "load-cart", at_ms=1, duration_ms=5)
    b.drop(post)
    analysis = analyze(b.build().spans)
    assert analysis.islands == () and len(analysis.missing_parents) == 1


def test_a_consumer_with_neither_event_id_nor_parent_is_an_unjoinable_island() -> None:
    b = WorkflowBuilder(stock=True)
    b.batch([], "nightly-consumer", service="etl", at_ms=0, duration_ms=5)
    (island,) = analyze(b.build().spans).islands
    assert island.cause is IslandCause.NO_EVENT_ID


def test_a_workflow_over_fifty_stitched_traces_is_one_causal_chain() -> None:
    workflow = spread_over_traces(50, propagate=False)
    analysis = analyze(workflow.spans)
    assert len(analysis.trace_ids) == 50
    assert len(analysis.islands) == 49
    assert sum(b.count for b in analysis.breaks) == 49
    last = max(analysis.branches, key=lambda b: b.first_start_ns)
    chain = why(analysis, f"{last.attempts[0].span.trace_id}:{last.attempts[0].span.span_id}")
    assert chain.complete and chain.steps[0].step == "POST /orders"
    assert chain.stitched_hops == 49
    assert len({step.span.trace_id for step in chain.steps}) == 50


def test_link_only_hand_offs_are_not_islands() -> None:
    analysis = analyze(spread_over_traces(50).spans)
    assert len(analysis.trace_ids) == 50
    assert analysis.islands == () and analysis.breaks == ()
    assert len(analysis.roots) == 50  # the user action and 49 linked consumers
