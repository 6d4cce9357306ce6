"""Regenerate the Celery-over-Redis corpus: run the order workflow, keep spans and truth.

Run with the scenario's pinned stack (``requirements.txt``), Redis on 127.0.0.1:6379::

    python -m venv /tmp/celery-corpus && /tmp/celery-corpus/bin/pip install -r requirements.txt
    /tmp/celery-corpus/bin/python tests/corpus/celery-redis/make.py [--span-links --out DIR]

It flushes the Redis database it is given (``--redis``, default DB 7), starts one Celery
worker per service (``shop.py``), runs checkout, waits for the workflow to finish, stops
the workers and writes ``spans.jsonl`` (what the stock exporters sent to
``capture.Receiver``) and ``truth.json``. The truth comes from the scenario's own record
of every task run (``corpus:runs``, written from Celery's signals), the task ids the
publishes returned, Celery's result backend and the broker's queues: never from the spans.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import redis  # noqa: E402
from capture import Receiver  # noqa: E402

LAG_S = 0.6  # the summary worker starts this long after order_placed was published
LAG_TRUTH_MS = 400
PACKAGES = (
    "celery",
    "kombu",
    "redis",
    "opentelemetry-instrumentation-celery",
    "opentelemetry-sdk",
    "opentelemetry-exporter-otlp-proto-http",
)
# (message label, producer service, destination as the producer addressed it, consumers)
MESSAGES: list[tuple[str, str, str, list[tuple[str, str]]]] = [
    (
        "order_placed",
        "checkout",
        "order.placed",
        [("payment", "cel-payment"), ("warehouse", "cel-warehouse"), ("summary", "cel-summary")],
    ),
    ("charge_card", "payment", "cel-charges", [("payment", "cel-charges")]),
    ("reserve_inventory", "warehouse", "cel-inventory", [("warehouse", "cel-inventory")]),
    ("send_invoice", "payment", "cel-billing", [("billing", "cel-billing")]),
    ("send_receipt", "checkout", "cel-billing", [("billing", "cel-billing")]),
    ("record_audit", "checkout", "cel-audit", [("audit", "cel-audit")]),
    ("generate_report", "checkout", "cel-reports", []),
]


class Workers:
    """The Celery worker processes this run started, each in its own process group."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, service: str, queues: str) -> None:
        log = (self.logs / f"{service}.log").open("wb")
        command = [
            sys.executable, "-m", "celery", "-A", "shop", "worker",
            "-Q", queues, "-c", "1", "-P", "prefork", "-n", f"{service}@corpus",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO",
        ]  # fmt: skip
        self.procs[service] = subprocess.Popen(
            command,
            cwd=HERE,
            env={**self.env, "CORPUS_SERVICE": service},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, service: str, timeout: float = 60) -> None:
        log = self.logs / f"{service}.log"
        _wait(lambda: b" ready." in log.read_bytes(), timeout, f"{service} worker ready", log)

    def stop(self) -> None:
        """Warm shutdown of every worker started here, then a kill for any left."""
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _wait(done: Callable[[], bool], timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log else ""
            raise SystemExit(f"timed out waiting for {what}\n{tail}")
        time.sleep(0.05)


def run(out: Path, span_links: bool, redis_url: str) -> None:
    """Run the scenario once and write ``out/spans.jsonl`` and ``out/truth.json``."""
    os.environ["CORPUS_REDIS"] = redis_url
    import shop  # the scenario's app; imported here so --help needs no broker

    db = redis.Redis.from_url(redis_url)
    db.flushdb()
    with shop.app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in shop.QUEUES:  # the broker's topology, as a deployment declares it
            queue(channel).declare()

    spans_path = out / "spans.jsonl"
    spans_path.unlink(missing_ok=True)
    receiver = Receiver(spans_path).start()
    env = {
        **os.environ,
        "CORPUS_REDIS": redis_url,
        "CORPUS_OTLP": receiver.endpoint,
        "CORPUS_SPAN_LINKS": "1" if span_links else "0",
        "PYTHONPATH": str(HERE),
    }
    logs = Path(tempfile.mkdtemp(prefix="corpus-celery-"))
    workers = Workers(env, logs)
    try:
        for service in ("payment", "warehouse", "billing", "audit"):
            workers.start(service, shop.WORKER_QUEUES[service])
        for service in ("payment", "warehouse", "billing", "audit"):
            workers.wait_ready(service)
        subprocess.run(
            [sys.executable, str(HERE / "shop.py"), "order-1001"],
            env={**env, "CORPUS_SERVICE": "checkout"},
            check=True,
        )
        published = json.loads(db.get("corpus:published") or b"{}")
        time.sleep(max(0.0, published["order_placed"]["at"] + LAG_S - time.time()))
        workers.start("summary", shop.WORKER_QUEUES["summary"])

        def finished() -> bool:
            runs = _runs(db)
            return (
                any(r["task"] == "send_invoice" and r["state"] == "FAILURE" for r in runs)
                and sum(r["task"] == "reserve_inventory" for r in runs) == 2
                and sum(r["task"] == "send_receipt" for r in runs) == 2
                and any(r["task"] == "record_audit" for r in runs)
                and any(r["service"] == "summary" for r in runs)
            )

        _wait(finished, 90, "the workflow to finish", logs / "payment.log")
        time.sleep(0.5)
    finally:
        workers.stop()
        time.sleep(0.3)
        receiver.stop()

    truth, backend = _truth(db, shop, span_links)
    (out / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    size = spans_path.stat().st_size
    print(f"wrote {spans_path} ({size} bytes) and truth.json; worker logs in {logs}")
    print("result backend states:", json.dumps(backend, indent=1))
    if size >= 300_000:
        raise SystemExit(f"{spans_path} is {size} bytes, over the corpus's 300 KB")


def _runs(db: redis.Redis) -> list[dict[str, Any]]:
    events = [json.loads(raw) for raw in db.lrange("corpus:runs", 0, -1)]
    return [e for e in events if e["event"] == "run"]


def _truth(db: redis.Redis, shop: Any, span_links: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """truth.json from what the scenario recorded and what the broker and backend show."""
    runs = _runs(db)
    published = json.loads(db.get("corpus:published") or b"{}")
    killed = [
        json.loads(raw)
        for raw in db.lrange("corpus:runs", 0, -1)
        if json.loads(raw)["event"] == "pool_process_killed"
    ]
    assert len(killed) == 1, killed

    messages: dict[str, Any] = {}
    branches: list[dict[str, Any]] = []
    for label, producer, destination, consumers in MESSAGES:
        publishes = published.get(label)
        entries = publishes if isinstance(publishes, list) else [publishes] if publishes else []
        ran = {r["task_id"] for r in runs if r["task"] == label}
        ids = sorted({p["task_id"] for p in entries} | ran)
        assert len(ids) == 1, (label, ids)
        messages[label] = {
            "producer_service": producer,
            "destination": destination,
            "publishes": max(1, len(entries)),
            "broker_ids": ids,
        }
        for service, queue in consumers:
            mine = sorted(
                (r for r in runs if r["task"] == label and r["service"] == service),
                key=lambda r: r["start"],
            )
            assert mine, (label, service)
            attempts = ["succeeded" if r["state"] == "SUCCESS" else "failed" for r in mine]
            first_success = attempts.index("succeeded") if "succeeded" in attempts else len(mine)
            branch: dict[str, Any] = {
                "message": label,
                "consumer_service": service,
                "consumer": queue,
                "attempts": attempts,
                "status": attempts[-1],
                # Processed again after a success because the broker delivered the same
                # message again (not because it was published twice).
                "duplicate_deliveries": sum(r["redelivered"] for r in mine[first_success + 1 :]),
            }
            errors = sorted({r["error"] for r in mine if r["error"]})
            if errors:
                branch["error"] = errors[0] if len(errors) == 1 else errors
            branches.append(branch)

    duplicate_publishes = [
        label for label, entry in published.items() if isinstance(entry, list) and len(entry) > 1
    ]
    unconsumed = [
        label
        for label, _, destination, consumers in MESSAGES
        if not consumers and db.llen(destination) == 1
    ]
    assert unconsumed == ["generate_report"], unconsumed

    summary_run = next(r for r in runs if r["service"] == "summary")
    wait_ms = (summary_run["start"] - published["order_placed"]["at"]) * 1000
    assert wait_ms >= LAG_TRUTH_MS + 100, wait_ms
    print(f"summary's first delivery started {wait_ms:.0f} ms after order_placed was published")

    last, runner_up = sorted(runs, key=lambda r: r["end"], reverse=True)[:2]
    margin_ms = (last["end"] - runner_up["end"]) * 1000
    print(f"last work: {last['task']}@{last['service']}, {margin_ms:.0f} ms after the next")
    assert margin_ms > 100 or (last["task"], last["service"]) == (
        runner_up["task"],
        runner_up["service"],
    )

    backend = {
        label: shop.app.AsyncResult(messages[label]["broker_ids"][0]).state for label in messages
    }
    for label, state in backend.items():
        # The result backend keeps the last run's state (ignore_result tasks and the
        # unconsumed report stay PENDING); it must agree with the scenario's own record.
        statuses = {b["status"] for b in branches if b["message"] == label}
        if state != "PENDING":
            assert state == ("FAILURE" if "failed" in statuses else "SUCCESS"), (label, state)
    mode = "links to" if span_links else "is a child of"
    truth = {
        "scenario": "celery-redis-span-links" if span_links else "celery-redis",
        "description": (
            "Checkout places one order as Celery tasks over Redis: order_placed is fanned "
            "out to payment, warehouse and a late-starting summary worker, and follow-up "
            "tasks charge the card (RETRY twice, then SUCCESS), send the invoice (RETRY, "
            "then FAILURE), reserve inventory (processed again after the pool process died "
            "before the ack), send a receipt published twice under one task id, record an "
            "audit entry without trace context, and request a report no worker reads. "
            f"Stock opentelemetry-instrumentation-celery with use_span_links={span_links}: "
            f"each worker's run span {mode} the apply_async span that published the task."
        ),
        "instrumentation": {
            "language": "python",
            "packages": {name: version(name) for name in PACKAGES},
        },
        "broker": {"kind": "redis", "version": db.info("server")["redis_version"]},
        "retry_pattern": "celery-retry",
        "handled_inside_consumer_span": True,
        "messages": messages,
        "branches": branches,
        "duplicate_publishes": duplicate_publishes,
        "islands": [{"message": "record_audit", "consumer_service": "audit"}],
        "unconsumed": unconsumed,
        "lagging": [
            {
                "message": "order_placed",
                "consumer_service": "summary",
                "wait_ms_at_least": LAG_TRUTH_MS,
            }
        ],
        "critical_path_ends_with": {"message": last["task"], "consumer_service": last["service"]},
    }
    return truth, backend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--span-links", action="store_true", help="use_span_links=True")
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/7")
    args = parser.parse_args()
    run(args.out.resolve(), args.span_links, args.redis)


if __name__ == "__main__":
    main()
