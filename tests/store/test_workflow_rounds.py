"""load_workflow asks the store two things a round, however many spans the round brings.

The closure's rounds are bounded by the longest chain of traces found only through the
one before: a workflow whose traces carry its correlation ID takes two or three rounds
whatever its size, a chain of islands without correlation IDs one round per hop.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import cast

from workflow_fleet import CountingStore

from tracebraid.model import Span
from tracebraid.store import SpanStore, SqliteStore, WorkflowSpans, fetch_workflow
from tracebraid.testing.workflows import WorkflowBuilder, fan_out, spread_over_traces

LOOKUPS = {"spans_of_traces", "trace_ids_with"}


def _load(spans: Sequence[Span], key: str) -> tuple[WorkflowSpans, Counter[str]]:
    with SqliteStore(":memory:") as store:
        store.write(spans)
        counting = CountingStore(store)
        return fetch_workflow(cast(SpanStore, counting), key), counting.calls


def _in_start_order(spans: Sequence[Span]) -> tuple[Span, ...]:
    return tuple(sorted(spans, key=lambda s: (s.start_ns, s.trace_id, s.span_id)))


def _rounds(calls: Counter[str]) -> int:
    """Rounds of the closure: each fetches its new traces once."""
    assert set(calls) <= LOOKUPS, calls
    # The key's own look-up, then one per round (the last one finds nothing new).
    assert calls["trace_ids_with"] <= calls["spans_of_traces"] + 1, calls
    return calls["spans_of_traces"]


def test_fifty_traces_stitched_by_event_in_a_few_calls() -> None:
    flow = spread_over_traces(50, propagate=False)  # every hop an island, one correlation ID
    found, calls = _load(flow.spans, flow.spans[0].trace_id)
    assert found.spans == _in_start_order(flow.spans)
    assert len(found.trace_ids) == 50
    # Round 1 finds the correlation ID, round 2 every trace, round 3 nothing new.
    assert _rounds(calls) <= 3
    assert sum(calls.values()) <= 7 < len(flow.spans)


def test_fifty_islands_without_correlation_take_one_round_a_hop() -> None:
    flow = spread_over_traces(50, propagate=False, stock=True)
    found, calls = _load(flow.spans, flow.spans[0].trace_id)
    assert found.spans == _in_start_order(flow.spans)
    assert not found.correlation_ids
    # Each hop is found only through the event the hop before published.
    assert _rounds(calls) == 50
    assert sum(calls.values()) <= 2 * 50 + 1


def test_a_thousand_way_fan_out_in_a_few_calls() -> None:
    flow = fan_out(1000)
    found, calls = _load(flow.spans, flow.spans[0].trace_id)
    assert found.spans == _in_start_order(flow.spans)
    assert len(found.spans) > 2000  # every consumer span and its start marker
    assert _rounds(calls) <= 2
    assert sum(calls.values()) <= 5


def test_a_thousand_islands_of_one_event_in_one_round() -> None:
    # Stock instrumentation, a producer that drops the context: a thousand traces with
    # nothing but the event ID in common with the producer's.
    b = WorkflowBuilder(correlation_id=None, stock=True)
    post = b.action("POST /orders", service="checkout-api", duration_ms=12)
    placed = b.publish(post, "order.placed", destination="orders")
    for i in range(1000):
        b.consume(placed, f"handle-{i}", service=f"svc-{i % 10}", propagate=False)
    flow = b.build()
    found, calls = _load(flow.spans, placed.event_id)
    assert found.spans == _in_start_order(flow.spans)
    assert len(found.trace_ids) == 1001
    assert _rounds(calls) <= 2
    assert sum(calls.values()) <= 5
