from __future__ import annotations

import pytest

from tracebraid.analysis import EdgeKind, WorkflowAnalysis, analyze, retries, why
from tracebraid.errors import InputError
from tracebraid.testing.workflows import Workflow, WorkflowBuilder, fan_in, islands

from .support import branch_by_step


def test_why_an_event_walks_back_to_the_user_action(
    flow: Workflow, analysis: WorkflowAnalysis
) -> None:
    chain = why(analysis, flow.events["payment.authorized"])
    assert [s.step for s in chain.steps] == [
        "POST /orders",
        "order.placed publish",
        "authorize-payment",
        "payment.authorized publish",
    ]
    assert [s.via for s in chain.steps] == [
        None,
        EdgeKind.CHILD,
        EdgeKind.DELIVERY,
        EdgeKind.CHILD,
    ]
    assert chain.complete and chain.gap is None and chain.stitched_hops == 0
    assert chain.steps[2].event_id == flow.events["order.placed"]
    assert chain.steps[2].consumer == "payment"


def test_why_a_span_by_id_or_by_trace_and_span(analysis: WorkflowAnalysis) -> None:
    webhook = branch_by_step(analysis, "send-warehouse-webhook")
    third = webhook.attempts[2].span
    by_span = why(analysis, third.span_id)
    by_both = why(analysis, f"{third.trace_id}:{third.span_id}")
    assert by_span.steps == by_both.steps
    assert [s.step for s in by_span.steps][-3:] == [
        "reserve-inventory",
        "inventory.reserved publish",
        "send-warehouse-webhook",
    ]


def test_why_crosses_stitched_traces_and_counts_the_hops() -> None:
    analysis = analyze(islands(1).spans)
    (audit,) = [b for b in analysis.branches if b.step == "legacy-audit"]
    chain = why(analysis, audit.attempts[0].span.span_id)
    assert chain.complete and chain.stitched_hops == 1
    assert chain.steps[-1].stitched and chain.steps[-1].via is EdgeKind.DELIVERY
    assert chain.steps[0].step == "POST /orders"


def test_why_says_where_an_incomplete_chain_stops() -> None:
    analysis = analyze(islands(0, orphans=1).spans)
    (audit,) = [b for b in analysis.branches if b.step == "legacy-audit"]
    chain = why(analysis, audit.event_id)
    assert not chain.complete
    assert chain.gap is not None and "producer is not among the spans" in chain.gap


def test_why_at_a_fan_in_lists_the_other_causes() -> None:
    analysis = analyze(fan_in(5).spans)
    (notify,) = [b for b in analysis.branches if b.step == "notify-customer"]
    chain = why(analysis, notify.attempts[0].span.span_id)
    assert chain.complete
    assert EdgeKind.LINK in [s.via for s in chain.steps]
    assert len(chain.also_caused_by) == 4
    assert {ref.name for ref in chain.also_caused_by} == {"item.added publish"}


def test_why_an_unknown_id_is_a_clear_input_error(analysis: WorkflowAnalysis) -> None:
    with pytest.raises(InputError, match=r"no event or span with ID 'evt_nope'.*give an event ID"):
        why(analysis, "evt_nope")


def test_why_an_ambiguous_span_id_asks_for_the_trace() -> None:
    b = WorkflowBuilder()
    one = b.action("GET /a", service="api", duration_ms=1)
    spans = [one, one.__class__(**{**_fields(one), "trace_id": b.new_trace_id()})]
    with pytest.raises(InputError, match="TRACE_ID:SPAN_ID"):
        why(analyze(spans), one.span_id)


def _fields(span: object) -> dict[str, object]:
    return {name: getattr(span, name) for name in span.__dataclass_fields__}  # type: ignore[attr-defined]


def test_retries_lists_the_troubled_branches(analysis: WorkflowAnalysis) -> None:
    report = retries(analysis)
    assert [b.step for b in report.branches] == ["send-warehouse-webhook"]
    assert report.total_retries == 2
    assert (report.duplicate_publishes, report.dead_letters) == ((), ())
