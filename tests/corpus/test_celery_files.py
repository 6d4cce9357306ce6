"""The Celery corpus files: truth.json follows the README's schema, spans.jsonl parses,
and the two describe the same run.

These tests check the corpus itself, not tracebraid's answers on it (``test_corpus.py``
does that): the spans are read with tracebraid's file reader only, and the checks use
raw span fields (kind, parent, links, ``messaging.message.id``), never the analysis.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tracebraid.collector.files import read_span_file
from tracebraid.model import Span, SpanKind

CORPUS = Path(__file__).resolve().parent
SCENARIOS = ["celery-redis", "celery-redis-span-links"]
RETRY_PATTERNS = {
    "requeue",
    "dead-letter-ttl",
    "seek-back",
    "retry-topic",
    "celery-retry",
    "redelivery",
}
OUTCOMES = {"failed", "succeeded"}
MESSAGE_ID = "messaging.message.id"


def _truth(scenario: str) -> dict[str, Any]:
    truth: dict[str, Any] = json.loads((CORPUS / scenario / "truth.json").read_text())
    return truth


def _spans(scenario: str) -> list[Span]:
    spans: list[Span] = []
    for chunk in read_span_file(CORPUS / scenario / "spans.jsonl"):
        assert chunk.problems == [], [str(p) for p in chunk.problems]
        spans.extend(chunk.spans)
    return spans


def _by_message(spans: list[Span], kind: SpanKind, task_id: str) -> list[Span]:
    return [s for s in spans if s.kind is kind and s.attributes.get(MESSAGE_ID) == task_id]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_folder_has_every_file(scenario: str) -> None:
    folder = CORPUS / scenario
    for name in ("spans.jsonl", "truth.json", "make.py", "requirements.txt", "NOTES.md"):
        assert (folder / name).is_file(), f"{scenario} lacks {name}"
    assert (folder / "spans.jsonl").stat().st_size < 300_000
    pins = (folder / "requirements.txt").read_text().split()
    assert all("==" in pin for pin in pins), "every requirement is pinned"
    assert any(pin.startswith("opentelemetry-instrumentation-celery==") for pin in pins)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_truth_follows_the_readme_schema(scenario: str) -> None:
    truth = _truth(scenario)
    assert truth["scenario"] == scenario
    assert truth["description"].strip()
    assert truth["instrumentation"]["language"] == "python"
    assert all(isinstance(v, str) for v in truth["instrumentation"]["packages"].values())
    assert truth["broker"]["kind"] == "redis" and truth["broker"]["version"]
    assert truth["retry_pattern"] in RETRY_PATTERNS
    assert isinstance(truth["handled_inside_consumer_span"], bool)

    messages: dict[str, Any] = truth["messages"]
    addresses = [(m["producer_service"], m["destination"]) for m in messages.values()]
    assert len(set(addresses)) == len(addresses), "each label has its own producer+destination"
    for label, message in messages.items():
        assert message["publishes"] >= 1, label
        assert message["broker_ids"] and all(isinstance(i, str) for i in message["broker_ids"])

    for branch in truth["branches"]:
        assert branch["message"] in messages
        assert branch["attempts"] and set(branch["attempts"]) <= OUTCOMES
        assert branch["status"] == branch["attempts"][-1], "status is the last attempt's"
        assert branch["duplicate_deliveries"] >= 0
        assert ("error" in branch) == ("failed" in branch["attempts"]), branch
        if branch["duplicate_deliveries"]:
            first_success = branch["attempts"].index("succeeded")
            later = len(branch["attempts"]) - first_success - 1
            assert branch["duplicate_deliveries"] <= later

    consumed = {b["message"] for b in truth["branches"]}
    for label in truth["duplicate_publishes"]:
        assert messages[label]["publishes"] == 2
    for island in truth["islands"]:
        assert island["message"] in consumed
    for label in truth["unconsumed"]:
        assert label in messages and label not in consumed
    for lag in truth["lagging"]:
        assert lag["message"] in consumed and lag["wait_ms_at_least"] >= 400
    assert truth["critical_path_ends_with"]["message"] in consumed


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_spans_and_truth_describe_the_same_run(scenario: str) -> None:
    truth, spans = _truth(scenario), _spans(scenario)
    services = {s.service for s in spans}
    for label, message in truth["messages"].items():
        (task_id,) = message["broker_ids"]
        producers = _by_message(spans, SpanKind.PRODUCER, task_id)
        assert producers, f"{label}: no apply_async span carries {task_id}"
        first = min(producers, key=lambda s: s.start_ns)
        assert first.service == message["producer_service"]
        assert first.attributes.get("messaging.destination") == message["destination"]
        assert message["producer_service"] in services
    for branch in truth["branches"]:
        (task_id,) = truth["messages"][branch["message"]]["broker_ids"]
        runs = [
            s
            for s in _by_message(spans, SpanKind.CONSUMER, task_id)
            if s.service == branch["consumer_service"]
        ]
        # Celery makes one run span per execution: one per attempt in the truth.
        assert len(runs) == len(branch["attempts"]), branch
    for label in truth["unconsumed"]:
        (task_id,) = truth["messages"][label]["broker_ids"]
        assert _by_message(spans, SpanKind.CONSUMER, task_id) == []


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_celery_states_are_the_attempts(scenario: str) -> None:
    """celery.state on each run span, in start order, matches the truth's attempts."""
    truth, spans = _truth(scenario), _spans(scenario)
    for branch in truth["branches"]:
        (task_id,) = truth["messages"][branch["message"]]["broker_ids"]
        runs = sorted(
            (
                s
                for s in _by_message(spans, SpanKind.CONSUMER, task_id)
                if s.service == branch["consumer_service"]
            ),
            key=lambda s: s.start_ns,
        )
        states = [s.attributes.get("celery.state") for s in runs]
        expected = ["SUCCESS" if a == "succeeded" else "RETRY" for a in branch["attempts"]]
        if branch["status"] == "failed":
            expected[-1] = "FAILURE"
        assert states == expected, branch


@pytest.mark.parametrize(("scenario", "linked"), [(SCENARIOS[0], False), (SCENARIOS[1], True)])
def test_run_spans_are_children_or_links_of_their_publish(scenario: str, linked: bool) -> None:
    truth, spans = _truth(scenario), _spans(scenario)
    by_key = {s.key: s for s in spans}
    island_ids = {truth["messages"][i["message"]]["broker_ids"][0] for i in truth["islands"]}
    runs = [s for s in spans if s.kind is SpanKind.CONSUMER]
    assert Counter(s.name.split("/")[0] for s in runs) == {"run": len(runs)}
    for run in runs:
        task_id = run.attributes[MESSAGE_ID]
        if task_id in island_ids:
            assert run.parent_span_id is None and run.links == (), "the island has no publisher"
            continue
        if linked:
            assert run.parent_span_id is None
            (link,) = run.links
            publisher = by_key[(link.trace_id, link.span_id)]
        else:
            assert run.links == ()
            assert run.parent_span_id is not None
            publisher = by_key[(run.trace_id, run.parent_span_id)]
        assert publisher.kind is SpanKind.PRODUCER
        assert publisher.attributes[MESSAGE_ID] == task_id
