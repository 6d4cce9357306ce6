"""The analysis of sampled workflows: partial ones say so, fleet figures scale back."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from tracebraid import semconv
from tracebraid.analysis import PendingReason, analyze
from tracebraid.analysis.sampling import estimate, interesting
from tracebraid.model import Span
from tracebraid.sampling import keeps
from tracebraid.sdk import consuming, correlation, extract, publishing
from tracebraid.sdk.sampler import WorkflowSampler
from tracebraid.testing import capture_spans
from tracebraid.testing.workflows import Try, WorkflowBuilder


def _run(sampler: WorkflowSampler, ids: list[str], *, fail_webhook: bool = True) -> list[Span]:
    """Each workflow: order.placed to inventory and a webhook; the webhook fails once."""
    provider = TracerProvider(sampler=sampler, resource=Resource.create({"service.name": "s"}))
    with capture_spans(tracer_provider=provider) as capture:
        for cid in ids:
            with correlation(cid), publishing("order.placed", destination="orders") as placed:
                headers = placed.headers()
            with (
                consuming(extract(headers), step="reserve", consumer="inventory", destination="o"),
                publishing("inventory.reserved", destination="inventory"),
            ):
                pass
            if fail_webhook:
                with consuming(extract(headers), step="hook", consumer="wh", destination="o") as c:
                    c.fail(TimeoutError("warehouse slow"), backoff_ms=10)
            attempt = 2 if fail_webhook else 1
            with consuming(
                extract(headers), step="hook", consumer="wh", destination="o", attempt=attempt
            ):
                pass
        spans = capture.spans
    provider.shutdown()
    return spans


@pytest.fixture(scope="module")
def history() -> Iterator[list[Span]]:
    yield _run(WorkflowSampler(1.0), ["order_h1", "order_h2"], fail_webhook=False)


def test_a_partial_workflow_says_so_instead_of_false_pending(history: list[Span]) -> None:
    partial = _run(WorkflowSampler(0.0, keep_retries=True), ["order_p"])
    assert sorted(s.attributes[semconv.ATTEMPT] for s in partial) == [1, 2]
    analysis = analyze(partial, history=history)
    note = analysis.limitation("sampled_partial")
    assert note is not None and note.count == 2
    assert not [p for p in analysis.pending if p.reason is PendingReason.NOT_STARTED]
    assert analysis.islands == ()
    [webhook] = analysis.branches
    assert [a.outcome.value for a in webhook.attempts] == ["retry", "ok"]
    assert interesting(analysis) == ("retry", "failure")
    # The same spans without the mark: the inventory branch looks pending.
    unmarked = [
        dataclasses.replace(
            s, attributes={k: v for k, v in s.attributes.items() if "sampling" not in k}
        )
        for s in partial
    ]
    plain = analyze(unmarked, history=history)
    assert plain.limitation("sampled_partial") is None
    assert any(p.reason is PendingReason.NOT_STARTED for p in plain.pending)


def test_a_kept_workflow_is_whole_and_healthy_ones_are_not_interesting(
    history: list[Span],
) -> None:
    cid = next(f"order_{n}" for n in range(50) if keeps(f"order_{n}", 0.5))
    kept = _run(WorkflowSampler(0.5, keep_retries=True), [cid], fail_webhook=False)
    analysis = analyze(kept, history=history)
    assert analysis.limitation("sampled_partial") is None
    assert analysis.pending == () and analysis.islands == ()
    assert interesting(analysis) == ()


def test_fleet_estimates_scale_back_by_the_ratio() -> None:
    ids = [f"order_{n}" for n in range(400)]
    exact = estimate(_run(WorkflowSampler(1.0), ids))
    assert (exact.published, exact.retries, exact.failed_attempts) == (800, 400, 400)
    assert not exact.sampled
    for keep_retries in (False, True):
        sampled = estimate(_run(WorkflowSampler(0.25, keep_retries=keep_retries), ids))
        assert sampled.sampled
        assert 600 < sampled.published < 1000  # 2 per workflow, estimated from ~100 kept
        if keep_retries:  # every retry is kept and counts once
            assert sampled.retries == 400
        else:
            assert 300 < sampled.retries < 500
        assert 300 < sampled.failed_attempts < 500


def test_builder_workflows_with_trouble_are_interesting() -> None:
    builder = WorkflowBuilder(correlation_id="order_1")
    post = builder.action("POST /orders", service="api", duration_ms=5)
    placed = builder.publish(post, "order.placed", destination="orders")
    builder.consume(placed, "ship", service="shipping", tries=[Try(5, error="E", dead_letter=True)])
    assert set(interesting(analyze(builder.build().spans))) >= {"failure", "dead_letter"}
