"""The seed's order flow as Celery tasks, instrumented with the stock Celery
instrumentation, ``tracebraid.instrument()`` and ``tracebraid.integrations.celery``.

One worker (prefork, four children) runs every task (as Celery deployments do);
checkout-api is another process that sends the first tasks. Each process exports its
spans to files as they end (``span_files.SpanFiles``)::

    python celery_order_service.py worker|checkout BROKER NAMESPACE SPANS_DIR PROPAGATOR LINKS

PROPAGATOR and LINKS are ``on`` or ``off`` (LINKS: the stock instrumentation's
``use_span_links``). The worker prints ``ready`` once it consumes, then ``done STEP
ORDER`` per business step that finished (``started`` for the stalled loyalty step,
``failed`` for a task out of retries). checkout-api places order 441 (the order flow)
and sends order 442's gift-card charge, which fails on every attempt, then exits.

The flow is ``tracebraid.demo.order_flow``'s: checkout sends ``authorize-payment`` and
``reserve-inventory``; payment sends ``project-order-summary`` (which lags) and
``award-loyalty-points`` (which stalls); inventory sends ``send-warehouse-webhook``,
whose warehouse call times out twice and succeeds on the third attempt, retried by
Celery (``self.retry``) after the flow's back-off.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from celery import Celery, Task, signals
from kombu import Exchange, Queue
from opentelemetry import trace
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from span_files import SpanFiles

import tracebraid
import tracebraid.integrations.celery
from tracebraid.demo.order_flow import STALLED_STEP, Timings

MODE, BROKER, NAMESPACE, SPANS_DIR, PROPAGATOR, LINKS = sys.argv[1:7]
SCALE = 0.1
TIMINGS = Timings().scaled(SCALE)
# Celery's retry countdowns at the seed's own scale: the stock instrumentation keys a
# run's span by task id, and a retry starting before the failed attempt's postrun would
# end one attempt's span early (docs/integrations.md, Celery).
BACKOFF = Timings().warehouse_backoff
STEPS = (
    "authorize-payment",
    "reserve-inventory",
    "project-order-summary",
    STALLED_STEP,
    "send-warehouse-webhook",
    "charge-gift-card",
)


def say(*words: object) -> None:
    # One write per line: the pool's threads print at once.
    sys.stdout.write(" ".join(map(str, words)) + "\n")
    sys.stdout.flush()


def queue(step: str) -> Queue:
    name = NAMESPACE + step
    # Gone a minute after its last consumer, its exchange with it (RabbitMQ); Redis
    # ignores both.
    exchange = Exchange(name, auto_delete=True)
    return Queue(name, exchange, routing_key=name, queue_arguments={"x-expires": 60_000})


app = Celery("orders", broker=BROKER)
app.conf.update(
    task_queues=[queue(step) for step in STEPS],
    task_routes={
        step: {"queue": NAMESPACE + step, "routing_key": NAMESPACE + step} for step in STEPS
    },
    task_ignore_result=True,
    worker_redirect_stdouts=False,
    worker_hijack_root_logger=False,
    worker_enable_remote_control=False,
    worker_send_task_events=False,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
)

# -- the service's start-up: its provider, then tracebraid beside the stock instrumentation --
provider = TracerProvider(
    resource=Resource.create(
        {"service.name": "orders-worker" if MODE == "worker" else "checkout-api"}
    )
)
provider.add_span_processor(SimpleSpanProcessor(SpanFiles(Path(SPANS_DIR))))
trace.set_tracer_provider(provider)
tracebraid.instrument(propagator=PROPAGATOR == "on")
CeleryInstrumentor().instrument(use_span_links=LINKS == "on")
tracebraid.integrations.celery.instrument()


def call_warehouse_api(attempt: int) -> None:
    """The warehouse's API: the first two calls per order hang until the caller times
    out. Counted by Celery's retries, as each attempt may run in another child."""
    if attempt <= 2:
        time.sleep(TIMINGS.warehouse_timeout)
        raise TimeoutError(f"the warehouse API did not answer in {TIMINGS.warehouse_timeout}s")
    time.sleep(TIMINGS.warehouse_call)


@app.task(name="authorize-payment")
def authorize_payment(order: dict[str, Any]) -> None:
    time.sleep(TIMINGS.payment)
    project_order_summary.apply_async((order,))
    award_loyalty_points.apply_async((order,))
    say("done", "authorize-payment", order["order_id"])


@app.task(name="reserve-inventory")
def reserve_inventory(order: dict[str, Any]) -> None:
    time.sleep(TIMINGS.inventory)
    send_warehouse_webhook.apply_async((order,))
    say("done", "reserve-inventory", order["order_id"])


@app.task(name="project-order-summary")
def project_order_summary(order: dict[str, Any]) -> None:
    time.sleep(TIMINGS.summary_lag + TIMINGS.summary)
    say("done", "project-order-summary", order["order_id"])


@app.task(name=STALLED_STEP)
def award_loyalty_points(order: dict[str, Any]) -> None:
    say("started", STALLED_STEP, order["order_id"])
    time.sleep(TIMINGS.loyalty_stall)  # the worker is lost before this ends


@app.task(name="send-warehouse-webhook", bind=True, max_retries=len(BACKOFF))
def send_warehouse_webhook(self: Task, order: dict[str, Any]) -> None:
    try:
        call_warehouse_api(self.request.retries + 1)
    except TimeoutError as error:
        raise self.retry(exc=error, countdown=BACKOFF[self.request.retries]) from error
    say("done", "send-warehouse-webhook", order["order_id"])


@app.task(name="charge-gift-card", bind=True, max_retries=1)
def charge_gift_card(self: Task, order: dict[str, Any]) -> None:
    if self.request.retries < 1:
        raise self.retry(exc=ValueError("gift card declined"), countdown=BACKOFF[0])
    say("failed", "charge-gift-card", order["order_id"])
    raise ValueError("gift card declined")


@signals.worker_ready.connect
def ready(**_: object) -> None:
    say("ready")


def place_order(number: int) -> None:
    tracer = trace.get_tracer("checkout-api")
    order = {"order_id": f"order_{number}", "items": [{"sku": "sku-42", "quantity": 2}]}
    with (
        tracebraid.correlation(order["order_id"]),
        tracer.start_as_current_span(
            "POST /orders",
            kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": "POST", "http.route": "/orders"},
        ),
    ):
        time.sleep(TIMINGS.checkout)
        if number == 441:
            authorize_payment.apply_async((order,))
            reserve_inventory.apply_async((order,))
        else:
            charge_gift_card.apply_async((order,))


if __name__ == "__main__":
    if MODE == "worker":
        queues = ",".join(NAMESPACE + step for step in STEPS)
        app.worker_main(
            [
                "worker",
                # Prefork, Celery's default: one task at a time per child process. (With
                # the threads pool, a retry running before the failed attempt's postrun
                # meets the stock instrumentation's span-per-task-id bookkeeping.)
                "--pool=prefork",
                "--concurrency=4",
                f"--queues={queues}",
                "--without-mingle",
                "--without-gossip",
                "--without-heartbeat",
                "--loglevel=ERROR",
            ]
        )
    else:
        place_order(441)
        place_order(442)
        provider.shutdown()
        say("placed")
