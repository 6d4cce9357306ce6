"""Running the lint: conventions settle findings, findings merge, and a store is linted
one workflow at a time with the same answer as linting each workflow's spans."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from tracebraid.analysis import WorkflowAnalysis, analyze
from tracebraid.analysis.lint import (
    RULES,
    RULES_BY_ID,
    Finding,
    Severity,
    iter_stored_workflows,
    lint,
    lint_store,
    parse_conventions,
)
from tracebraid.analysis.lint.conventions import Conventions
from tracebraid.model import Span, SpanKind
from tracebraid.store import SqliteStore
from tracebraid.testing.workflows import (
    DEFAULT_START_NS,
    WorkflowBuilder,
    islands,
    order_flow,
    spread_over_traces,
)

from .shapes import Spans


def _summary(findings: Iterable[Finding]) -> list[tuple[str, str, str, str, int]]:
    return sorted((f.rule, f.service, f.step, f.key, f.count) for f in findings)


def test_conventions_change_severity_turn_rules_off_and_allow_findings() -> None:
    spans = order_flow(stock=True).spans
    default = lint(spans)
    assert default.worst is Severity.WARNING and default.at_or_above(Severity.ERROR) == ()
    settled = lint(
        spans,
        parse_conventions(
            "traceConventions:\n"
            "  rules: {TB601: error, TB401: off}\n"
            "  services:\n    summary:\n      rules: {TB501: info}\n"
            "  allow:\n    - rule: TB501\n      service: payment\n"
        ),
    )
    assert [f.rule for f in settled.at_or_above(Severity.ERROR)] == ["TB601"]
    assert "TB401" not in {f.rule for f in settled.findings}
    naming = {f.service: f.severity for f in settled.findings if f.rule == "TB501"}
    assert naming == {
        "inventory": Severity.WARNING,
        "summary": Severity.INFO,
        "warehouse": Severity.WARNING,
    }
    assert settled.suppressed == 1
    assert settled.count(Severity.INFO) == 1


def test_a_rule_list_is_just_a_list() -> None:
    def everything_is_late(analysis: WorkflowAnalysis, conventions: Conventions) -> list[Finding]:
        spec = RULES_BY_ID["TB602"]
        return [Finding.of(spec, service="clock", step="tick", message=str(analysis.span_count))]

    report = lint(order_flow().spans, rules=[*RULES, everything_is_late])
    assert [(f.rule, f.message) for f in report.findings] == [("TB602", "14")]
    assert lint(islands(2).spans, rules=[]).findings == ()


def test_findings_of_one_problem_merge_and_keep_a_few_examples() -> None:
    report = lint(islands(8).spans)
    (finding,) = report.findings
    assert finding.count == 8 and len(finding.spans) == 5


def _workflow(number: int, *, broken: bool) -> tuple[Span, ...]:
    b = WorkflowBuilder(
        correlation_id=f"order_{number}",
        seed=number,
        first_event=number * 1000,
        start_ns=DEFAULT_START_NS + number * 10**9,
    )
    post = b.action("POST /orders", service="checkout-api", duration_ms=12)
    placed = b.publish(post, "order.placed", destination="orders", at_ms=5)
    b.consume(placed, "reserve-inventory", service="inventory", propagate=not broken)
    return b.build().spans


@pytest.fixture
def store() -> Iterable[SqliteStore]:
    with SqliteStore(":memory:") as opened:
        yield opened


def test_a_store_is_linted_one_workflow_at_a_time(store: SqliteStore) -> None:
    workflows = [_workflow(n, broken=n % 3 == 0) for n in range(9)]
    for spans in workflows:
        store.write(spans)
    streamed = list(iter_stored_workflows(store, page=4))
    assert len(streamed) == 9
    assert all(
        not w.seen and len({s.trace_id for s in w.spans}) == len(w.trace_ids) for w in streamed
    )
    report = lint_store(store)
    assert (report.workflows, report.spans) == (9, sum(len(w) for w in workflows))
    (finding,) = report.findings
    assert (finding.rule, finding.count) == ("TB101", 3)
    separately = [f for spans in workflows for f in lint(spans).findings]
    assert sum(f.count for f in separately) == finding.count
    assert report.coverage == lint(tuple(s for w in workflows for s in w)).coverage


def test_a_trace_reached_again_later_is_context_and_counted_once(store: SqliteStore) -> None:
    # Stock spans, no correlation: the two batch-style consumers reach the producer's trace
    # only through their links, so the second finds it already linted.
    s = Spans()
    post = s.add("POST /orders", SpanKind.SERVER, "checkout-api")
    s.add("publish order", SpanKind.CLIENT, "checkout-api", parent=post, at=0.5)  # TB701
    sent = s.aio_pika_publish(post, "orders", "reserve", message_id="m-1")
    for at, service in ((6.0, "audit"), (7.0, "archive")):
        s.add(
            "orders receive",
            SpanKind.CONSUMER,
            service,
            attributes={"messaging.operation": "receive", "messaging.destination": "orders"},
            links=(sent,),
            at=at,
        )
    store.write(s.spans)
    streamed = list(iter_stored_workflows(store))
    assert [len(w.trace_ids) for w in streamed] == [2, 2]
    assert [len(w.seen) for w in streamed] == [0, 1]
    report = lint_store(store)
    assert _summary(report.findings) == _summary(lint(s.spans).findings)
    assert ("TB701", "checkout-api", "POST /orders", "publish order", 1) in _summary(
        report.findings
    )
    assert report.spans == len(s.spans) and report.traces == 3
    assert report.coverage == lint(s.spans).coverage


def test_a_time_window_picks_workflows_by_their_traces_start(store: SqliteStore) -> None:
    for n in range(5):
        store.write(_workflow(n, broken=True))
    since = DEFAULT_START_NS + 2 * 10**9
    until = DEFAULT_START_NS + 4 * 10**9
    report = lint_store(store, since_ns=since, until_ns=until)
    assert report.workflows == 2
    assert report.findings[0].count == 2
    assert lint_store(store, since_ns=DEFAULT_START_NS + 99 * 10**9).workflows == 0


def test_a_workflow_spread_over_many_traces_is_one_workflow(store: SqliteStore) -> None:
    flow = spread_over_traces(12, propagate=False)
    store.write(flow.spans)
    report = lint_store(store)
    assert report.workflows == 1 and report.traces == 12
    assert _summary(report.findings) == _summary(lint(flow.spans).findings)


def test_workflows_stop_growing_at_max_traces(store: SqliteStore) -> None:
    store.write(spread_over_traces(12, propagate=False).spans)
    report = lint_store(store, max_traces=5)
    assert report.truncated >= 1


def test_analysis_and_spans_give_one_answer() -> None:
    spans = islands(2).spans
    assert lint(analyze(spans)).findings == lint(spans).findings
