"""Context survives create_task, gather, TaskGroup and thread pools."""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor

from opentelemetry import trace

from tracebraid.sdk import (
    MessageContext,
    carry_context,
    consuming,
    current_correlation_id,
    current_processing,
    extract,
    publishing,
)
from tracebraid.testing import SpanCapture


def _wire() -> dict[str, str]:
    with publishing("order.placed", destination="orders", correlation_id="order_441") as pub:
        return pub.headers()


def _publish_follow_up(name: str) -> MessageContext:
    with publishing(name, destination="out") as pub:
        return pub.message


def _check(follow_up: MessageContext, incoming: dict[str, str]) -> None:
    assert follow_up.correlation_id == "order_441"
    assert follow_up.causation_id == incoming["x-event-id"]


async def _apublish(name: str) -> MessageContext:
    await asyncio.sleep(0)
    return _publish_follow_up(name)


async def test_context_survives_create_task(captured: SpanCapture) -> None:
    wire = _wire()
    async with consuming(extract(wire), step="s", consumer="c", destination="orders") as c:
        follow_up = await asyncio.create_task(_apublish("from-task"))
    _check(follow_up, wire)
    (span,) = captured.named("from-task publish")
    assert span.parent_span_id == c.processing.span_id


async def test_context_survives_gather(captured: SpanCapture) -> None:
    wire = _wire()
    async with consuming(extract(wire), step="s", consumer="c", destination="orders") as c:
        results = await asyncio.gather(*(_apublish(f"g{n}") for n in range(4)))
    for follow_up in results:
        _check(follow_up, wire)
    assert all(
        captured.named(f"g{n} publish")[0].parent_span_id == c.processing.span_id for n in range(4)
    )


async def test_context_survives_task_group(captured: SpanCapture) -> None:
    wire = _wire()
    async with (
        consuming(extract(wire), step="s", consumer="c", destination="orders") as c,
        asyncio.TaskGroup() as group,
    ):
        tasks = [group.create_task(_apublish(f"t{n}")) for n in range(3)]
    for n, task in enumerate(tasks):
        _check(task.result(), wire)
        assert captured.named(f"t{n} publish")[0].parent_span_id == c.processing.span_id


async def test_concurrent_consumers_do_not_see_each_others_event(
    captured: SpanCapture,
) -> None:
    wires = [_wire() for _ in range(5)]

    async def handle(wire: dict[str, str]) -> tuple[str | None, MessageContext]:
        async with consuming(extract(wire), step="s", consumer="c", destination="orders"):
            await asyncio.sleep(0.001)
            processing = current_processing()
            assert processing is not None
            return processing.event_id, await _apublish("follow")

    results = await asyncio.gather(*(handle(w) for w in wires))
    for wire, (event_id, follow_up) in zip(wires, results, strict=True):
        assert event_id == wire["x-event-id"]
        assert follow_up.causation_id == wire["x-event-id"]


def test_context_survives_a_thread_pool_with_carry_context(captured: SpanCapture) -> None:
    wire = _wire()
    with (
        ThreadPoolExecutor(2) as pool,
        consuming(extract(wire), step="s", consumer="c", destination="orders") as c,
    ):
        futures = [pool.submit(carry_context(_publish_follow_up), f"th{n}") for n in range(4)]
        results = [f.result() for f in futures]
        # Without carrying, a pool thread sees none of it: that is why the helper exists.
        assert pool.submit(current_correlation_id).result() is None
    for follow_up in results:
        _check(follow_up, wire)
        assert follow_up.trace_id == c.processing.trace_id


async def test_context_survives_run_in_executor_and_to_thread(captured: SpanCapture) -> None:
    wire = _wire()
    loop = asyncio.get_running_loop()
    async with consuming(extract(wire), step="s", consumer="c", destination="orders") as c:
        in_executor = await loop.run_in_executor(None, carry_context(_publish_follow_up), "ex")
        to_thread = await asyncio.to_thread(_publish_follow_up, "tt")
    for follow_up in (in_executor, to_thread):
        _check(follow_up, wire)
    for name in ("ex publish", "tt publish"):
        assert captured.named(name)[0].parent_span_id == c.processing.span_id


def test_carried_context_is_isolated_per_call() -> None:
    marker: contextvars.ContextVar[int] = contextvars.ContextVar("marker", default=0)

    def bump() -> int:
        marker.set(marker.get() + 1)
        return marker.get()

    bound = carry_context(bump)
    assert [bound(), bound()] == [1, 1]
    assert trace.get_current_span().get_span_context().is_valid is False
