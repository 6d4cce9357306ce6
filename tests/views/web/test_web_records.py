"""The web view's span records: reusing the analysis's normalisation changes nothing."""

from __future__ import annotations

import dataclasses

from tracebraid.analysis import analyze
from tracebraid.testing.workflows import order_flow
from tracebraid.views.web.records import spans_document


def test_spans_read_through_the_graph_are_the_spans_normalised_again() -> None:
    spans = order_flow().spans
    analysis = analyze(spans)
    alone = spans_document(spans, key="order_441", truncated=False, details=False)
    reused = spans_document(
        spans, key="order_441", truncated=False, details=False, graph=analysis.graph
    )
    assert reused == alone
    assert any(s["identity"]["role"] == "consumer" for s in reused["spans"])


def test_a_span_the_graph_did_not_see_is_normalised_on_its_own() -> None:
    spans = order_flow().spans
    analysis = analyze(spans)
    # Equal content, another object: identity, not equality, decides reuse.
    copies = [dataclasses.replace(s) for s in spans]
    document = spans_document(copies, key=None, truncated=False, graph=analysis.graph)
    assert document == spans_document(spans, key=None, truncated=False)
