"""Business steps and retries: named spans, every attempt its own span, back-off visible."""

from __future__ import annotations

import asyncio

import pytest

from tracebraid import semconv
from tracebraid.errors import ConfigurationError
from tracebraid.model import SpanKind, StatusCode
from tracebraid.sdk import correlation, exponential_backoff, retrying, step
from tracebraid.testing import SpanCapture


def test_step_decorates_a_sync_function(captured: SpanCapture) -> None:
    @step("reserve-inventory")
    def reserve(sku: str) -> str:
        return sku.upper()

    with correlation("order_441"):
        assert reserve("sku-1") == "SKU-1"
    (span,) = captured.named("reserve-inventory")
    assert span.kind is SpanKind.INTERNAL
    assert span.attributes[semconv.STEP] == "reserve-inventory"
    assert span.attributes[semconv.CORRELATION_ID] == "order_441"


async def test_step_decorates_an_async_function_and_records_errors(
    captured: SpanCapture,
) -> None:
    @step("authorize-payment", attributes={"payment.provider": "acme"})
    async def authorize() -> None:
        await asyncio.sleep(0)
        raise PermissionError("card declined")

    with pytest.raises(PermissionError):
        await authorize()
    (span,) = captured.named("authorize-payment")
    assert span.status is StatusCode.ERROR
    assert span.attributes["payment.provider"] == "acme"
    assert [e.name for e in span.events] == ["exception"]


def test_step_as_context_manager_nests(captured: SpanCapture) -> None:
    with step("outer") as outer, step("inner"):
        assert outer.is_recording()
    (outer_span,) = captured.named("outer")
    (inner_span,) = captured.named("inner")
    assert inner_span.parent_span_id == outer_span.span_id


async def test_one_step_object_entered_by_concurrent_tasks_keeps_them_apart(
    captured: SpanCapture,
) -> None:
    shared = step("project-order-summary")

    async def work(n: int) -> None:
        async with shared, step(f"inner-{n}"):
            await asyncio.sleep(0.001 * (3 - n))

    await asyncio.gather(*(work(n) for n in range(3)))
    outers = {s.span_id for s in captured.named("project-order-summary")}
    assert len(outers) == 3
    for n in range(3):
        (inner,) = captured.named(f"inner-{n}")
        assert inner.parent_span_id in outers
    parents = [captured.named(f"inner-{n}")[0].parent_span_id for n in range(3)]
    assert len(set(parents)) == 3


def test_sync_retries_make_one_span_per_attempt_with_outcomes(captured: SpanCapture) -> None:
    calls: list[int] = []

    @retrying("send-warehouse-webhook", attempts=3, backoff=exponential_backoff(2.0))
    def send() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TimeoutError(f"timeout {len(calls)}")
        return "sent"

    assert send() == "sent"
    spans = captured.named("send-warehouse-webhook")
    assert [s.attributes[semconv.ATTEMPT] for s in spans] == [1, 2, 3]
    assert [s.attributes[semconv.OUTCOME] for s in spans] == ["retry", "retry", "ok"]
    assert [s.attributes.get(semconv.BACKOFF_MS) for s in spans] == [2.0, 4.0, None]
    assert [s.status for s in spans] == [StatusCode.ERROR, StatusCode.ERROR, StatusCode.UNSET]
    assert [len(s.events) for s in spans] == [1, 1, 0]
    # The back-off is the gap between attempts, outside any attempt's span.
    assert spans[1].start_ns - spans[0].end_ns >= 2_000_000
    assert spans[2].start_ns - spans[1].end_ns >= 4_000_000


async def test_async_retries_give_up_after_the_last_attempt(captured: SpanCapture) -> None:
    @retrying("send-warehouse-webhook", attempts=2, backoff=0)
    async def send() -> None:
        raise TimeoutError("warehouse did not answer")

    with pytest.raises(TimeoutError):
        await send()
    spans = captured.named("send-warehouse-webhook")
    assert [s.attributes[semconv.OUTCOME] for s in spans] == ["retry", "error"]
    assert semconv.BACKOFF_MS not in spans[1].attributes


def test_exceptions_outside_retry_on_fail_at_once(captured: SpanCapture) -> None:
    @retrying("charge", attempts=5, backoff=0, retry_on=(TimeoutError,))
    def charge() -> None:
        raise ValueError("bad amount")

    with pytest.raises(ValueError, match="bad amount"):
        charge()
    (span,) = captured.named("charge")
    assert span.attributes[semconv.OUTCOME] == "error"


def test_retrying_needs_at_least_one_attempt() -> None:
    with pytest.raises(ConfigurationError, match="attempts >= 1"):
        retrying("x", attempts=0)


def test_exponential_backoff_is_capped() -> None:
    delay = exponential_backoff(100.0, factor=3.0, max_ms=500.0)
    assert [delay(n) for n in (1, 2, 3)] == [100.0, 300.0, 500.0]


async def test_retried_attempts_inside_a_consume_are_its_children(captured: SpanCapture) -> None:
    from tracebraid.sdk import consuming, extract

    tries: list[int] = []

    @retrying("send-warehouse-webhook", attempts=3, backoff=0)
    async def send() -> None:
        tries.append(1)
        if len(tries) < 2:
            raise TimeoutError("warehouse did not answer")

    incoming = extract({"x-event-id": "evt_1", "x-correlation-id": "order_441"})
    async with consuming(incoming, step="ship", consumer="warehouse", destination="q") as c:
        await send()
    attempts = captured.named("send-warehouse-webhook")
    assert [a.parent_span_id for a in attempts] == [c.processing.span_id] * 2
    assert {a.attributes[semconv.CORRELATION_ID] for a in attempts} == {"order_441"}
