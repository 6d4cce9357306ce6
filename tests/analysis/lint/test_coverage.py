"""Propagation coverage per service: the share of delivery edges with intact context."""

from __future__ import annotations

from tracebraid.analysis import analyze
from tracebraid.analysis.lint import CoverageTally, coverage
from tracebraid.model import SpanKind
from tracebraid.testing.workflows import order_flow, spread_over_traces

from .shapes import Spans


def test_every_delivery_counts_for_sender_and_receiver() -> None:
    by_service = {c.service: c for c in coverage(analyze(order_flow().spans))}
    assert by_service["inventory"].sent == 3  # the webhook's three attempts
    assert by_service["warehouse"].received == by_service["warehouse"].received_intact == 3
    assert all(c.ratio == 1.0 for c in by_service.values())


def test_stitched_deliveries_and_orphans_are_broken() -> None:
    flow = spread_over_traces(3, propagate=False)
    by_service = {c.service: c for c in coverage(analyze(flow.spans))}
    assert (by_service["checkout-api"].sent, by_service["checkout-api"].sent_intact) == (1, 0)
    assert by_service["svc-2"].ratio == 0.0
    s = Spans()
    s.consume(None, "legacy-audit", "audit", event_id="evt_9")
    (orphan,) = coverage(analyze(s.spans))
    assert (orphan.service, orphan.received, orphan.received_intact, orphan.ratio) == (
        "audit",
        1,
        0,
        0.0,
    )


def test_a_tally_adds_and_takes_back() -> None:
    whole = analyze(order_flow().spans)
    tally = CoverageTally()
    tally.add(whole)
    tally.add(whole)
    assert [c.sent for c in tally.result()] == [2 * c.sent for c in coverage(whole)]
    tally.add(whole, sign=-1)
    assert tally.result() == coverage(whole)
    empty = Spans()
    empty.add("GET /health", SpanKind.SERVER, "api")
    assert coverage(analyze(empty.spans)) == ()
