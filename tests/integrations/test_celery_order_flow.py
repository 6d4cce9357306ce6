"""A Celery service instrumented with the stock Celery instrumentation,
``tracebraid.instrument()`` and ``tracebraid.integrations.celery`` runs the order flow
over real Redis and RabbitMQ, and the workflow analyses like the same flow on
tracebraid's ``EventBus``: the same branches (by business step: a Celery message is
named by its task), attempts, correlation and causation chain. A gift-card charge out of
retries is a final failure; the worker, killed at the end with the loyalty task still
running, leaves that task in flight (its start marker). Without the propagator the lint
reports the lost correlation (TB201).

One worker per run (prefork, every task), checkout-api in a process of its own:
``celery_order_service.py``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flow_shape import ORDER, SCALE, StepShape, step_shape
from span_files import read_spans

from tracebraid.analysis import WorkflowAnalysis, analyze, load_topology
from tracebraid.analysis.lint import lint
from tracebraid.demo import record_order_flow, topology_file
from tracebraid.demo.order_flow import SETTLED_STEPS, STALLED_STEP
from tracebraid.model import Span

pytestmark = [pytest.mark.broker, pytest.mark.slow]

SERVICE = Path(__file__).with_name("celery_order_service.py")
REDIS = "redis://127.0.0.1:6379/9"  # this module's own database, flushed first
RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"
GIFT_CARD = "charge-gift-card"
EXPECTED = {*SETTLED_STEPS, STALLED_STEP, GIFT_CARD}


def analysed(spans: list[Span]) -> WorkflowAnalysis:
    return analyze(spans, topology=load_topology(topology_file()))


@pytest.fixture(scope="module")
def on_event_bus() -> StepShape:
    _, spans = asyncio.run(record_order_flow(time_scale=SCALE, first_order=ORDER))
    return step_shape(analysed(spans))


@pytest.fixture(scope="module", autouse=True)
def flushed_redis() -> Iterator[None]:
    database = redis.Redis.from_url(REDIS)
    database.flushdb()
    yield
    database.flushdb()  # kombu's bindings and queues of the runs


async def _line(process: asyncio.subprocess.Process) -> list[str]:
    assert process.stdout is not None
    line = await process.stdout.readline()
    if not line:
        raise AssertionError(f"{SERVICE.name} exited ({process.returncode})")
    return line.decode().split()


async def run_celery_flow(
    broker: str, spans_dir: Path, *, propagator: bool, links: bool
) -> list[Span]:
    """Start the worker, let checkout-api place the orders, wait for every step (the
    loyalty one started, the gift card out of retries), kill the worker mid-task."""
    namespace = f"tb-integ-{uuid.uuid4().hex[:10]}."
    args = [broker, namespace, str(spans_dir), "on" if propagator else "off"]
    args.append("on" if links else "off")
    log = spans_dir / "worker.log"
    with log.open("wb") as stderr:
        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SERVICE),
            "worker",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,  # its pool's children with it, to be lost together
        )
    seen: set[str] = set()
    try:
        async with asyncio.timeout(60):
            while await _line(worker) != ["ready"]:
                pass  # Celery's banner
            checkout = await asyncio.create_subprocess_exec(
                sys.executable, str(SERVICE), "checkout", *args, stdout=asyncio.subprocess.PIPE
            )
            assert await _line(checkout) == ["placed"]
            assert await checkout.wait() == 0
            while not seen >= EXPECTED:
                words = await _line(worker)
                if words and words[0] in ("done", "started", "failed"):
                    seen.add(words[1])
            await asyncio.sleep(0.5)  # past the start-marker threshold of the stalled step
    except TimeoutError:
        tail = log.read_text(errors="replace")[-3000:]
        raise AssertionError(f"steps done: {sorted(seen)}; the worker's log:\n{tail}") from None
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # the worker is lost, the loyalty task with it
        await worker.wait()
    return read_spans(spans_dir)


def lost_correlations(spans: list[Span]) -> list[str]:
    return [f.message for f in lint(spans).findings if f.rule == "TB201"]


def assert_like_the_event_bus(analysis: WorkflowAnalysis, on_event_bus: StepShape) -> None:
    shape = step_shape(analysis)
    assert shape.branches == on_event_bus.branches
    assert (
        shape.causation
        == on_event_bus.causation
        == (
            ("authorize-payment", STALLED_STEP),
            ("authorize-payment", "project-order-summary"),
            ("reserve-inventory", "send-warehouse-webhook"),
        )
    )
    assert shape.correlations == (f"order_{ORDER}", f"order_{ORDER + 1}")
    [webhook] = [b for b in shape.branches if b[0] == "send-warehouse-webhook"]
    assert webhook[2] == ("failed", "failed", "ok")
    # The dead task: its worker was lost mid-task, its start marker shows it in flight.
    assert [str(f.consumer) for f in analysis.in_flight] == [STALLED_STEP]
    [gift_card] = [b for b in analysis.branches if b.step == GIFT_CARD]
    assert [a.outcome.value for a in gift_card.attempts] == ["retry", "error"]
    assert [a.reported_number for a in gift_card.attempts] == [1, 2]
    assert gift_card.status.value == "failed"
    assert "gift card declined" in str(gift_card.attempts[-1].error)


async def test_celery_over_redis_analyses_like_the_event_bus(
    tmp_path: Path, on_event_bus: StepShape
) -> None:
    spans = await run_celery_flow(REDIS, tmp_path, propagator=True, links=False)
    analysis = analysed(spans)
    assert_like_the_event_bus(analysis, on_event_bus)
    assert len(analysis.trace_ids) == 2  # one per order: every task a child of its sender
    assert lost_correlations(spans) == []


async def test_celery_over_rabbitmq_with_span_links_analyses_like_the_event_bus(
    tmp_path: Path, on_event_bus: StepShape
) -> None:
    """``use_span_links=True``: each task starts a trace of its own, linked to its
    sender's; the causation chain does not need the traces."""
    spans = await run_celery_flow(RABBITMQ, tmp_path, propagator=True, links=True)
    analysis = analysed(spans)
    assert_like_the_event_bus(analysis, on_event_bus)
    assert len(analysis.trace_ids) > 2
    assert lost_correlations(spans) == []


async def test_celery_without_the_propagator_loses_the_correlation(tmp_path: Path) -> None:
    spans = await run_celery_flow(REDIS, tmp_path, propagator=False, links=False)
    lost = lost_correlations(spans)
    assert any("received" in m and f"order_{ORDER}" in m for m in lost), lost
    # Celery's own identities still hold the branches together: task id, parent_id, retries.
    shape = step_shape(analysed(spans))
    assert {b[0] for b in shape.branches} >= set(SETTLED_STEPS)
