"""tracebraid's answers on the conformance corpus, checked against every truth.

For each ``tests/corpus/<scenario>/``: the spans are read with tracebraid's own OTLP/JSON
file reader, analysed once, and every fact of ``truth.json`` is looked for in the answer.
A truth is matched to tracebraid's answer *independently* of tracebraid's identifiers:

- a message label is its ``(producer_service, destination)`` pair: its producer spans are
  the producer spans of that service addressed to that destination (read from the raw
  span attributes, not through tracebraid's vocabulary);
- a branch is the consumer spans of ``consumer_service`` that tracebraid's branches group
  for a message whose producer is one of those producer spans, or (no producer found) whose
  consumer spans read that destination.

One test per scenario and kind of truth, so a report names exactly what is not recovered.
``KNOWN_GAPS`` lists the truths tracebraid cannot yet recover from a scenario's spans,
each with the reason; the test for them is expected to fail (strictly: once it passes,
the entry must go).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tracebraid.analysis import (
    AttemptOutcome,
    Branch,
    BranchStatus,
    WorkflowAnalysis,
    analyze,
)
from tracebraid.collector.files import read_span_file
from tracebraid.model import Span, SpanKind

CORPUS = Path(__file__).parent
SCENARIOS = sorted(p.parent.name for p in CORPUS.glob("*/truth.json"))
KINDS = ("branches", "duplicates", "islands", "unconsumed", "lagging", "critical_path")
_DESTINATION_KEYS = ("messaging.destination.name", "messaging.destination")
_MESSAGE_ID_KEYS = ("messaging.message.id", "messaging.message_id")

# (scenario, kind) -> why tracebraid cannot recover it from these spans yet.
KNOWN_GAPS: dict[tuple[str, str], str] = {}
# Status messages of a consumer span its instrumentation ended because the channel went
# away before the application settled the message (amqplib): the span cannot say how the
# handler did, so "unknown" is as true as the truth's outcome there, and the attempt
# after it is then a redelivery (neither a retry nor a duplicate can be told).
UNSETTLED_STATUS = ("channel closed", "channel error")
# Scenarios whose consumer spans cover the handler but never record how it went
# (their NOTES.md says so): the honest answer is "unknown", as for receive-only spans.
OUTCOMES_UNRECORDED = {"confluent-kafka": "every span is UNSET, even when the handler raised"}


@dataclass(frozen=True)
class Scenario:
    name: str
    truth: dict[str, Any]
    spans: tuple[Span, ...]
    analysis: WorkflowAnalysis

    @functools.cached_property
    def recorded_text(self) -> str:
        """Every string the raw spans carry (attributes, status, events), to tell whether
        a fact such as an exception type is on the spans at all."""
        texts: list[str] = []
        for span in self.spans:
            texts.append(span.status_message or "")
            texts += [str(v) for v in span.attributes.values()]
            for event in span.events:
                texts += [str(v) for v in event.attributes.values()]
        return "\n".join(texts)

    def raw(self, trace_id: str, span_id: str) -> Span:
        return next(s for s in self.spans if (s.trace_id, s.span_id) == (trace_id, span_id))

    @property
    def handled_inside(self) -> bool:
        return bool(self.truth["handled_inside_consumer_span"])

    def message(self, label: str) -> dict[str, Any]:
        found: dict[str, Any] = self.truth["messages"][label]
        return found

    def producer_spans(self, label: str) -> list[Span]:
        """The label's producer spans: its service's producer spans to its destination."""
        message = self.message(label)
        return [
            s
            for s in self.spans
            if s.kind is SpanKind.PRODUCER
            and s.service == message["producer_service"]
            and _destination(s) == message["destination"]
        ]

    def branches_of(self, label: str, consumer_service: str) -> list[Branch]:
        """tracebraid's branches holding ``consumer_service``'s processing of ``label``."""
        message = self.message(label)
        producers = {(s.trace_id, s.span_id) for s in self.producer_spans(label)}
        by_producer: list[Branch] = []
        by_destination: list[Branch] = []
        for branch in self.analysis.branches:
            if branch.service != consumer_service:
                continue
            if branch.producer is not None:
                if (branch.producer.trace_id, branch.producer.span_id) in producers:
                    by_producer.append(branch)
            elif branch.destination == message["destination"]:
                by_destination.append(branch)
        return by_producer or by_destination


@functools.cache
def load(name: str) -> Scenario:
    folder = CORPUS / name
    truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
    spans: list[Span] = []
    for chunk in read_span_file(folder / "spans.jsonl"):
        assert not chunk.problems, f"{name}: {chunk.problems}"
        spans.extend(chunk.spans)
    return Scenario(name, truth, tuple(spans), analyze(spans))


def _destination(span: Span) -> str | None:
    for key in _DESTINATION_KEYS:
        value = span.attributes.get(key)
        if isinstance(value, str) and value:
            # aio-pika's producer spans say "exchange,routing_key".
            return value.split(",")[0] or value.split(",")[-1]
    return None


def _message_id(span: Span) -> str | None:
    for key in _MESSAGE_ID_KEYS:
        value = span.attributes.get(key)
        if value is not None and value != "":
            return str(value)
    return None


def check_branches(scenario: Scenario) -> Iterable[str]:
    for truth in scenario.truth["branches"]:
        label, service = truth["message"], truth["consumer_service"]
        where = f"{label} at {service}"
        found = scenario.branches_of(label, service)
        if len(found) != 1:
            shown = [(b.event_id, b.consumer, len(b.attempts)) for b in found]
            yield f"{where}: expected one branch, tracebraid has {shown}"
            continue
        branch = found[0]
        outcomes = [a.outcome for a in branch.attempts]
        if len(outcomes) != len(truth["attempts"]):
            yield f"{where}: {len(truth['attempts'])} attempts, tracebraid {len(outcomes)}"
            continue
        if not scenario.handled_inside or scenario.name in OUTCOMES_UNRECORDED:
            # The spans cannot show how handling went: every outcome must be unknown, and
            # the status too, unless a republish to a dead-letter route shows it failed.
            if any(o is not AttemptOutcome.UNKNOWN for o in outcomes):
                yield f"{where}: outcomes not in the spans, yet {[o.value for o in outcomes]}"
            allowed = {BranchStatus.UNKNOWN}
            if truth["status"] == "failed":
                allowed.add(BranchStatus.DEAD_LETTERED)
            if branch.status not in allowed:
                yield f"{where}: outcomes not in the spans, yet status {branch.status.value}"
            copies = scenario.message(label)["publishes"]
            again = len(outcomes) - min(copies, len(outcomes))
            if branch.redeliveries != again:
                yield f"{where}: {again} redeliveries, tracebraid {branch.redeliveries}"
            continue
        said = ["failed" if o.failed else "succeeded" if o is AttemptOutcome.OK else o.value
                for o in outcomes]  # fmt: skip
        unsettled = [
            (scenario.raw(a.span.trace_id, a.span.span_id).status_message or "").lower()
            in UNSETTLED_STATUS
            for a in branch.attempts
        ]
        expected_said = [
            "unknown" if blind and told == "unknown" else true
            for true, told, blind in zip(truth["attempts"], said, unsettled, strict=True)
        ]
        if said != expected_said:
            yield f"{where}: attempts {truth['attempts']}, tracebraid {said}"
        # An attempt after an honest "unknown" is a redelivery, whatever the truth calls it.
        blinded = [t for t, e in zip(truth["attempts"][:-1], expected_said, strict=False)
                   if e == "unknown"]  # fmt: skip
        expected = {"succeeded": {BranchStatus.SUCCEEDED},
                    "failed": {BranchStatus.FAILED, BranchStatus.DEAD_LETTERED},
                    "in_flight": {BranchStatus.IN_FLIGHT}}[truth["status"]]  # fmt: skip
        if branch.status not in expected:
            yield f"{where}: status {truth['status']}, tracebraid {branch.status.value}"
        duplicates = truth["duplicate_deliveries"] - blinded.count("succeeded")
        if branch.duplicates != duplicates:
            yield (f"{where}: {duplicates} duplicate deliveries, "
                   f"tracebraid {branch.duplicates}")  # fmt: skip
        # attempts that follow a failure
        retried = truth["attempts"][:-1].count("failed") - blinded.count("failed")
        if branch.retries != retried:
            yield f"{where}: {retried} retries, tracebraid {branch.retries}"
        if branch.redeliveries != len(blinded):
            yield f"{where}: {len(blinded)} redeliveries, tracebraid {branch.redeliveries}"
        if truth.get("error"):
            errors = [a.error or "" for a in branch.attempts if a.outcome.failed]
            # The error's type is demanded only when the spans carry it somewhere (read
            # raw); otherwise each failed attempt must still say what the spans recorded.
            wanted = truth["error"] if truth["error"] in scenario.recorded_text else ""
            if not errors or not all(e and wanted in e for e in errors):
                yield f"{where}: failed attempts raised {truth['error']}, tracebraid says {errors}"


def check_duplicates(scenario: Scenario) -> Iterable[str]:
    analysis = scenario.analysis
    for label in scenario.truth["duplicate_publishes"]:
        producers = {(s.trace_id, s.span_id) for s in scenario.producer_spans(label)}
        hits = [
            d
            for d in analysis.duplicate_publishes
            if sum((p.trace_id, p.span_id) in producers for p in d.producers) >= 2
        ]
        if not hits:
            yield f"{label}: published twice, tracebraid reports no duplicate publish of it"
    # A duplicate publish is not a duplicate delivery, and no other message is one.
    duplicated = set(scenario.truth["duplicate_publishes"])
    for found in analysis.duplicate_publishes:
        labels = {
            label
            for label in scenario.truth["messages"]
            if any(
                (p.trace_id, p.span_id) in {(s.trace_id, s.span_id) for s in
                                            scenario.producer_spans(label)}
                for p in found.producers
            )
        }  # fmt: skip
        if labels and not labels & duplicated:
            yield f"tracebraid calls {sorted(labels)} a duplicate publish; it was published once"


def check_islands(scenario: Scenario) -> Iterable[str]:
    islands = scenario.analysis.islands
    for truth in scenario.truth["islands"]:
        label, service = truth["message"], truth["consumer_service"]
        message = scenario.message(label)
        mine = [i for i in islands if i.root.service == service]
        if truth.get("producer_span") == "new-trace":
            # The producer started the new trace: its span is the island's root.
            mine += [i for i in islands if i.root.service == message["producer_service"]]
        if not mine:
            yield f"{label} at {service}: an island, tracebraid reports none there"
            continue
        producers = scenario.producer_spans(label)
        roots = [s for s in scenario.spans if (s.trace_id, s.span_id) in
                 {(i.root.trace_id, i.root.span_id) for i in mine}]  # fmt: skip
        joined = {_message_id(s) for s in producers} & {_message_id(s) for s in roots} - {None}
        if joined:
            stitched = [i for i in mine if i.producer is not None]
            if not stitched:
                yield f"{label} at {service}: message ID {joined} joins it, yet not stitched"
            elif any(
                i.producer.service != message["producer_service"] for i in stitched if i.producer
            ):
                yield f"{label} at {service}: stitched to the wrong producer"


def check_unconsumed(scenario: Scenario) -> Iterable[str]:
    reported = scenario.analysis.unconsumed
    for label in scenario.truth["unconsumed"]:
        message = scenario.message(label)
        hits = [
            u
            for u in reported
            if u.destination == message["destination"]
            and u.producer.service == message["producer_service"]
        ]
        if not hits:
            yield f"{label}: published to {message['destination']}, nobody consumed, unreported"
    for branch in scenario.analysis.branches:
        for label in scenario.truth["unconsumed"]:
            if branch.destination == scenario.message(label)["destination"]:
                yield f"{label}: nobody consumed it, yet tracebraid has a branch {branch.consumer}"


def check_lagging(scenario: Scenario) -> Iterable[str]:
    lagging = scenario.analysis.lagging
    for truth in scenario.truth["lagging"]:
        label, service = truth["message"], truth["consumer_service"]
        found = scenario.branches_of(label, service)
        if len(found) != 1:
            yield f"{label} at {service}: lagging, but its branch is not one ({len(found)})"
            continue
        branch = found[0]
        hits = [
            x for x in lagging if (x.event_id, x.consumer) == (branch.event_id, branch.consumer)
        ]
        if not hits:
            yield f"{label} at {service}: lagging, tracebraid does not say so"
        elif hits[0].queue_wait_ns < truth["wait_ms_at_least"] * 1_000_000:
            yield f"{label} at {service}: waited ≥ {truth['wait_ms_at_least']} ms, tracebraid " \
                  f"{hits[0].queue_wait_ns / 1e6:.0f} ms"  # fmt: skip
    for found in lagging:
        named = [
            t for t in scenario.truth["lagging"]
            if any((b.event_id, b.consumer) == (found.event_id, found.consumer)
                   for b in scenario.branches_of(t["message"], t["consumer_service"]))
        ]  # fmt: skip
        if not named:
            yield f"tracebraid calls {found.consumer} lagging on {found.event_id}; it was not held"


def check_critical_path(scenario: Scenario) -> Iterable[str]:
    truth = scenario.truth["critical_path_ends_with"]
    path = scenario.analysis.critical_path
    if not path.steps:
        yield "no critical path"
        return
    last = path.steps[-1].span
    branches = scenario.branches_of(truth["message"], truth["consumer_service"])
    attempts = {(a.span.trace_id, a.span.span_id) for b in branches for a in b.attempts}
    under = last.service == truth["consumer_service"] and (
        (last.trace_id, last.span_id) in attempts or not scenario.handled_inside
    )
    if not under:
        yield (f"ends with {truth['message']} at {truth['consumer_service']}; tracebraid's "
               f"ends at {last.name!r} ({last.service})")  # fmt: skip


CHECKS: dict[str, Callable[[Scenario], Iterable[str]]] = {
    "branches": check_branches,
    "duplicates": check_duplicates,
    "islands": check_islands,
    "unconsumed": check_unconsumed,
    "lagging": check_lagging,
    "critical_path": check_critical_path,
}


def _cases() -> list[Any]:
    cases = []
    for name in SCENARIOS:
        for kind in KINDS:
            gap = KNOWN_GAPS.get((name, kind))
            marks = [pytest.mark.xfail(reason=gap, strict=True)] if gap else []
            cases.append(pytest.param(name, kind, id=f"{name}-{kind}", marks=marks))
    return cases


def test_the_corpus_is_here() -> None:
    assert len(SCENARIOS) >= 8, SCENARIOS


@pytest.mark.parametrize(("name", "kind"), _cases())
def test_truth_is_recovered(name: str, kind: str) -> None:
    wrong = list(CHECKS[kind](load(name)))
    assert not wrong, f"{name}: " + "; ".join(wrong)
