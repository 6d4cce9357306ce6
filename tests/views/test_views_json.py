"""The versioned JSON documents: every one fits its documented shape and says the same as
the analysis."""

from __future__ import annotations

import json
from typing import Any

import pytest
from json_shape import DOCUMENTS, check_document

from tracebraid.analysis import WorkflowAnalysis, analyze, latency, why
from tracebraid.testing.workflows import Workflow, duplicates, islands, link_cycle, order_flow
from tracebraid.views.documents import (
    latency_document,
    mermaid_document,
    to_json,
    why_document,
    workflow_document,
)
from tracebraid.views.mermaid import to_mermaid
from tracebraid.views.recent import pending_document, retries_document
from tracebraid.views.schema import SCHEMAS
from tracebraid.views.source import LoadedWorkflow


def round_trip(document: Any) -> Any:
    loaded = json.loads(to_json(document))
    assert loaded == document
    return loaded


def test_workflow_document_fits_and_agrees(order_analysis: WorkflowAnalysis) -> None:
    document = round_trip(workflow_document(order_analysis, key="order_441"))
    check_document(document)
    summary = document["summary"]
    assert summary["retries"] == 2 and summary["pending"] == 1 and summary["lost"] == 0
    assert summary["correlation_ids"] == ["order_441"]
    webhook = next(b for b in document["branches"] if b["step"] == "send-warehouse-webhook")
    assert [a["outcome"] for a in webhook["attempts"]] == ["retry", "retry", "ok"]
    assert webhook["attempts"][1]["backoff_before_ns"] > 0


def test_tree_in_json_marks_states_and_path(order_analysis: WorkflowAnalysis) -> None:
    tree = workflow_document(order_analysis, key=None)["tree"]
    (root,) = tree["roots"]
    assert root["span"]["name"] == "POST /orders" and root["on_critical_path"]
    (placed,) = root["events"]
    steps = {b["step"]: b for b in placed["branches"]}
    assert steps["reserve-inventory"]["on_critical_path"]
    assert not steps["authorize-payment"]["on_critical_path"]
    (authorized,) = steps["authorize-payment"]["events"]
    below = {b["step"]: b for b in authorized["branches"]}
    assert below["award-loyalty-points"]["state"] == "in_flight"
    assert below["award-loyalty-points"]["pending_reason"] == "in_flight"
    assert below["project-order-summary"]["lagging"]


def test_ranked_segments_index_the_segments(order_analysis: WorkflowAnalysis) -> None:
    path = workflow_document(order_analysis, key=None)["critical_path"]
    durations = [path["segments"][i]["duration_ns"] for i in path["ranked"]]
    assert sorted(path["ranked"]) == list(range(len(path["segments"])))
    assert durations == sorted(durations, reverse=True)
    assert sum(s["duration_ns"] for s in path["segments"]) == path["duration_ns"]


def test_why_latency_mermaid_documents(order_analysis: WorkflowAnalysis) -> None:
    webhook = next(b for b in order_analysis.branches if b.step == "send-warehouse-webhook")
    chain = round_trip(why_document(why(order_analysis, webhook.event_id), key="order_441"))
    check_document(chain)
    assert chain["complete"] is True
    assert [s["step"] for s in chain["steps"]] == [
        "place-order",
        "order.placed publish",
        "reserve-inventory",
        "inventory.reserved publish",
    ]
    check_document(round_trip(latency_document(latency(order_analysis), key="order_441")))
    check_document(round_trip(mermaid_document(to_mermaid(order_analysis), key=None)))


def test_pending_and_retries_documents(order_analysis: WorkflowAnalysis) -> None:
    loaded = [LoadedWorkflow("order_441", order_analysis, False)]
    pending = round_trip(pending_document(loaded, now_ns=order_analysis.now_ns, since_ns=None))
    check_document(pending)
    assert pending["totals"] == {"pending": 1, "lost": 0, "in_flight": 1, "unconsumed": 0}
    retried = round_trip(retries_document(loaded))
    check_document(retried)
    consumers = {c["consumer"]: c for c in retried["consumers"]}
    assert consumers["send-warehouse-webhook"]["retries"] == 2
    assert consumers["send-warehouse-webhook"]["errors"] == {"TimeoutError": 2}


@pytest.mark.parametrize(
    "workflow",
    [islands(2, orphans=1), duplicates(), link_cycle(), order_flow(stock=True)],
    ids=["islands", "duplicates", "cycle", "stock"],
)
def test_odd_shapes_fit_too(workflow: Workflow) -> None:
    analysis = analyze(workflow.spans)
    document = round_trip(workflow_document(analysis, key=None))
    check_document(document)
    check_document(round_trip(latency_document(latency(analysis), key=None)))
    loaded = [LoadedWorkflow("w", analysis, False)]
    check_document(round_trip(retries_document(loaded)))


def test_every_schema_is_versioned_and_has_a_shape_to_check() -> None:
    assert all(name.endswith("/v1") and name.startswith("tracebraid.") for name in SCHEMAS.values())
    # A new document kind without a TypedDict in json_shape would go unchecked.
    assert set(DOCUMENTS) == set(SCHEMAS.values())


def test_a_missing_key_is_caught(order_analysis: WorkflowAnalysis) -> None:
    document = dict(workflow_document(order_analysis, key=None))
    del document["critical_path"]
    with pytest.raises(AssertionError, match="missing keys"):
        check_document(document)
