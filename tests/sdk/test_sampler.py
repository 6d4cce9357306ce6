"""WorkflowSampler: whole workflows kept or dropped together, identities always carried."""

from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Sampler

import tracebraid
from tracebraid import semconv
from tracebraid.errors import ConfigurationError
from tracebraid.model import SpanKind
from tracebraid.sampling import keeps
from tracebraid.sdk import consuming, consuming_batch, correlation, extract, publishing
from tracebraid.sdk.sampler import WorkflowSampler, from_env_arg
from tracebraid.testing import SpanCapture, capture_spans

ROOT = Path(__file__).resolve().parents[2]


def _capture(sampler: Sampler) -> Iterator[SpanCapture]:
    provider = TracerProvider(sampler=sampler, resource=Resource.create({"service.name": "t"}))
    with capture_spans(tracer_provider=provider) as capture:
        yield capture
    provider.shutdown()


@pytest.fixture
def half() -> Iterator[SpanCapture]:
    yield from _capture(WorkflowSampler(0.5))


@pytest.fixture
def half_keeping_retries() -> Iterator[SpanCapture]:
    yield from _capture(WorkflowSampler(0.5, keep_retries=True))


def _workflow(cid: str, provider: trace.TracerProvider) -> None:
    """One workflow over every kind of hop: child consumer, link-only, batch, follow-up,
    and a plain OpenTelemetry span inside a consume (it finds the workflow in baggage)."""
    with correlation(cid), publishing("order.placed", destination="orders") as placed:
        headers = placed.headers()
    with consuming(extract(headers), step="reserve", consumer="inventory", destination="orders"):
        with provider.get_tracer("stock").start_as_current_span("SELECT stock"):
            pass
        with publishing("inventory.reserved", destination="inventory") as follow_up:
            follow_headers = follow_up.headers()
    with consuming(
        extract(headers), step="audit", consumer="audit", destination="orders", link_only=True
    ):
        pass
    with consuming_batch(
        [extract(follow_headers)], step="ship", consumer="shipping", destination="inventory"
    ):
        pass


def test_the_rule_is_deterministic_nested_and_near_the_ratio() -> None:
    ids = [f"order_{n}" for n in range(20_000)]
    at_10 = {i for i in ids if keeps(i, 0.1)}
    at_1 = {i for i in ids if keeps(i, 0.01)}
    assert at_1 <= at_10  # nested: what 1 % keeps, 10 % keeps too
    assert 1800 < len(at_10) < 2200
    assert 150 < len(at_1) < 250
    assert all(keeps(i, 1.0) for i in ids[:100]) and not any(keeps(i, 0.0) for i in ids[:100])


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "often"])
def test_a_bad_ratio_is_refused_naming_it(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="ratio"):
        WorkflowSampler(bad)  # type: ignore[arg-type]


def test_every_span_of_a_workflow_is_kept_or_dropped_together(half: SpanCapture) -> None:
    ids = [f"order_{n}" for n in range(200)]
    for cid in ids:
        _workflow(cid, half.tracer_provider)
    per_workflow = Counter(
        s.attributes.get(semconv.CORRELATION_ID) or _workflow_of_stock(s, half) for s in half.spans
    )
    kept = [cid for cid in ids if keeps(cid, 0.5)]
    assert sorted(per_workflow) == sorted(kept)
    # every kept workflow whole: 2 producers, 3 consumers, 1 plain span
    assert set(per_workflow.values()) == {6}
    assert 70 < len(kept) < 130
    assert all(s.attributes[semconv.SAMPLING_RATIO] == 0.5 for s in half.spans)


def _workflow_of_stock(span: tracebraid.Span, capture: SpanCapture) -> str:
    parent = next(s for s in capture.spans if s.span_id == span.parent_span_id)
    return str(parent.attributes[semconv.CORRELATION_ID])


def test_an_unsampled_hop_still_carries_every_identity(half: SpanCapture) -> None:
    cid = next(f"order_{n}" for n in range(100) if not keeps(f"order_{n}", 0.5))
    with correlation(cid), publishing("order.placed", destination="orders") as placed:
        headers = placed.headers()
    assert int(headers["traceparent"][-2:], 16) & 1 == 0  # sampled flag off, IDs valid
    assert headers["x-correlation-id"] == cid and headers["x-event-id"].startswith("evt_")
    incoming = extract({**headers, "x-attempt": "2"})
    with (
        consuming(incoming, step="s", consumer="c", destination="orders") as consumed,
        publishing("next", destination="d") as follow_up,
    ):
        follow_headers = follow_up.headers()
    assert consumed.attempt == 2
    assert follow_headers["x-causation-id"] == headers["x-event-id"]
    assert follow_headers["x-correlation-id"] == cid
    assert follow_headers["traceparent"].split("-")[1] == headers["traceparent"].split("-")[1]
    assert half.spans == []


def test_without_a_correlation_the_parent_decides() -> None:
    provider = TracerProvider(sampler=WorkflowSampler(0.0))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("root") as root:
        assert not root.is_recording()  # a root: the trace ID against the ratio (0)
    parent = trace.NonRecordingSpan(
        trace.SpanContext(1, 2, is_remote=True, trace_flags=trace.TraceFlags(1))
    )
    with tracer.start_as_current_span("child", context=trace.set_span_in_context(parent)) as c:
        assert c.is_recording()  # a sampled parent keeps its child
    provider.shutdown()


def test_keep_retries_records_later_attempts_and_failures_marked_partial(
    half_keeping_retries: SpanCapture,
) -> None:
    cid = next(f"order_{n}" for n in range(100) if not keeps(f"order_{n}", 0.5))
    with correlation(cid), publishing("order.placed", destination="orders") as placed:
        headers = placed.headers()
    with consuming(extract(headers), step="hook", consumer="wh", destination="o") as first:
        first.fail(TimeoutError("slow"))
    with (
        consuming(extract(headers), step="hook", consumer="wh", destination="o", attempt=2),
        publishing("hooked", destination="d"),
    ):
        pass
    with consuming(extract(headers), step="bill", consumer="billing", destination="o"):
        pass  # a first attempt that succeeded: sampled out like the rest
    with (
        pytest.raises(RuntimeError),
        consuming(extract(headers), step="mail", consumer="mail", destination="o"),
    ):
        raise RuntimeError("smtp down")
    spans = half_keeping_retries.spans
    kept = sorted((s.name, s.attributes[semconv.ATTEMPT]) for s in spans)
    assert kept == [("hook", 1), ("hook", 2), ("mail", 1)]
    assert all(s.attributes[semconv.SAMPLING_PARTIAL] is True for s in spans)
    assert all(s.kind is SpanKind.CONSUMER for s in spans)
    by_name = {s.name: s for s in spans if s.attributes[semconv.ATTEMPT] == 1}
    assert by_name["hook"].attributes[semconv.OUTCOME] == "retry"
    assert "slow" in (by_name["hook"].status_message or "")
    assert by_name["mail"].attributes[semconv.OUTCOME] == "error"
    assert by_name["mail"].events[0].name == "exception"


def test_without_keep_retries_a_failed_attempt_of_a_dropped_workflow_stays_dropped(
    half: SpanCapture,
) -> None:
    cid = next(f"order_{n}" for n in range(100) if not keeps(f"order_{n}", 0.5))
    with correlation(cid), publishing("order.placed", destination="orders") as placed:
        headers = placed.headers()
    with consuming(extract(headers), step="hook", consumer="wh", destination="o") as first:
        first.fail(TimeoutError("slow"))
    with consuming(extract(headers), step="hook", consumer="wh", destination="o", attempt=2):
        pass
    assert half.spans == []


def test_the_environment_argument_and_entry_point() -> None:
    assert from_env_arg("").ratio == 1.0
    sampler = from_env_arg("0.1, keep_retries")
    assert (sampler.ratio, sampler.keep_retries) == (0.1, True)
    with pytest.raises(ConfigurationError, match="unknown option 'often'"):
        from_env_arg("0.1,often")
    with pytest.raises(ConfigurationError, match="OTEL_TRACES_SAMPLER_ARG"):
        from_env_arg("ten percent")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    entry = project["project"]["entry-points"]["opentelemetry_traces_sampler"]
    assert entry == {"tracebraid_workflow": "tracebraid.sdk.sampler:from_env_arg"}
    assert tracebraid.WorkflowSampler is WorkflowSampler


class _Counting(WorkflowSampler):
    def __init__(self, ratio: float) -> None:
        super().__init__(ratio)
        self.asked = 0

    def should_sample(self, *args: object, **kwargs: object) -> object:  # type: ignore[override]
        self.asked += 1
        return super().should_sample(*args, **kwargs)  # type: ignore[arg-type]


def test_a_dropped_hop_does_not_go_through_the_sdk() -> None:
    sampler = _Counting(0.5)
    dropped = next(f"order_{n}" for n in range(100) if not keeps(f"order_{n}", 0.5))
    kept = next(f"order_{n}" for n in range(100) if keeps(f"order_{n}", 0.5))
    for capture in _capture(sampler):
        for cid in (dropped, kept):
            with correlation(cid), publishing("order.placed", destination="orders") as placed:
                headers = placed.headers()
            with consuming(extract(headers), step="s", consumer="c", destination="orders") as c:
                assert c.span.get_span_context().is_valid
                assert c.span.is_recording() == (cid == kept)
        assert [s.attributes[semconv.CORRELATION_ID] for s in capture.spans] == [kept, kept]
    assert sampler.asked == 2  # the kept workflow's two spans; the dropped hop asked nothing
