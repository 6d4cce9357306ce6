"""Whatever the spans, the lint answers: no crash, findings well formed, and a store lint
reads every stored span exactly once however its workflows are cut."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracebraid import semconv
from tracebraid.analysis.lint import RULES_BY_ID, lint, lint_store
from tracebraid.model import AttributeValue, Span, SpanId, SpanKind, SpanLink, StatusCode, TraceId
from tracebraid.store import SqliteStore

TRACES = [TraceId(c * 32) for c in "abcd"]
IDS = [SpanId(f"{n:016x}") for n in range(1, 9)]
ATTRIBUTES: dict[str, st.SearchStrategy[AttributeValue]] = {
    semconv.OPERATION_TYPE: st.sampled_from(["send", "process", "receive", "publish"]),
    semconv.MESSAGE_ID: st.sampled_from(["evt_1", "evt_2", "order_1", "a" * 32]),
    semconv.CORRELATION_ID: st.sampled_from(["order_1", "order_2", "a" * 32]),
    semconv.CONSUMER_GROUP: st.sampled_from(["reserve-inventory", "process"]),
    semconv.EVENT_NAME: st.sampled_from(["order.placed", "order.shipped"]),
    semconv.ATTEMPT: st.integers(-1, 4),
    semconv.CAUSATION_ID: st.sampled_from(["evt_1", "evt_2"]),
    "url.full": st.sampled_from(["http://mq/api/exchanges/%2F/x/publish", "http://api/x"]),
    "http.request.method": st.sampled_from(["POST", "GET"]),
}


@st.composite
def spans(draw: st.DrawFn) -> list[Span]:
    found: list[Span] = []
    for trace_id in draw(st.lists(st.sampled_from(TRACES), min_size=1, max_size=3, unique=True)):
        for span_id in draw(st.lists(st.sampled_from(IDS), min_size=1, max_size=5, unique=True)):
            keys = draw(st.lists(st.sampled_from(sorted(ATTRIBUTES)), max_size=6, unique=True))
            start = draw(st.integers(0, 1_000))
            found.append(
                Span(
                    trace_id=trace_id,
                    span_id=span_id,
                    parent_span_id=draw(st.none() | st.sampled_from(IDS)),
                    name=draw(st.sampled_from(["process", "reserve-inventory", "POST", "x"])),
                    kind=draw(st.sampled_from(SpanKind)),
                    start_ns=start,
                    end_ns=start + draw(st.integers(0, 100)),
                    service=draw(st.sampled_from(["checkout-api", "inventory"])),
                    status=draw(st.sampled_from(StatusCode)),
                    attributes={k: draw(ATTRIBUTES[k]) for k in keys},
                    links=tuple(
                        SpanLink(t, s)
                        for t, s in draw(
                            st.lists(
                                st.tuples(st.sampled_from(TRACES), st.sampled_from(IDS)), max_size=2
                            )
                        )
                    ),
                )
            )
    return found


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spans())
def test_any_spans_lint_into_well_formed_findings(given_spans: list[Span]) -> None:
    report = lint(given_spans)
    services = {s.service for s in given_spans}
    for finding in report.findings:
        assert RULES_BY_ID[finding.rule].name == finding.name
        assert finding.count >= 1 and finding.service in services
        assert set(finding.services) <= services and len(finding.spans) <= 5
    with SqliteStore(":memory:") as store:
        store.write(given_spans)
        stored = lint_store(store)
    assert stored.spans == len({s.key for s in given_spans})
    assert stored.traces == len({s.trace_id for s in given_spans})
    assert {f.rule for f in stored.findings} <= set(RULES_BY_ID)
