"""Regenerate the node-amqplib corpus: spans.jsonl and truth.json.

Runs the services of ``scenario.js`` as separate Node.js processes (each its own
``service.name``) with the stock OpenTelemetry amqplib instrumentation against the
RabbitMQ on 127.0.0.1:5672, exporting through the stock OTLP/HTTP exporter to
``../capture.py``. The truth is derived from what the services logged they did (publishes,
deliveries with the broker's redelivered flag and x-death counts, handler outcomes) and
from the broker's queue depths afterwards: never from the spans.

Usage (Node.js 20 and npm on PATH, RabbitMQ up)::

    python tests/corpus/node-amqplib/make.py
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CAPTURE = HERE.parent / "capture.py"
PREFIX = "corpus-node-amqp"
CONSUMERS = ["payment", "inventory", "summary", "shipping", "invoicing", "warehouse", "audit"]
LAG_S = 0.7  # the summary consumer starts consuming this long after the order is placed
UNCONSUMED_QUEUES = {"report.requested": f"{PREFIX}.reports"}
LAG_AT_LEAST_MS = 400
# Deliveries the scenario makes, per service; the run waits for all of them.
EXPECTED_DELIVERIES = {
    "payment": 3,
    "inventory": 2,
    "summary": 1,
    "shipping": 2,
    "invoicing": 2,
    "warehouse": 1,
    "audit": 1,
}
PACKAGES = [
    "@opentelemetry/api",
    "@opentelemetry/sdk-trace-node",
    "@opentelemetry/exporter-trace-otlp-http",
    "@opentelemetry/instrumentation",
    "@opentelemetry/instrumentation-amqplib",
    "@opentelemetry/instrumentation-http",
    "amqplib",
]

Event = dict[str, Any]


def service_name(role: str) -> str:
    return f"{PREFIX}-{role}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Service:
    """One Node.js process of the scenario; its JSON log lines go to a shared queue."""

    def __init__(self, role: str, env: dict[str, str], events: queue.Queue[Event]) -> None:
        self.role = role
        self.proc = subprocess.Popen(
            ["node", "scenario.js", role],
            cwd=HERE,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.events = events
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.put(json.loads(line))

    def stop(self) -> None:
        """Waits for the process to end after SIGTERM (it flushes its spans first)."""
        if self.proc.wait(timeout=20) != 0:
            raise RuntimeError(f"{self.role} exited with {self.proc.returncode}")
        self.reader.join(timeout=5)


class Run:
    """The scenario's processes and everything they logged."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.events: queue.Queue[Event] = queue.Queue()
        self.log: list[Event] = []
        self.services: dict[str, Service] = {}

    def once(self, role: str) -> list[Event]:
        """Runs an untraced helper role (setup, inspect) to completion."""
        done = subprocess.run(
            ["node", "scenario.js", role],
            cwd=HERE,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return [json.loads(line) for line in done.stdout.splitlines()]

    def start(self, roles: list[str]) -> None:
        """Starts the services together and waits until each says it is ready."""
        for role in roles:
            self.services[role] = Service(role, self.env, self.events)
        self.wait_for(lambda: {e["service"] for e in self.log if e["ev"] == "ready"} >= set(roles))

    def drain(self) -> None:
        while True:
            try:
                self.log.append(self.events.get_nowait())
            except queue.Empty:
                return

    def wait_for(self, done: Any, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.drain()
            if done():
                return
            for role, service in self.services.items():
                if service.proc.poll() is not None:
                    raise RuntimeError(f"{role} exited early with {service.proc.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"scenario stalled; log so far: {self.log}")
            time.sleep(0.05)

    def deliveries(self) -> Counter[str]:
        return Counter(e["service"] for e in self.log if e["ev"] == "delivery")

    def stop(self) -> None:
        """Stops every service (all of them, even when one fails) and keeps their last lines."""
        for service in self.services.values():
            if service.proc.poll() is None:
                service.proc.send_signal(signal.SIGTERM)
        failures = []
        for service in self.services.values():
            try:
                service.stop()
            except (RuntimeError, subprocess.TimeoutExpired) as failure:
                service.proc.kill()
                failures.append(str(failure))
        self.drain()
        if failures:
            raise RuntimeError("; ".join(failures))


def installed_versions() -> dict[str, str]:
    versions = {"node": subprocess.check_output(["node", "--version"], text=True).strip()}
    for name in PACKAGES:
        manifest = json.loads((HERE / "node_modules" / name / "package.json").read_text())
        versions[name] = manifest["version"]
    return versions


def run_scenario(spans: Path) -> tuple[list[Event], dict[str, Any], dict[str, int]]:
    if not (HERE / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True)
    spans.unlink(missing_ok=True)
    port = free_port()
    capture = subprocess.Popen(
        [sys.executable, str(CAPTURE), str(spans), "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert capture.stdout is not None
    capture.stdout.readline()  # the receiver prints its endpoint once it listens
    checkout_port = free_port()
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        "CHECKOUT_PORT": str(checkout_port),
    }
    run = Run(env)
    try:
        (broker,) = [e for e in run.once("setup") if e["ev"] == "broker"]
        run.start([*CONSUMERS, "checkout"])
        request = urllib.request.Request(f"http://127.0.0.1:{checkout_port}/orders", method="POST")
        with urllib.request.urlopen(request, timeout=10) as reply:
            assert reply.status == 202
        time.sleep(LAG_S)
        run.services["summary"].proc.send_signal(signal.SIGUSR2)
        run.wait_for(lambda: run.deliveries() == Counter(EXPECTED_DELIVERIES))
        time.sleep(1.0)  # nothing more arrives: no unexpected redelivery
        run.drain()
        if run.deliveries() != Counter(EXPECTED_DELIVERIES):
            raise RuntimeError(f"unexpected deliveries: {run.deliveries()}")
        (depths,) = [e["depths"] for e in run.once("inspect") if e["ev"] == "depths"]
    finally:
        try:
            run.stop()
            time.sleep(0.5)  # the last export requests are answered before the receiver stops
        finally:
            capture.terminate()
            capture.wait(timeout=10)
    return run.log, broker, depths


def derive_truth(
    log: list[Event], broker: dict[str, Any], depths: dict[str, int]
) -> dict[str, Any]:
    """The truth from what the services did and the broker showed."""
    publishes = [e for e in log if e["ev"] == "publish"]
    deliveries = sorted((e for e in log if e["ev"] == "delivery"), key=lambda e: e["start"])
    messages: dict[str, dict[str, Any]] = {}
    for event in publishes:
        entry = messages.setdefault(
            event["message"],
            {
                "producer_service": service_name(event["service"]),
                "destination": event["exchange"],
                "publishes": 0,
                "broker_ids": [],
            },
        )
        entry["publishes"] += 1
        if event["message_id"] not in entry["broker_ids"]:
            entry["broker_ids"].append(event["message_id"])

    by_branch: dict[tuple[str, str], list[Event]] = defaultdict(list)
    for event in deliveries:
        by_branch[(event["message"], event["service"])].append(event)
    branches = []
    for (message, role), events in by_branch.items():
        outcomes = [e["outcome"] for e in events]
        # Processed again after a success: the broker handing the same copy back
        # (redelivered). A second copy of a duplicate publish arrives fresh: another
        # publish, not a duplicate delivery.
        later = events[outcomes.index("succeeded") + 1 :] if "succeeded" in outcomes else []
        after_success = [e for e in later if e["redelivered"]]
        errors = sorted({e["error"] for e in events if "error" in e})
        branch: dict[str, Any] = {
            "message": message,
            "consumer_service": service_name(role),
            "consumer": events[0]["queue"],
            "attempts": outcomes,
            "status": outcomes[-1],
            "duplicate_deliveries": len(after_success),
        }
        if errors:
            (branch["error"],) = errors
        branch["delivered_via"] = [e["exchange"] for e in events]
        branch["redelivered"] = [e["redelivered"] for e in events]
        branches.append(branch)

    consumed = {e["message"] for e in deliveries}
    unconsumed = sorted(m for m in messages if m not in consumed)
    # The broker still holds every unconsumed message, and nothing else.
    waiting = {UNCONSUMED_QUEUES[label]: messages[label]["publishes"] for label in unconsumed}
    assert {q: n for q, n in depths.items() if n} == waiting, depths

    placed = next(e["t"] for e in publishes if e["message"] == "order.placed")
    first_start = {
        role: events[0]["start"]
        for (message, role), events in by_branch.items()
        if message == "order.placed"
    }
    summary_wait = first_start["summary"] - placed
    sibling_wait = max(t - placed for role, t in first_start.items() if role != "summary")
    assert summary_wait >= LAG_AT_LEAST_MS and summary_wait - sibling_wait >= LAG_AT_LEAST_MS, (
        summary_wait,
        sibling_wait,
    )
    last = max(deliveries, key=lambda e: e["end"])

    truth = {
        "scenario": "node-amqplib",
        "description": (
            "An order workflow of eight Node.js services over RabbitMQ with the stock amqplib "
            "instrumentation: checkout's order.placed fans out to payment (retried twice through "
            "a dead-letter exchange and a TTL retry queue), inventory (retried once by nack with "
            "requeue) and a lagging summary; shipping processes payment.captured again after a "
            "lost ack, invoice.requested is published twice with one message id, the warehouse "
            "publishes stock.audited without trace context (audit starts a new trace), and "
            "report.requested waits in a queue nobody consumes."
        ),
        "instrumentation": {"language": "javascript", "packages": installed_versions()},
        "broker": {"kind": "rabbitmq", "version": broker["version"]},
        "retry_pattern": "dead-letter-ttl",
        "handled_inside_consumer_span": True,
        "messages": messages,
        "branches": sorted(branches, key=lambda b: (b["message"], b["consumer_service"])),
        "duplicate_publishes": sorted(m for m, v in messages.items() if v["publishes"] > 1),
        "islands": [{"message": "stock.audited", "consumer_service": service_name("audit")}],
        "unconsumed": unconsumed,
        "lagging": [
            {
                "message": "order.placed",
                "consumer_service": service_name("summary"),
                "wait_ms_at_least": LAG_AT_LEAST_MS,
            }
        ],
        "critical_path_ends_with": {
            "message": last["message"],
            "consumer_service": service_name(last["service"]),
        },
    }
    check_coverage(truth)
    return truth


def check_coverage(truth: dict[str, Any]) -> None:
    """Every behaviour the corpus promises happened in this run."""
    branches = truth["branches"]
    consumers_of = Counter(b["message"] for b in branches)
    assert consumers_of["order.placed"] >= 2, "fan-out"
    assert any(b["attempts"][:2] == ["failed", "failed"] for b in branches), "retries"
    redelivered = [b for b in branches if b["message"] not in truth["duplicate_publishes"]]
    assert any(b["duplicate_deliveries"] > 0 for b in redelivered), "duplicate delivery"
    assert truth["duplicate_publishes"] and truth["unconsumed"] and truth["islands"]


def main() -> None:
    spans = HERE / "spans.jsonl"
    log, broker, depths = run_scenario(spans)
    truth = derive_truth(log, broker, depths)
    (HERE / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    size = spans.stat().st_size
    assert size < 300_000, f"spans.jsonl is {size} bytes"
    print(f"wrote {spans} ({size} bytes) and truth.json: {len(truth['branches'])} branches")


if __name__ == "__main__":
    main()
