"""The RabbitMQ scenarios' files are sound: truth.json in the README's schema, spans.jsonl
readable by tracebraid's file reader, and both agree with the services' journal.

These check the corpus itself (what was recorded), not tracebraid's answers on it; those
are test_corpus.py's.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tracebraid.collector.files import read_span_file
from tracebraid.model import Span, SpanKind

HERE = Path(__file__).parent
SCENARIOS = ("aio-pika-requeue", "aio-pika-dead-letter-ttl", "pika-requeue", "pika-dead-letter-ttl")
TOP_KEYS = {
    "scenario": str,
    "description": str,
    "instrumentation": dict,
    "broker": dict,
    "retry_pattern": str,
    "handled_inside_consumer_span": bool,
    "messages": dict,
    "branches": list,
    "duplicate_publishes": list,
    "islands": list,
    "unconsumed": list,
    "lagging": list,
    "critical_path_ends_with": dict,
}
RETRY_PATTERNS = {
    "requeue",
    "dead-letter-ttl",
    "seek-back",
    "retry-topic",
    "celery-retry",
    "redelivery",
}


def _truth(scenario: str) -> dict[str, Any]:
    truth: dict[str, Any] = json.loads((HERE / scenario / "truth.json").read_text())
    return truth


def _spans(scenario: str) -> list[Span]:
    spans: list[Span] = []
    for chunk in read_span_file(HERE / scenario / "spans.jsonl"):
        assert not chunk.problems, [str(p) for p in chunk.problems]
        spans.extend(chunk.spans)
    return spans


def _journal(scenario: str) -> list[dict[str, Any]]:
    lines = (HERE / scenario / "journal.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _schema_problems(truth: dict[str, Any]) -> list[str]:
    """What in ``truth`` departs from tests/corpus/README.md's schema (empty when nothing)."""
    problems = [
        f"{key}: want {kind.__name__}"
        for key, kind in TOP_KEYS.items()
        if not isinstance(truth.get(key), kind)
    ]
    if problems:
        return problems
    problems += [f"unknown key {key}" for key in truth if key not in TOP_KEYS]
    if truth["retry_pattern"] not in RETRY_PATTERNS:
        problems.append(f"retry_pattern {truth['retry_pattern']!r}")
    if not truth["instrumentation"].get("packages"):
        problems.append("instrumentation.packages is empty")
    messages = truth["messages"]
    addresses = Counter((m["producer_service"], m["destination"]) for m in messages.values())
    problems += [f"two messages at {a}" for a, n in addresses.items() if n > 1]
    for label, message in messages.items():
        if set(message) != {"producer_service", "destination", "publishes", "broker_ids"}:
            problems.append(f"message {label} keys {sorted(message)}")
        elif message["publishes"] < 1 or not message["broker_ids"]:
            problems.append(f"message {label}: no publish or no broker id")
    branch_keys = {(b["message"], b["consumer_service"]) for b in truth["branches"]}
    for branch in truth["branches"]:
        where = f"branch {branch['message']}@{branch['consumer_service']}"
        attempts = branch["attempts"]
        if branch["message"] not in messages:
            problems.append(f"{where}: no such message")
        if not attempts or set(attempts) - {"failed", "succeeded"}:
            problems.append(f"{where}: attempts {attempts}")
        elif branch["status"] != attempts[-1]:
            problems.append(f"{where}: status {branch['status']} but last attempt {attempts[-1]}")
        if "succeeded" in attempts:
            after = len(attempts) - attempts.index("succeeded") - 1
            if branch["duplicate_deliveries"] != after:
                problems.append(f"{where}: duplicate_deliveries {branch['duplicate_deliveries']}")
        if ("failed" in attempts) != ("error" in branch):
            problems.append(f"{where}: failed attempts and error disagree")
    problems += [
        f"duplicate publish {label} published {messages.get(label, {}).get('publishes')}×"
        for label in truth["duplicate_publishes"]
        if messages.get(label, {}).get("publishes", 0) < 2
    ]
    problems += [
        f"unconsumed {label} has a branch or no message"
        for label in truth["unconsumed"]
        if label not in messages or any(m == label for m, _ in branch_keys)
    ]
    for entry in [*truth["islands"], *truth["lagging"], truth["critical_path_ends_with"]]:
        if (entry["message"], entry["consumer_service"]) not in branch_keys:
            problems.append(f"{entry} names no branch")
    problems += [f"lagging {e}" for e in truth["lagging"] if e["wait_ms_at_least"] < 400]
    return problems


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_truth_follows_the_readme_schema(scenario: str) -> None:
    truth = _truth(scenario)
    assert truth["scenario"] == scenario
    assert _schema_problems(truth) == []


def test_the_schema_check_finds_a_status_that_is_not_the_last_attempt() -> None:
    truth = _truth("pika-requeue")
    crm = next(b for b in truth["branches"] if b["consumer_service"] == "crm")
    crm["status"] = "succeeded"
    assert _schema_problems(truth) == [
        "branch order.placed@crm: status succeeded but last attempt failed"
    ]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_spans_parse_and_stay_small(scenario: str) -> None:
    path = HERE / scenario / "spans.jsonl"
    assert path.stat().st_size < 300_000
    spans = _spans(scenario)
    truth = _truth(scenario)
    services = {s.service for s in spans}
    named = {m["producer_service"] for m in truth["messages"].values()}
    named |= {b["consumer_service"] for b in truth["branches"]}
    assert named <= services
    assert "audit-relay" not in services  # the relay that drops the headers has no telemetry


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_journaled_delivery_and_publish_was_exported(scenario: str) -> None:
    """One CONSUMER span per delivery an instrumented service journaled; one PRODUCER
    span per publish with aio-pika, two nested ones with pika (its instrumentation wraps
    both the BlockingChannel and the channel underneath)."""
    journal = _journal(scenario)
    spans = _spans(scenario)
    deliveries = Counter(
        r["service"] for r in journal if r["kind"] == "delivery" and r["instrumented"]
    )
    publishes = Counter(r["service"] for r in journal if r["kind"] == "publish")
    per_publish = 2 if scenario.startswith("pika-") else 1
    consumer_spans = Counter(s.service for s in spans if s.kind is SpanKind.CONSUMER)
    producer_spans = Counter(s.service for s in spans if s.kind is SpanKind.PRODUCER)
    assert consumer_spans == deliveries
    assert producer_spans == Counter({s: n * per_publish for s, n in publishes.items()})


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_truth_branches_match_the_journal(scenario: str) -> None:
    journal = _journal(scenario)
    truth = _truth(scenario)
    outcomes: dict[tuple[str, str], list[str]] = {}
    for record in journal:
        if record["kind"] == "delivery" and record["instrumented"]:
            key = (record["label"], record["service"])
            outcomes.setdefault(key, []).append(record["outcome"])
    assert {(b["message"], b["consumer_service"]): b["attempts"] for b in truth["branches"]} == (
        outcomes
    )
    islands = {
        (r["label"], r["service"])
        for r in journal
        if r["kind"] == "delivery" and r["instrumented"] and not r["had_traceparent"]
    }
    assert {(i["message"], i["consumer_service"]) for i in truth["islands"]} == islands
