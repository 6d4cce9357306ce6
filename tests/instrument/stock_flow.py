"""Run the order flow as six stock-instrumented services (``stock_order_service.py``, one
process each) over a real broker, and read back all their spans.

Example::

    spans = await run_stock_flow("aio-pika", DEFAULT_RABBITMQ_URL, tmp_path, propagator=True)
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from tracebraid.analysis import WorkflowAnalysis
from tracebraid.collector.otlp import decode_protobuf
from tracebraid.demo.order_flow import SERVICES, SETTLED_STEPS, STALLED_STEP
from tracebraid.model import Span

SERVICE_SCRIPT = Path(__file__).with_name("stock_order_service.py")
ORDER = 441
# Twice the unit tests' scale, as the demo's real-broker tests use.
SCALE = 0.1
DESTINATIONS = ("orders", "payments", "inventory")


@dataclass(frozen=True, slots=True)
class Shape:
    """What must be the same on tracebraid's EventBus and on stock instrumentation: the
    branches (event, service, attempts, what caused them, what they caused), the
    correlation IDs and the causation chain by event name."""

    branches: tuple[tuple[object, ...], ...]
    correlations: tuple[str, ...]
    causation: tuple[tuple[str | None, str | None], ...]


def _ended(outcome: str) -> str:
    # tracebraid's EventBus knows a failed attempt will be retried ("retry"); a stock
    # consumer only that it failed ("error"). Either way the attempt failed.
    return outcome if outcome in ("ok", "in_flight") else "failed"


def shape(analysis: WorkflowAnalysis, *, statuses: bool = True) -> Shape:
    """The shape of an analysed order flow; ``statuses=False`` leaves out how each branch
    ended (Kafka's stock consumer spans end at receive, before the work is done)."""
    services = {b.id: b.service for b in analysis.branches}
    names = {b.event_id: b.event_name for b in analysis.branches}
    branches = sorted(
        (
            b.event_name,
            b.service,
            b.status.value if statuses else None,
            tuple(_ended(a.outcome.value) for a in b.attempts) if statuses else len(b.attempts),
            services.get(b.caused_by) if b.caused_by else None,
            tuple(sorted(str(names.get(e, e)) for e in b.downstream_events)),
        )
        for b in analysis.branches
    )
    causation = sorted(
        {
            (b.event_name, names.get(e) if e in names else None)
            for b in analysis.branches
            for e in b.downstream_events
        },
        key=str,
    )
    return Shape(tuple(branches), tuple(analysis.correlation_ids), tuple(causation))


async def _expect(process: asyncio.subprocess.Process, word: bytes) -> None:
    assert process.stdout is not None
    line = await process.stdout.readline()
    if not line.startswith(word):
        rest = await process.stdout.read()
        raise AssertionError(f"expected {word!r}, got {line!r} {rest!r}")


async def run_stock_flow(
    system: str,
    broker: str,
    spans_dir: Path,
    *,
    propagator: bool,
    prepare: Callable[[str, str], Awaitable[None]] | None = None,
) -> list[Span]:
    """Start the six services, place one order, wait until every settled step is done
    and the stalled one has started, then stop them all and return every span.

    ``prepare(broker, namespace)`` runs first (creating Kafka topics, say).
    """
    namespace = f"tb-adopt-{uuid.uuid4().hex[:10]}."
    if prepare is not None:
        await prepare(broker, namespace)
    processes: dict[str, asyncio.subprocess.Process] = {}
    done: set[str] = set()
    expected = {*SETTLED_STEPS, STALLED_STEP}
    try:
        for service in SERVICES:
            processes[service] = await asyncio.create_subprocess_exec(
                sys.executable,
                str(SERVICE_SCRIPT),
                system,
                service,
                broker,
                namespace,
                str(spans_dir / f"{service}.otlp"),
                str(SCALE),
                "on" if propagator else "off",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
        async with asyncio.timeout(60):
            for process in processes.values():
                await _expect(process, b"ready")
            checkout = processes[SERVICES[0]]
            assert checkout.stdin is not None
            checkout.stdin.write(f"order {ORDER}\n".encode())
            await _expect(checkout, b"placed")

            async def follow(process: asyncio.subprocess.Process) -> None:
                assert process.stdout is not None
                while not expected <= done:
                    words = (await process.stdout.readline()).split()
                    if not words:
                        return
                    if words[0] in (b"done", b"started"):
                        done.add(words[1].decode())

            readers = [asyncio.create_task(follow(p)) for p in processes.values()]
            while not expected <= done:
                await asyncio.sleep(0.02)
            for reader in readers:
                reader.cancel()
            await asyncio.sleep(0.4)  # past the start-marker threshold of the stalled step
            for process in processes.values():
                assert process.stdin is not None
                process.stdin.write(b"stop\n")
            for process in processes.values():
                await _expect(process, b"stopped")
                await process.wait()
    finally:
        for process in processes.values():
            if process.returncode is None:
                process.kill()
                await process.wait()
    spans: list[Span] = []
    for service in SERVICES:
        decoded = decode_protobuf((spans_dir / f"{service}.otlp").read_bytes())
        assert not decoded.rejections
        spans.extend(decoded.spans)
    return spans
