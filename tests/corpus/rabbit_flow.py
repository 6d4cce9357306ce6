"""The seed's order workflow over a real RabbitMQ, for the corpus's aio-pika and pika scenarios.

One coordinator (``run``) declares the topology, starts every service as a process of
its own (its own ``service.name``, the stock instrumentation, the stock OTLP/HTTP
exporter pointed at ``capture.Receiver``), places one order, waits until every
consumer has reached its final state, then writes ``spans.jsonl`` and ``truth.json``.
The truth comes from the services' journals (what each handler did with each
delivery, and what the broker handed it: ``redelivered``, ``x-delivery-count``,
``x-death``, trace headers) and from the broker after the run (queue depths, the parked
message): never from tracebraid.

::

    checkout  POST /orders ─▶ order.placed (orders, fanout)
    ├─▶ payment ─▶ payment.authorized (payments) ─▶ loyalty   ack lost once: redelivered
    │          └─▶ invoice.requested ×2, one message_id (invoices) ─▶ billing
    ├─▶ inventory ─▶ inventory.reserved (inventory-events) ─▶ warehouse (webhook):
    │                 times out twice, succeeds on the third delivery
    ├─▶ summary   starts consuming 500 ms late ─▶ report.requested (reports): no consumer
    └─▶ crm       fails on every delivery until the retry pattern gives up
    checkout ─▶ audit.recorded (audit-inbox) ─▶ audit-relay (no OpenTelemetry: forwards
                body + message_id, drops the headers) ─▶ audit: a new trace

The retry pattern is ``requeue`` (nack with requeue; warehouse and crm are quorum queues,
so the broker counts deliveries in ``x-delivery-count``, and crm's ``x-delivery-limit``
of 2 makes the broker drop it after its third delivery) or ``dead-letter-ttl`` (reject
without requeue into a dead-letter exchange; a TTL retry queue dead-letters it back
through another exchange, so the delivering exchange changes between attempts; the third
failure is published to a parking queue). The client adapters live in ``rabbit_aio``
and ``rabbit_pika``; each scenario's ``make.py`` calls ``main``.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

HERE = Path(__file__).resolve().parent
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
Client = Literal["aio-pika", "pika"]
Pattern = Literal["requeue", "dead-letter-ttl"]

CORRELATION_ID = "order_441"
SUMMARY_HOLD_S = 0.5  # the lagging consumer starts consuming this long after the publish
LAG_AT_LEAST_MS = 400
REQUEUE_BACKOFF_S = 0.2  # requeue pattern: the handler waits this long before its nack
RETRY_TTL_MS = 300  # dead-letter pattern: the retry queue's x-message-ttl
MAX_ATTEMPTS = 3  # dead-letter pattern: the third failure is parked
CRM_DELIVERY_LIMIT = 2  # requeue pattern: quorum x-delivery-limit, so 3 deliveries
SETTLE_S = 0.6  # after the expected final states, wait this long for stray redeliveries
CRITICAL_MARGIN_MS = 100
PARKED = ".parked"  # label suffix of the copy a failing consumer publishes to the parking queue


@dataclass(frozen=True, slots=True)
class Publish:
    """One message a service publishes (``copies`` > 1: the same message_id again)."""

    label: str
    exchange: str
    message_id: str
    copies: int = 1


@dataclass(frozen=True, slots=True)
class Plan:
    """What one service does with each delivery of its queue."""

    service: str
    queue: str
    work_s: float
    publishes: tuple[Publish, ...] = ()
    fails_first: int = 0  # the first N deliveries raise ``error``; -1: every delivery
    error: str = ""
    ack_lost_first: bool = False  # the first delivery is processed, then the channel closes
    starts_late: bool = False
    relay_to: str = ""  # an uninstrumented forwarder: republish body + message_id only

    def fails(self, delivery_number: int) -> bool:
        """Whether the handler raises on its ``delivery_number``-th delivery (from 1)."""
        return self.fails_first < 0 or delivery_number <= self.fails_first


CHECKOUT = (
    Publish("order.placed", "orders", "order-441"),
    Publish("audit.recorded", "audit-inbox", "audit-441"),
)
PLANS = {
    plan.service: plan
    for plan in (
        Plan(
            "payment",
            "payment",
            0.04,
            (
                Publish("payment.authorized", "payments", "payment-441"),
                Publish("invoice.requested", "invoices", "invoice-441", copies=2),
            ),
        ),
        Plan(
            "inventory",
            "inventory",
            0.03,
            (Publish("inventory.reserved", "inventory-events", "inventory-441"),),
        ),
        Plan(
            "summary",
            "summary",
            0.02,
            (Publish("report.requested", "reports", "report-441"),),
            starts_late=True,
        ),
        Plan("crm", "crm", 0.03, fails_first=-1, error="ConnectionError"),
        Plan("warehouse", "warehouse", 0.25, fails_first=2, error="TimeoutError"),
        Plan("loyalty", "loyalty", 0.02, ack_lost_first=True),
        Plan("billing", "billing", 0.02),
        Plan("audit", "audit", 0.02),
        Plan("audit-relay", "audit-relay", 0.0, relay_to="audit"),
    )
}
# exchange (fanout) -> the queues bound to it
BINDINGS = {
    "orders": ("payment", "inventory", "summary", "crm"),
    "payments": ("loyalty",),
    "invoices": ("billing",),
    "inventory-events": ("warehouse",),
    "audit-inbox": ("audit-relay",),
    "audit": ("audit",),
    "reports": ("reports",),
}
RETRIED = ("warehouse", "crm")  # the queues the retry pattern is set up on


@dataclass(frozen=True, slots=True)
class Names:
    """Broker names of one scenario: ``corpus-<scenario>.<name>``, unique per scenario."""

    scenario: str

    def __call__(self, name: str) -> str:
        return f"corpus-{self.scenario}.{name}"


# ---- topology (the coordinator's own, uninstrumented, pika connection) -------------


def _connection() -> Any:
    import pika

    params = pika.URLParameters(AMQP_URL)
    return pika.BlockingConnection(params)


def _queue_arguments(queue: str, pattern: Pattern, names: Names) -> dict[str, Any]:
    if queue not in RETRIED:
        return {}
    if pattern == "requeue":
        arguments: dict[str, Any] = {"x-queue-type": "quorum"}
        if queue == "crm":
            arguments["x-delivery-limit"] = CRM_DELIVERY_LIMIT
        return arguments
    return {"x-dead-letter-exchange": names("retry"), "x-dead-letter-routing-key": queue}


def declare(names: Names, pattern: Pattern) -> str:
    """Declare the scenario's exchanges and queues (after removing leftovers); the version."""
    teardown(names)
    connection = _connection()
    version = connection._impl.server_properties.get("version", "")
    channel = connection.channel()
    for exchange, queues in BINDINGS.items():
        channel.exchange_declare(names(exchange), "fanout")
        for queue in queues:
            durable = pattern == "requeue" and queue in RETRIED  # quorum queues are durable
            channel.queue_declare(
                names(queue), durable=durable, arguments=_queue_arguments(queue, pattern, names)
            )
            channel.queue_bind(names(queue), names(exchange))
    if pattern == "dead-letter-ttl":
        channel.exchange_declare(names("retry"), "direct")
        channel.exchange_declare(names("requeue"), "direct")
        channel.exchange_declare(names("parking"), "fanout")
        channel.queue_declare(names("parking"))
        channel.queue_bind(names("parking"), names("parking"))
        for queue in RETRIED:
            retry_queue = names(f"{queue}.retry")
            channel.queue_declare(
                retry_queue,
                arguments={
                    "x-message-ttl": RETRY_TTL_MS,
                    "x-dead-letter-exchange": names("requeue"),
                    "x-dead-letter-routing-key": queue,
                },
            )
            channel.queue_bind(retry_queue, names("retry"), routing_key=queue)
            channel.queue_bind(names(queue), names("requeue"), routing_key=queue)
    connection.close()
    return str(version)


def _all_names(names: Names) -> tuple[list[str], list[str]]:
    exchanges = [*BINDINGS, "retry", "requeue", "parking"]
    queues = {q for qs in BINDINGS.values() for q in qs} | {"parking"}
    queues |= {f"{q}.retry" for q in RETRIED}
    return [names(e) for e in exchanges], [names(q) for q in sorted(queues)]


def teardown(names: Names) -> None:
    """Delete every exchange and queue the scenario may have declared."""
    connection = _connection()
    channel = connection.channel()
    exchanges, queues = _all_names(names)
    for queue in queues:
        channel.queue_delete(queue)
    for exchange in exchanges:
        channel.exchange_delete(exchange)
    connection.close()


@dataclass(frozen=True, slots=True)
class Leftover:
    """A message still in a queue after the run, as the broker showed it."""

    queue: str
    label: str  # the AMQP type property the producer set
    message_id: str
    x_death: tuple[tuple[str, str, int], ...]  # (queue, reason, count)


def leftovers(names: Names, queues: Iterable[str]) -> list[Leftover]:
    """The messages left in ``queues`` (read with basic_get, then requeued)."""
    connection = _connection()
    channel = connection.channel()
    found = []
    for queue in queues:
        depth = channel.queue_declare(names(queue), passive=True).method.message_count
        for _ in range(depth):
            method, properties, _body = channel.basic_get(names(queue))
            if method is None:
                break
            label = str(properties.type) + (PARKED if queue == "parking" else "")
            headers = properties.headers or {}
            found.append(Leftover(queue, label, str(properties.message_id), x_death_of(headers)))
    connection.close()  # unacked basic_gets go back to their queues
    return found


def x_death_of(headers: Mapping[str, Any]) -> tuple[tuple[str, str, int], ...]:
    """The ``x-death`` header as (queue, reason, count) triples, whatever the client decoded."""

    def text(value: Any) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    return tuple(
        (text(entry.get("queue")), text(entry.get("reason")), int(entry.get("count", 0)))
        for entry in headers.get("x-death") or ()
    )


# ---- journals: what each service did, one JSON line per fact --------------------


class Journal:
    """Appends one service's facts to ``<run>/journal-<service>.jsonl``."""

    def __init__(self, run: Path, service: str) -> None:
        self.path = run / f"journal-{service}.jsonl"
        self.service = service

    def write(self, **record: Any) -> None:
        record["service"] = self.service
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record, sort_keys=True) + "\n")

    def published(self, publish: Publish, exchange: str, traced: bool) -> None:
        self.write(
            kind="publish",
            label=publish.label,
            exchange=exchange,
            message_id=publish.message_id,
            time_ns=time.time_ns(),
            traced=traced,
        )


def read_journals(run: Path) -> list[dict[str, Any]]:
    records = []
    for path in sorted(run.glob("journal-*.jsonl")):
        records.extend(json.loads(line) for line in path.read_text().splitlines() if line)
    return records


@dataclass(slots=True)
class Delivery:
    """What the broker handed a consumer, and (once handled) what its handler did."""

    label: str  # the AMQP type property
    message_id: str
    exchange: str
    routing_key: str
    redelivered: bool
    headers: Mapping[str, Any]
    start_ns: int = field(default_factory=time.time_ns)

    def record(self, journal: Journal, plan: Plan, outcome: str, error: str = "") -> None:
        """Journal this delivery with ``outcome`` (succeeded / failed / parked-after-failure)."""
        count = self.headers.get("x-delivery-count")
        journal.write(
            kind="delivery",
            label=self.label,
            queue=plan.queue,
            message_id=self.message_id,
            exchange=self.exchange,
            routing_key=self.routing_key,
            redelivered=self.redelivered,
            delivery_count=None if count is None else int(count),
            x_death=[list(d) for d in x_death_of(self.headers)],
            had_traceparent="traceparent" in self.headers,
            outcome=outcome,
            error=error,
            start_ns=self.start_ns,
            end_ns=time.time_ns(),
            instrumented=not plan.relay_to,
        )

    def rejected_before(self, queue: str) -> int:
        """How often the broker saw this message rejected from ``queue`` (x-death)."""
        return sum(
            count
            for q, reason, count in x_death_of(self.headers)
            if q == queue and reason == "rejected"
        )


# ---- service processes --------------------------------------------------------------


def telemetry(service: str, endpoint: str) -> Any:
    """A TracerProvider for ``service`` exporting through the stock OTLP/HTTP exporter."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=200))
    return provider


@dataclass(frozen=True, slots=True)
class ServiceArgs:
    """What a service process is told on its command line."""

    service: str
    run: Path
    scenario: str
    pattern: Pattern
    endpoint: str

    @property
    def names(self) -> Names:
        return Names(self.scenario)

    @property
    def stop_file(self) -> Path:
        return self.run / "stop"

    @property
    def go_file(self) -> Path:
        return self.run / f"go-{self.service}"

    def ready(self) -> None:
        (self.run / f"ready-{self.service}").touch()


def _serve(client: Client, argv: Sequence[str]) -> None:
    # a handler that raises is the scenario's point: keep the clients' tracebacks quiet
    logging.basicConfig(level=logging.CRITICAL)
    service, run, scenario, pattern, endpoint = argv
    args = ServiceArgs(service, Path(run), scenario, pattern, endpoint)  # type: ignore[arg-type]
    if client == "aio-pika":
        import rabbit_aio

        rabbit_aio.serve(args)
    else:
        import rabbit_pika

        rabbit_pika.serve(args)


# ---- the coordinator ----------------------------------------------------------------


def _expected_done(records: list[dict[str, Any]], pattern: Pattern) -> bool:
    deliveries: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if r["kind"] == "delivery":
            deliveries.setdefault(r["service"], []).append(r)
    want = {
        "payment": 1,
        "inventory": 1,
        "summary": 1,
        "billing": 2,
        "loyalty": 2,
        "audit": 1,
        "warehouse": 3,
        "crm": MAX_ATTEMPTS if pattern == "dead-letter-ttl" else CRM_DELIVERY_LIMIT + 1,
    }
    return all(len(deliveries.get(s, [])) >= n for s, n in want.items())


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"scenario stuck: {what}")
        time.sleep(0.02)


def run(folder: Path, client: Client, pattern: Pattern) -> None:
    """Run the scenario and (re)write ``folder``'s spans.jsonl and truth.json."""
    sys.path.insert(0, str(HERE))
    from capture import Receiver

    scenario = folder.name
    names = Names(scenario)
    spans_path = folder / "spans.jsonl"
    spans_path.unlink(missing_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix=f"{scenario}-"))
    broker_version = declare(names, pattern)
    receiver = Receiver(spans_path).start()
    script = str(folder / "make.py")
    env = {**os.environ, "PYTHONPATH": str(HERE), "OTEL_SDK_DISABLED": "false"}

    def spawn(service: str) -> subprocess.Popen[bytes]:
        argv = [sys.executable, script, "serve", service, str(run_dir), scenario, pattern]
        return subprocess.Popen([*argv, receiver.endpoint], env=env)

    processes = [spawn(service) for service in PLANS]
    try:
        _wait(lambda: all((run_dir / f"ready-{s}").exists() for s in PLANS), 60, "services ready")
        checkout = spawn("checkout")
        processes.append(checkout)
        _wait(lambda: checkout.poll() is not None, 30, "checkout published")
        if checkout.returncode != 0:
            raise RuntimeError("checkout failed")
        placed = next(
            r["time_ns"]
            for r in read_journals(run_dir)
            if r["kind"] == "publish" and r["label"] == "order.placed"
        )
        time.sleep(max(0.0, placed / 1e9 + SUMMARY_HOLD_S - time.time()))
        (run_dir / "go-summary").touch()
        _wait(lambda: _expected_done(read_journals(run_dir), pattern), 60, "final states")
        time.sleep(SETTLE_S)
        (run_dir / "stop").touch()
        for process in processes:
            if process.wait(timeout=30) != 0:
                raise RuntimeError(f"a service exited with {process.returncode}")
        time.sleep(0.3)
        parking = ["parking"] if pattern == "dead-letter-ttl" else []
        left = leftovers(names, ["reports", *RETRIED, *parking])
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        receiver.stop()
        teardown(names)
    records = read_journals(run_dir)
    shutil.rmtree(run_dir)
    _write_journal(folder / "journal.jsonl", records, left)
    truth = derive_truth(scenario, client, pattern, broker_version, records, left)
    (folder / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    print(f"{scenario}: {spans_path.stat().st_size} bytes of spans, truth written")


# ---- the truth, from the journals and the broker ------------------------------------


def _write_journal(path: Path, records: list[dict[str, Any]], left: list[Leftover]) -> None:
    """The evidence truth.json is derived from: the services' journals merged in time order,
    then the messages the broker still held after the run (``kind: leftover``)."""
    ordered = sorted(records, key=lambda r: r.get("start_ns", r.get("time_ns", 0)))
    ordered += [
        {
            "kind": "leftover",
            "queue": leftover.queue,
            "label": leftover.label,
            "message_id": leftover.message_id,
            "x_death": [list(d) for d in leftover.x_death],
        }
        for leftover in left
    ]
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in ordered))


def _packages(client: Client) -> dict[str, str]:
    names = [
        client,
        f"opentelemetry-instrumentation-{client}",
        "opentelemetry-instrumentation",
        "opentelemetry-sdk",
        "opentelemetry-exporter-otlp-proto-http",
    ]
    return {name: importlib.metadata.version(name) for name in names}


def derive_truth(
    scenario: str,
    client: Client,
    pattern: Pattern,
    broker_version: str,
    records: list[dict[str, Any]],
    left: list[Leftover],
) -> dict[str, Any]:
    """truth.json from what the services journaled and what the broker still held."""
    names = Names(scenario)
    publishes = [r for r in records if r["kind"] == "publish" and r["traced"]]
    deliveries = sorted(
        (r for r in records if r["kind"] == "delivery" and r["instrumented"]),
        key=lambda r: r["start_ns"],
    )

    messages: dict[str, dict[str, Any]] = {}
    published_at: dict[str, int] = {}
    for p in publishes:
        entry = messages.setdefault(
            p["label"],
            {
                "producer_service": p["service"],
                "destination": p["exchange"],
                "publishes": 0,
                "broker_ids": [],
            },
        )
        entry["publishes"] += 1
        published_at.setdefault(p["label"], p["time_ns"])
    # broker_ids: the message_id as a consumer received it, or as it sat in its queue
    seen = [(d["label"], d["message_id"]) for d in records if d["kind"] == "delivery"]
    seen += [(leftover.label, leftover.message_id) for leftover in left]
    for label, message_id in seen:
        if message_id not in messages[label]["broker_ids"]:
            messages[label]["broker_ids"].append(message_id)

    branches = []
    by_branch: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for d in deliveries:
        by_branch.setdefault((d["label"], d["service"]), []).append(d)
    for (label, service), attempts in by_branch.items():
        outcomes = ["succeeded" if a["outcome"] == "succeeded" else "failed" for a in attempts]
        after_success = 0
        if "succeeded" in outcomes:
            after_success = len(outcomes) - outcomes.index("succeeded") - 1
        branch: dict[str, Any] = {
            "message": label,
            "consumer_service": service,
            "consumer": names(PLANS[service].queue),
            "attempts": outcomes,
            "status": outcomes[-1],
            "duplicate_deliveries": after_success,
        }
        errors = sorted({a["error"] for a in attempts if a["error"]})
        if errors:
            (branch["error"],) = errors  # one failure mode per consumer in this flow
        branches.append(branch)

    lagging = []
    for (label, service), attempts in by_branch.items():
        if not PLANS[service].starts_late:
            continue
        waited_ms = (attempts[0]["start_ns"] - published_at[label]) / 1e6
        if waited_ms < LAG_AT_LEAST_MS:
            raise RuntimeError(f"{service} lagged only {waited_ms:.0f} ms")
        lagging.append(
            {"message": label, "consumer_service": service, "wait_ms_at_least": LAG_AT_LEAST_MS}
        )
    # the business work that finished last, by a margin no scheduling jitter can reverse
    last = max(deliveries, key=lambda d: d["end_ns"])
    runner_up = max(
        (d for d in deliveries if (d["label"], d["service"]) != (last["label"], last["service"])),
        key=lambda d: d["end_ns"],
    )
    if (last["end_ns"] - runner_up["end_ns"]) / 1e6 < CRITICAL_MARGIN_MS:
        raise RuntimeError(f"{last['service']} and {runner_up['service']} finished together")
    branches.sort(key=lambda b: (b["message"], b["consumer_service"]))
    return {
        "scenario": scenario,
        "description": DESCRIPTIONS[pattern],
        "instrumentation": {"language": "python", "packages": _packages(client)},
        "broker": {"kind": "rabbitmq", "version": broker_version},
        "retry_pattern": pattern,
        "handled_inside_consumer_span": True,
        "messages": dict(sorted(messages.items())),
        "branches": branches,
        "duplicate_publishes": sorted(k for k, m in messages.items() if m["publishes"] > 1),
        "islands": [
            {"message": d["label"], "consumer_service": d["service"]}
            for d in deliveries
            if not d["had_traceparent"]
        ],
        "unconsumed": sorted(set(messages) - {label for label, _ in by_branch}),
        "lagging": lagging,
        "critical_path_ends_with": {"message": last["label"], "consumer_service": last["service"]},
    }


DESCRIPTIONS: dict[Pattern, str] = {
    "requeue": (
        "One order fans out from checkout to payment, inventory, summary (500 ms late) and crm; "
        "the warehouse webhook nacks with requeue twice before succeeding, crm fails until its "
        "quorum queue's delivery limit drops it, loyalty's ack is lost once, invoice.requested "
        "is published twice with one message_id and report.requested has no consumer. "
        "audit.recorded reaches the audit service through an uninstrumented relay that drops "
        "the trace headers, so audit starts a new trace."
    ),
    "dead-letter-ttl": (
        "One order fans out from checkout to payment, inventory, summary (500 ms late) and crm; "
        "failed deliveries are rejected into a dead-letter exchange whose 300 ms TTL retry "
        "queue dead-letters them back through another exchange, so the warehouse webhook "
        "succeeds on its third delivery and crm's third failure is parked; loyalty's ack is "
        "lost once, invoice.requested is published twice with one message_id and "
        "report.requested has no consumer. audit.recorded reaches the audit service through an "
        "uninstrumented relay that drops the trace headers, so audit starts a new trace."
    ),
}


def main(folder: Path, client: Client, pattern: Pattern) -> None:
    """``make.py`` with no arguments runs the scenario; ``make.py serve ...`` is a service."""
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        sys.path.insert(0, str(HERE))
        _serve(client, sys.argv[2:])
    else:
        run(folder, client, pattern)
