"""The order workflow of the Celery corpus: one Celery app, one process per service.

Every process imports this module; ``CORPUS_SERVICE`` says which service it is
(``checkout`` is the client that places the order, the others are Celery workers).
Tracing is the stock ``opentelemetry-instrumentation-celery``, set up per pool process
in ``worker_process_init`` as its documentation says, exporting with the stock OTLP/HTTP
exporter to the corpus receiver (``CORPUS_OTLP``). Nothing here knows tracebraid.

The scenario's own record of what happened (each task run's outcome, times, delivery)
goes to the Redis list ``corpus:runs``, written from Celery's signals; ``make.py``
builds ``truth.json`` from it and from the broker, never from the spans.

Tasks and where they run (publisher -> task -> queue -> service)::

    checkout  order_placed       exchange cel-orders, key order.placed: one message, 3 queues
                                   cel-payment   -> payment    sends charge_card (follow-up)
                                   cel-warehouse -> warehouse  sends reserve_inventory
                                   cel-summary   -> summary    worker starts late (lagging)
    payment   charge_card        cel-charges   -> payment    RETRY, RETRY, SUCCESS
    payment   send_invoice       cel-billing   -> billing    RETRY, FAILURE
    warehouse reserve_inventory  cel-inventory -> warehouse  acks_late; the pool process dies
                                                             after the first success, before
                                                             the ack: delivered again
    checkout  send_receipt       cel-billing   -> billing    published twice, one task id
    checkout  record_audit       cel-audit     -> audit      published without trace context
    checkout  generate_report    cel-reports                 no worker reads it
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

import redis
from celery import Celery, Task, signals
from celery.exceptions import Retry
from kombu import Exchange, Queue
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.propagate import get_global_textmap, set_global_textmap
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

REDIS_URL = os.environ.get("CORPUS_REDIS", "redis://127.0.0.1:6379/7")
SERVICE = os.environ.get("CORPUS_SERVICE", "checkout")
SPAN_LINKS = os.environ.get("CORPUS_SPAN_LINKS") == "1"
RUNS_KEY = "corpus:runs"  # the scenario's own record, one JSON object per task run
CHARGE_FAILURES = 2  # charge_card retries twice, then succeeds
INVOICE_MAX_RETRIES = 1  # send_invoice: RETRY once, then FAILURE for good
RETRY_COUNTDOWN_S = 2.5

ORDERS = Exchange("cel-orders", type="direct")


def _direct(name: str) -> Queue:
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


FAN_OUT = [
    Queue("cel-payment", ORDERS, routing_key="order.placed"),
    Queue("cel-warehouse", ORDERS, routing_key="order.placed"),
    Queue("cel-summary", ORDERS, routing_key="order.placed"),
]
QUEUES = [
    *FAN_OUT,
    *(
        _direct(n)
        for n in ("cel-charges", "cel-inventory", "cel-billing", "cel-audit", "cel-reports")
    ),
    _direct("cel-default"),  # Celery needs a default queue; every publish here names its own
]
WORKER_QUEUES = {
    "payment": "cel-payment,cel-charges",
    "warehouse": "cel-warehouse,cel-inventory",
    "summary": "cel-summary",
    "billing": "cel-billing",
    "audit": "cel-audit",
}

app = Celery("shop", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_queues=QUEUES,
    task_default_queue="cel-default",
    task_create_missing_queues=False,
    worker_prefetch_multiplier=1,
    result_extended=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
_redis = redis.Redis.from_url(REDIS_URL)


# -- tracing: stock instrumentation, one provider per process ---------------------------


def start_tracing() -> TracerProvider:
    """This process's provider (its own ``service.name``) and the stock instrumentation."""
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    # Each span is exported as it ends, so a pool process that is killed loses none.
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=os.environ["CORPUS_OTLP"] + "/v1/traces"))
    )
    trace.set_tracer_provider(provider)
    CeleryInstrumentor().instrument(tracer_provider=provider, use_span_links=SPAN_LINKS)
    return provider


@signals.worker_process_init.connect(weak=False)
def _init_pool_process(**_: Any) -> None:
    start_tracing()
    if SERVICE == "warehouse":
        # Connected after the instrumentation's receivers, so it runs after the run span
        # ended (and was exported).
        signals.task_postrun.connect(_die_before_ack_once, weak=False)
    _redis.set(f"corpus:ready:{SERVICE}:{os.getpid()}", 1)


def _die_before_ack_once(task: Task, task_id: str, state: str, **_: Any) -> None:
    """The pool process dies after reserve_inventory's first success, before the ack.

    The task body has finished and the run span has ended; the worker's main process
    never hears of the result, so with ``acks_late`` and ``reject_on_worker_lost`` it
    puts the message back on its queue and it is processed again.
    """
    first_success = (
        task.name == "reserve_inventory"
        and state == "SUCCESS"
        and _redis.set(f"corpus:crashed:{task_id}", 1, nx=True)
    )
    if first_success:
        _record_event("pool_process_killed", task=task.name, task_id=task_id)
        os.kill(os.getpid(), signal.SIGKILL)


# -- the scenario's own record of every run ---------------------------------------------


def _record_event(kind: str, **fields: Any) -> None:
    _redis.rpush(RUNS_KEY, json.dumps({"event": kind, "service": SERVICE, **fields}))


_started: dict[str, float] = {}


@signals.task_prerun.connect(weak=False)
def _note_start(task_id: str, **_: Any) -> None:
    _started[task_id] = time.time()


@signals.task_postrun.connect(weak=False)
def _note_outcome(task: Task, task_id: str, state: str, retval: Any, **_: Any) -> None:
    error = None
    if isinstance(retval, Retry):
        error = type(retval.exc).__name__ if retval.exc is not None else "Retry"
    elif isinstance(retval, BaseException):
        error = type(retval).__name__
    info = task.request.delivery_info or {}
    _record_event(
        "run",
        task=task.name,
        task_id=task_id,
        state=state,
        error=error,
        retries=task.request.retries,
        routing_key=info.get("routing_key"),
        exchange=info.get("exchange"),
        redelivered=bool(info.get("redelivered")),
        start=_started.pop(task_id, None),
        end=time.time(),
        pid=os.getpid(),
    )


# -- the tasks: one name, the body of the service that runs it --------------------------


@app.task(name="order_placed")
def order_placed(order: dict[str, Any]) -> str:
    """Fanned out to payment, warehouse and summary; each does its own part."""
    if SERVICE == "payment":
        charge_card.apply_async((order,), queue="cel-charges")
        return "charge requested"
    if SERVICE == "warehouse":
        reserve_inventory.apply_async((order,), queue="cel-inventory")
        return "reservation requested"
    if SERVICE == "summary":
        return f"summary of {order['id']} updated"
    raise RuntimeError(f"order_placed has no handler in {SERVICE}")


@app.task(name="charge_card", bind=True, max_retries=CHARGE_FAILURES + 1)
def charge_card(self: Task, order: dict[str, Any]) -> str:
    if self.request.retries < CHARGE_FAILURES:
        try:
            raise TimeoutError("card gateway timed out")
        except TimeoutError as exc:
            raise self.retry(exc=exc, countdown=RETRY_COUNTDOWN_S) from exc
    send_invoice.apply_async((order,), queue="cel-billing")
    return f"charged {order['total']}"


@app.task(name="send_invoice", bind=True, max_retries=INVOICE_MAX_RETRIES)
def send_invoice(self: Task, order: dict[str, Any]) -> str:
    try:
        raise ConnectionError("mail relay refused the connection")
    except ConnectionError as exc:
        # Past max_retries, retry() re-raises exc itself: the task fails for good.
        raise self.retry(exc=exc, countdown=RETRY_COUNTDOWN_S) from exc


@app.task(name="reserve_inventory", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def reserve_inventory(order: dict[str, Any]) -> str:
    # ignore_result: Celery >= 5.7 acks (does not requeue) a lost task whose SUCCESS is
    # already in the result backend; without a stored result the redelivery happens.
    return f"reserved {len(order['items'])} items"


@app.task(name="send_receipt")
def send_receipt(order: dict[str, Any]) -> str:
    return f"receipt for {order['id']} sent"


@app.task(name="record_audit")
def record_audit(order: dict[str, Any]) -> str:
    return f"audit of {order['id']} recorded"


@app.task(name="generate_report")
def generate_report(order: dict[str, Any]) -> str:
    return "never runs: no worker reads cel-reports"


# -- the client: checkout places one order ----------------------------------------------


def checkout(order_id: str) -> None:
    """Place one order: the publishes the workflow starts from, timed into Redis."""
    provider = start_tracing()
    tracer = trace.get_tracer("corpus.checkout")
    order = {"id": order_id, "total": "42.00", "items": ["sku-1", "sku-2"]}
    published: dict[str, Any] = {}
    # The HTTP request that places the order (stands for a web framework's server span).
    with tracer.start_as_current_span("POST /orders", kind=trace.SpanKind.SERVER):
        published["order_placed"] = _publish(
            order_placed, order, exchange="cel-orders", routing_key="order.placed", declare=FAN_OUT
        )
        receipt_id = f"receipt-{order_id}"
        # The same task id published twice (the client retried after a timeout).
        published["send_receipt"] = [
            _publish(send_receipt, order, queue="cel-billing", task_id=receipt_id),
            _publish(send_receipt, order, queue="cel-billing", task_id=receipt_id),
        ]
        # A publisher that injects no trace context (as with OTEL_PROPAGATORS=none):
        # the producer span is recorded, but the consumer starts a new trace.
        propagator = get_global_textmap()
        set_global_textmap(CompositePropagator([]))
        try:
            published["record_audit"] = _publish(record_audit, order, queue="cel-audit")
        finally:
            set_global_textmap(propagator)
        published["generate_report"] = _publish(generate_report, order, queue="cel-reports")
    provider.shutdown()
    _redis.set("corpus:published", json.dumps(published))


def _publish(task: Task, order: dict[str, Any], **options: Any) -> dict[str, Any]:
    at = time.time()
    result = task.apply_async((order,), **options)
    return {"task_id": result.id, "at": at}


if __name__ == "__main__":
    checkout(sys.argv[1])
