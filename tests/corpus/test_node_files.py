"""The Node.js corpus scenarios' files are well-formed: truth in the corpus schema, spans
that tracebraid's file reader takes without a problem, and each truth's services and
messages present in the recorded spans.

These tests check the recording, not tracebraid's answers (``test_corpus.py`` does that):
nothing here calls the analysis.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tracebraid.collector.files import read_span_file
from tracebraid.model import Span, SpanKind

CORPUS = Path(__file__).parent
SCENARIOS = ["node-amqplib", "node-kafkajs"]
OUTCOMES = {"failed", "succeeded"}
STATUSES = {"succeeded", "failed", "in_flight"}
MAX_SPAN_FILE = 300_000


def truth(scenario: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((CORPUS / scenario / "truth.json").read_text())
    return document


def spans(scenario: str) -> list[Span]:
    read: list[Span] = []
    for chunk in read_span_file(CORPUS / scenario / "spans.jsonl"):
        assert chunk.problems == [], [str(p) for p in chunk.problems]
        read.extend(chunk.spans)
    return read


def consumer_spans(recorded: list[Span], service: str) -> list[Span]:
    return [span for span in recorded if span.kind is SpanKind.CONSUMER and span.service == service]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_scenario_folder_holds_what_regenerates_it(scenario: str) -> None:
    folder = CORPUS / scenario
    for name in ["spans.jsonl", "truth.json", "make.py", "scenario.js", "otel.js", "NOTES.md"]:
        assert (folder / name).is_file(), f"{scenario} has no {name}"
    lock = json.loads((folder / "package-lock.json").read_text())
    manifest = json.loads((folder / "package.json").read_text())
    for name, version in manifest["dependencies"].items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version, name
    assert (folder / "spans.jsonl").stat().st_size < MAX_SPAN_FILE


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_truth_follows_the_corpus_schema(scenario: str) -> None:
    document = truth(scenario)
    assert document["scenario"] == scenario
    assert document["instrumentation"]["language"] == "javascript"
    assert document["broker"]["kind"] in {"rabbitmq", "kafka"} and document["broker"]["version"]
    assert isinstance(document["handled_inside_consumer_span"], bool)
    messages = document["messages"]
    for label, message in messages.items():
        assert message["publishes"] >= 1, label
        assert message["broker_ids"], label
    for branch in document["branches"]:
        assert branch["message"] in messages, branch
        assert branch["attempts"] and set(branch["attempts"]) <= OUTCOMES, branch
        assert branch["status"] in STATUSES
        assert branch["status"] == branch["attempts"][-1]
        if "succeeded" in branch["attempts"]:
            first_success = branch["attempts"].index("succeeded")
            expected = len(branch["attempts"]) - first_success - 1
        else:
            expected = 0
        if branch["message"] in document["duplicate_publishes"]:
            expected = 0  # each copy of a duplicate publish arrives once (README)
        assert branch["duplicate_deliveries"] == expected, branch
        assert ("error" in branch) == ("failed" in branch["attempts"]), branch
    labelled = [
        *document["duplicate_publishes"],
        *document["unconsumed"],
        *(entry["message"] for entry in document["islands"]),
        *(entry["message"] for entry in document["lagging"]),
        document["critical_path_ends_with"]["message"],
    ]
    assert set(labelled) <= set(messages)
    for label in document["duplicate_publishes"]:
        assert messages[label]["publishes"] == 2
    consumed = {branch["message"] for branch in document["branches"]}
    assert not consumed & set(document["unconsumed"])


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_scenario_covers_every_behaviour_the_corpus_promises(scenario: str) -> None:
    document = truth(scenario)
    branches = document["branches"]
    fan_out = [b for b in branches if b["message"] == "order.placed"]
    assert len({b["consumer_service"] for b in fan_out}) >= 2
    assert any(b["attempts"].count("failed") >= 2 and b["status"] == "succeeded" for b in branches)
    redelivered = [b for b in branches if b["message"] not in document["duplicate_publishes"]]
    assert any(b["duplicate_deliveries"] == 1 for b in redelivered)
    assert document["duplicate_publishes"] and document["unconsumed"]
    assert document["islands"] and document["lagging"][0]["wait_ms_at_least"] >= 400


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_service_and_message_of_the_truth_is_in_the_spans(scenario: str) -> None:
    document = truth(scenario)
    recorded = spans(scenario)
    services = {span.service for span in recorded}
    producers = {message["producer_service"] for message in document["messages"].values()}
    consumers = {branch["consumer_service"] for branch in document["branches"]}
    assert producers | consumers <= services
    for label, message in document["messages"].items():
        sends = [
            span
            for span in recorded
            if span.kind is SpanKind.PRODUCER
            and span.service == message["producer_service"]
            and message["destination"] in span.name
        ]
        assert len(sends) == message["publishes"], label
    for branch in document["branches"]:
        processed = consumer_spans(recorded, branch["consumer_service"])
        assert len(processed) == len(branch["attempts"]), branch


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_island_consumer_starts_a_trace_of_its_own(scenario: str) -> None:
    document = truth(scenario)
    recorded = spans(scenario)
    (island,) = document["islands"]
    roots = [
        span
        for span in recorded
        if span.service == island["consumer_service"] and span.kind is SpanKind.CONSUMER
    ]
    assert roots and all(span.parent_span_id is None and not span.links for span in roots)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_recorded_timing_agrees_with_the_truth(scenario: str) -> None:
    """The lagging consumer started late and the critical path's last work ended last."""
    document = truth(scenario)
    recorded = spans(scenario)
    (lagging,) = document["lagging"]
    message = document["messages"][lagging["message"]]
    published = min(
        span.start_ns
        for span in recorded
        if span.kind is SpanKind.PRODUCER and span.service == message["producer_service"]
    )
    started = min(span.start_ns for span in consumer_spans(recorded, lagging["consumer_service"]))
    assert (started - published) / 1e6 >= lagging["wait_ms_at_least"]
    last = max((s for s in recorded if s.kind is SpanKind.CONSUMER), key=lambda s: s.end_ns)
    assert last.service == document["critical_path_ends_with"]["consumer_service"]
