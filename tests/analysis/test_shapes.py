"""Adversarial shapes end to end: cycles, huge fan-out and fan-in, out-of-order and
replayed input, missing parents, stock OpenTelemetry spans; and the JSON shape."""

from __future__ import annotations

import dataclasses
import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from tracebraid.analysis import (
    BranchStatus,
    EdgeKind,
    Hop,
    analyze,
    why,
)
from tracebraid.model import Span, SpanId, SpanKind, SpanLink, StatusCode, TraceId
from tracebraid.testing.workflows import (
    Workflow,
    fan_in,
    fan_out,
    link_cycle,
    order_flow,
    synthetic,
)

from .support import assert_path_partitions_its_time, spans_named

FLOW = order_flow()
SMALL = synthetic(150, seed=11)


def test_a_cycle_through_links_terminates_and_is_reported() -> None:
    workflow = link_cycle()
    analysis = analyze(workflow.spans)
    (cycle,) = analysis.cycles
    assert {s.name for s in cycle.spans} == {"aggregate-a", "aggregate-b"}
    assert cycle.edge_kinds == (EdgeKind.LINK,)
    assert analysis.limitation("cycles") is not None
    for step in ("aggregate-a", "aggregate-b"):
        (span,) = spans_named(workflow.spans, step)
        chain = why(analysis, span.span_id)
        assert chain.steps[-1].step == step
        assert len({s.span.span_id for s in chain.steps}) == len(chain.steps)
    assert len(analysis.critical_path.steps) == len(
        {s.span.span_id for s in analysis.critical_path.steps}
    )


def test_a_thousand_way_fan_out() -> None:
    workflow = fan_out(1000)
    analysis = analyze(workflow.spans)
    assert len(analysis.branches) == 1000
    assert {b.event_id for b in analysis.branches} == {workflow.events["order.placed"]}
    assert all(b.status is BranchStatus.SUCCEEDED for b in analysis.branches)
    assert len([d for d in analysis.deliveries if d.via is EdgeKind.DELIVERY]) == 1000
    assert analysis.lagging == ()  # waits of 1-5 ms are never lag
    latest = max(b.attempts[-1].end_ns or 0 for b in analysis.branches)
    assert analysis.critical_path.end_ns == latest
    assert [s.via for s in analysis.critical_path.steps][-1] is Hop.DELIVERY


def test_fan_in_through_a_batch_consumers_links() -> None:
    workflow = fan_in(30)
    analysis = analyze(workflow.spans)
    assert len(analysis.trace_ids) == 31
    batch = [b for b in analysis.branches if b.step == "bill-items"]
    assert len(batch) == 30 and all(b.batch for b in batch)
    assert len({b.attempts[0].span.span_id for b in batch}) == 1  # one span took them all
    assert analysis.islands == () and analysis.breaks == ()
    path = analysis.critical_path
    assert path.steps[-1].step == "notify-customer"
    assert Hop.LINK in [step.via for step in path.steps]


def test_missing_parents_are_reported_and_the_rest_still_analysed() -> None:
    (placed,) = spans_named(FLOW.spans, "order.placed publish")
    analysis = analyze([s for s in FLOW.spans if s.key != placed.key])
    assert {m.span.name for m in analysis.missing_parents} == {
        "authorize-payment",
        "reserve-inventory",
    }
    assert {m.parent_span_id for m in analysis.missing_parents} == {placed.span_id}
    assert analysis.limitation("missing_parents") is not None
    webhook = [b for b in analysis.branches if b.step == "send-warehouse-webhook"]
    assert len(webhook) == 1 and webhook[0].retries == 2
    # The trace keeps its genuine root, so it is not an island; the branches lost their producer.
    assert analysis.islands == ()
    orphans = [b for b in analysis.branches if b.event_id == FLOW.events["order.placed"]]
    assert len(orphans) == 2 and all(b.producer is None for b in orphans)
    assert placed.trace_id in analysis.frontier.trace_ids


def test_stock_opentelemetry_spans_are_analysed_and_the_gaps_said() -> None:
    stock = analyze(order_flow(stock=True).spans)
    assert len(stock.branches) == 4
    codes = {item.code for item in stock.limitations}
    assert {
        "no_correlation_id",
        "consumer_group_unknown",
        "attempt_numbers_absent",
        "event_name_absent",
        "start_markers_absent",
    } <= codes
    full = analyze(FLOW.spans)
    assert not {"no_correlation_id", "consumer_group_unknown", "attempt_numbers_absent"} & {
        item.code for item in full.limitations
    }
    assert stock.correlation_ids == () and full.correlation_ids == ("order_441",)
    assert [s.step for s in stock.critical_path.steps][-1] == "inventory receive"
    assert stock.limitation("consumer_group_unknown") is not None


def test_the_result_serialises_to_json() -> None:
    analysis = analyze(FLOW.spans)
    document = json.loads(json.dumps(analysis.to_dict()))
    assert "graph" not in document
    assert document["branches"][0]["attempts"][0]["span"]["trace_id"]
    assert document["critical_path"]["totals"][0]["kind"] == "failed_attempt"
    assert set(document) >= {"pending", "breaks", "islands", "limitations", "lagging"}


def test_analysis_is_the_same_for_the_same_input() -> None:
    assert analyze(SMALL.spans) == analyze(SMALL.spans)


@settings(max_examples=25, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(min_value=0, max_value=10))
def test_any_input_order_and_replays_give_the_same_analysis(
    rng: random.Random, replays: int
) -> None:
    for workflow in (FLOW, SMALL):
        expected = analyze(workflow.spans)
        shuffled = list(workflow.spans) + rng.sample(workflow.spans, replays)
        rng.shuffle(shuffled)
        found = analyze(shuffled)
        replayed = found.limitation("replayed_spans")
        assert (replayed.count if replayed else 0) == replays
        kept = tuple(item for item in found.limitations if item.code != "replayed_spans")
        assert dataclasses.replace(found, limitations=kept) == expected
        assert found.graph.edges == expected.graph.edges


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=20, max_value=300))
def test_synthetic_workflows_keep_the_invariants(seed: int, size: int) -> None:
    workflow: Workflow = synthetic(size, seed=seed)
    analysis = analyze(workflow.spans)
    assert_path_partitions_its_time(analysis)
    assert analysis.critical_path.end_ns == max(s.end_ns for s in analysis.graph.spans)
    for branch in analysis.branches:
        starts = [a.start_ns for a in branch.attempts]
        assert starts == sorted(starts)
        assert [a.number for a in branch.attempts] == list(range(1, len(starts) + 1))
    assert all(d.queue_wait_ns is None or d.queue_wait_ns >= 0 for d in analysis.deliveries)


def test_sdk_spans_without_markers_only_mean_quick_work() -> None:
    # tracebraid's SDK emits a marker only for work still running after a delay.
    quiet = analyze(order_flow(markers=False).spans)
    assert quiet.limitation("start_markers_absent") is None
    assert analyze(order_flow(stock=True).spans).limitation("start_markers_absent") is not None


KEYS = [
    "messaging.operation.type", "messaging.operation", "messaging.destination.name",
    "messaging.destination", "messaging.message.id", "messaging.message_id",
    "messaging.consumer.group.name", "messaging.message.conversation_id",
    "tracebraid.attempt", "tracebraid.outcome", "tracebraid.dead_letter", "celery.retries",
    "tracebraid.event_name", "tracebraid.causation_id", "tracebraid.marker.span_id",
]  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(["send", "process", "receive", "settle", "dead_letter", "evt_1", "evt_2", ""]),
    st.integers(-3, 3),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.tuples(st.text(max_size=3)),
)
IDS = [f"{n:016x}" for n in range(1, 9)]


@st.composite
def wild_spans(draw: st.DrawFn) -> list[Span]:
    spans = []
    for span_id in draw(st.lists(st.sampled_from(IDS), min_size=1, max_size=8, unique=True)):
        start = draw(st.integers(0, 1000))
        spans.append(
            Span(
                trace_id=TraceId(draw(st.sampled_from(["a" * 32, "b" * 32]))),
                span_id=SpanId(span_id),
                parent_span_id=draw(st.none() | st.sampled_from(IDS).map(SpanId)),
                name=draw(st.sampled_from(["x", "y"])),
                kind=draw(st.sampled_from(SpanKind)),
                start_ns=start,
                end_ns=start + draw(st.integers(-10, 100)),
                service=draw(st.sampled_from(["s", "t"])),
                status=draw(st.sampled_from(StatusCode)),
                attributes=draw(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6)),
                links=tuple(
                    SpanLink(TraceId(t * 32), SpanId(i))
                    for t, i in draw(
                        st.lists(st.tuples(st.sampled_from("ab"), st.sampled_from(IDS)), max_size=3)
                    )
                ),
                scope=draw(st.sampled_from(["", "", "tracebraid.start_marker"])),
            )
        )
    return spans


@settings(max_examples=200, deadline=None)
@given(wild_spans())
def test_any_well_typed_spans_are_analysed_without_error(spans: list[Span]) -> None:
    analysis = analyze(spans)
    assert all(d.queue_wait_ns is None or d.queue_wait_ns >= 0 for d in analysis.deliveries)
    assert_path_partitions_its_time(analysis)
    json.dumps(analysis.to_dict())
    for span in analysis.graph.spans:
        assert why(analysis, f"{span.trace_id}:{span.span_id}").steps[-1].span.span_id == (
            span.span_id
        )


def test_producer_spans_that_parent_each_other_terminate() -> None:
    """Malformed input: two publish spans of one message, each the other's parent, and a
    consumer under one of them. Finding which publish a delivery took climbs nested
    producer spans; a parent cycle must end that climb, not loop for ever."""
    from tracebraid.model import Span, SpanId, SpanKind, TraceId

    trace = TraceId("4bf92f3577b34da6a3ce929d0e0e4736")
    publish = {"messaging.operation.type": "send", "messaging.message.id": "evt_1",
               "messaging.destination.name": "orders"}  # fmt: skip
    a, b, c = SpanId("00000000000000a1"), SpanId("00000000000000b2"), SpanId("00000000000000c3")
    spans = (
        Span(trace, a, b, "orders send", SpanKind.PRODUCER, 0, 10, "shop", attributes=publish),
        Span(trace, b, a, "orders send", SpanKind.PRODUCER, 1, 9, "shop", attributes=publish),
        Span(trace, c, a, "orders process", SpanKind.CONSUMER, 20, 30, "billing",
             attributes={**publish, "messaging.operation.type": "process"}),
    )  # fmt: skip
    analysis = analyze(spans)
    (branch,) = analysis.branches
    assert [attempt.span.span_id for attempt in branch.attempts] == [c]
