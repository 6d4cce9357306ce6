"""``tracebraid.integrations.celery`` beside the stock Celery instrumentation, connected
before it or after it: a task run by Celery's own tracer (the code a worker runs, here
without a worker; the retry is published to Celery's in-memory transport) gets its step,
attempt, cause and correlation, and its retry keeps them and ends the attempt as a retry.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery, Task, signals
from celery.app.trace import build_tracer
from opentelemetry import propagate
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import tracebraid
import tracebraid.integrations.celery as celery_integration
from tracebraid import semconv
from tracebraid.instrument import install_propagator
from tracebraid.sdk.context import current_processing

app = Celery("tb-signals", broker="memory://")
app.conf.task_ignore_result = True


@app.task(name="send-warehouse-webhook", bind=True, max_retries=2)
def send_warehouse_webhook(self: Task) -> None:
    raise self.retry(exc=TimeoutError("the warehouse API did not answer"), countdown=60)


@pytest.fixture(params=["integration first", "stock first"])
def exporter(request: pytest.FixtureRequest) -> Iterator[InMemorySpanExporter]:
    found = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(found))
    saved = propagate.get_global_textmap()
    tracebraid.instrument(provider, propagator=False)
    install_propagator()
    if request.param == "integration first":
        celery_integration.instrument()
        CeleryInstrumentor().instrument(tracer_provider=provider)
    else:
        CeleryInstrumentor().instrument(tracer_provider=provider)
        celery_integration.instrument()
    try:
        yield found
    finally:
        CeleryInstrumentor().uninstrument()
        celery_integration.uninstrument()
        propagate.set_global_textmap(saved)
        provider.shutdown()


def test_a_retried_task_keeps_its_identities_in_either_order(
    exporter: InMemorySpanExporter,
) -> None:
    published: list[dict[str, Any]] = []

    def capture(headers: dict[str, Any] | None = None, **_: object) -> None:
        published.append(dict(headers or {}))

    signals.before_task_publish.connect(capture, weak=False)
    try:
        run = build_tracer(send_warehouse_webhook.name, send_warehouse_webhook, app=app)
        run(
            "task-2",
            (),
            {},
            {
                "id": "task-2",
                "parent_id": "task-1",
                "retries": 0,
                "delivery_info": {"routing_key": "webhooks"},
                "x-correlation-id": "order_441",
                "x-event-name": "inventory.reserved",
            },
        )
    finally:
        signals.before_task_publish.disconnect(capture)
    [retry] = published
    assert retry["id"] == retry["x-event-id"] == "task-2"
    assert retry["x-correlation-id"] == "order_441"
    assert retry["x-causation-id"] == "task-1"
    assert retry["x-event-name"] == "inventory.reserved"
    [consumer] = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CONSUMER]
    attributes = dict(consumer.attributes or {})
    assert attributes[semconv.MESSAGE_ID] == "task-2"
    assert attributes[semconv.STEP] == "send-warehouse-webhook"
    assert attributes[semconv.EVENT_NAME] == "inventory.reserved"
    assert attributes[semconv.ATTEMPT] == 1
    assert attributes[semconv.CAUSATION_ID] == "task-1"
    assert attributes[semconv.CORRELATION_ID] == "order_441"
    assert attributes[semconv.OUTCOME] == "retry"
    assert consumer.status.status_code is StatusCode.ERROR
    [producer] = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.PRODUCER]
    assert producer.attributes is not None
    assert producer.attributes[semconv.MESSAGE_ID] == "task-2"
    assert producer.attributes[semconv.CAUSATION_ID] == "task-1"  # not itself
    # The task is over: what its thread publishes next is no follow-up of its message.
    assert current_processing() is None
