"""The Kafka corpus folders are well formed: truth.json follows the README's schema and
agrees with itself, and spans.jsonl reads with tracebraid's own file reader.

These tests check the recording, not tracebraid's answers (``test_corpus.py`` does that).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tracebraid.collector.files import read_span_file

CORPUS = Path(__file__).parent
# The folders made by the shared Kafka runner; other helpers' folders are left alone.
KAFKA = sorted(
    p.parent for p in CORPUS.glob("*/make.py") if "from kafka_corpus import" in p.read_text()
)
BROKER_ID = re.compile(r"^(?P<topic>.+)/(?P<partition>\d+)@(?P<offset>\d+)$")
OUTCOMES = {"failed", "succeeded"}
TOP_KEYS = {
    "scenario",
    "description",
    "instrumentation",
    "broker",
    "retry_pattern",
    "handled_inside_consumer_span",
    "messages",
    "branches",
    "duplicate_publishes",
    "islands",
    "unconsumed",
    "lagging",
    "critical_path_ends_with",
}


def truth_of(folder: Path) -> dict[str, Any]:
    truth: dict[str, Any] = json.loads((folder / "truth.json").read_text())
    return truth


def test_there_are_kafka_scenarios() -> None:
    assert {p.name for p in KAFKA} >= {
        "aiokafka-seek-back",
        "aiokafka-retry-topic",
        "aiokafka-getmany",
        "confluent-kafka",
        "kafka-python",
    }


@pytest.mark.parametrize("folder", KAFKA, ids=lambda p: p.name)
def test_truth_follows_the_schema(folder: Path) -> None:
    truth = truth_of(folder)
    assert truth.keys() >= TOP_KEYS, TOP_KEYS - truth.keys()
    assert truth["broker"]["kind"] == "kafka"
    assert truth["scenario"] == folder.name
    assert truth["retry_pattern"] in {"seek-back", "retry-topic", "redelivery"}
    assert isinstance(truth["handled_inside_consumer_span"], bool)
    assert truth["instrumentation"]["language"] == "python"
    assert all(re.fullmatch(r"[\w.]+", v) for v in truth["instrumentation"]["packages"].values())
    messages = truth["messages"]
    pairs = set()
    for label, m in messages.items():
        pair = (m["producer_service"], m["destination"])
        assert pair not in pairs, f"{label}: (producer, destination) is not unique"
        pairs.add(pair)
        assert m["publishes"] == len(m["broker_ids"]) >= 1, label
        for broker_id in m["broker_ids"]:
            match = BROKER_ID.match(broker_id)
            assert match and match["topic"] == m["destination"], broker_id
        assert len(set(m["broker_ids"])) == len(m["broker_ids"]), f"{label}: an offset twice"
    for b in truth["branches"]:
        where = f"{b['message']} at {b['consumer_service']}"
        assert b["message"] in messages, where
        assert b["attempts"] and set(b["attempts"]) <= OUTCOMES, where
        assert b["status"] == b["attempts"][-1], where
        assert len(b["delivered"]) == len(b["attempts"]), where
        assert ("error" in b) == ("failed" in b["attempts"]), where
        after_success = sum(
            1
            for i, d in enumerate(b["delivered"])
            if any(b["delivered"][j] == d and b["attempts"][j] == "succeeded" for j in range(i))
        )
        assert b["duplicate_deliveries"] == after_success, where
    branch_keys = {(b["message"], b["consumer_service"]) for b in truth["branches"]}
    for label in truth["duplicate_publishes"]:
        assert messages[label]["publishes"] >= 2, label
    for island in truth["islands"]:
        assert (island["message"], island["consumer_service"]) in branch_keys, island
    for label in truth["unconsumed"]:
        assert label in messages
        assert not any(b["message"] == label for b in truth["branches"]), label
    for lag in truth["lagging"]:
        assert (lag["message"], lag["consumer_service"]) in branch_keys, lag
        assert lag["wait_ms_at_least"] >= 400
    end = truth["critical_path_ends_with"]
    assert (end["message"], end["consumer_service"]) in branch_keys, end


@pytest.mark.parametrize("folder", KAFKA, ids=lambda p: p.name)
def test_the_scenario_covers_every_case(folder: Path) -> None:
    truth = truth_of(folder)
    branches = truth["branches"]
    assert (
        max(sum(1 for b in branches if b["message"] == label) for label in truth["messages"]) >= 2
    ), "fan-out"
    assert any(b["attempts"].count("failed") >= 1 and len(b["attempts"]) > 1 for b in branches)
    assert any(b["status"] == "failed" for b in branches), "a final failure"
    assert any(b["duplicate_deliveries"] for b in branches), "a duplicate delivery"
    assert truth["duplicate_publishes"] and truth["islands"] and truth["lagging"]
    assert truth["unconsumed"]


@pytest.mark.parametrize("folder", KAFKA, ids=lambda p: p.name)
def test_spans_read_with_tracebraids_reader(folder: Path) -> None:
    path = folder / "spans.jsonl"
    assert path.stat().st_size < 300 * 1024
    chunks = list(read_span_file(path))
    problems = [str(p) for c in chunks for p in c.problems]
    spans = [s for c in chunks for s in c.spans]
    assert not problems
    truth = truth_of(folder)
    services = {s.service for s in spans}
    assert {b["consumer_service"] for b in truth["branches"]} <= services
    assert {m["producer_service"] for m in truth["messages"].values()} <= services
    assert all("kafka" in s.scope for s in spans), "a span from another instrumentation"
