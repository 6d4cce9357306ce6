"""What the integrations read from the framework without a broker: Celery's request (a
real ``celery.app.task.Context`` pushed on a real task) and FastStream's handler names."""

from __future__ import annotations

import pytest
from celery import Celery

from tracebraid.integrations.celery import TaskMessage, task_message
from tracebraid.integrations.faststream import step_name

app = Celery("tb-names", broker="memory://")


@app.task(name="send-warehouse-webhook")
def send_warehouse_webhook() -> None:
    """A task to push requests on."""


def running(request: dict[str, object]) -> TaskMessage | None:
    send_warehouse_webhook.push_request(**request)
    try:
        return task_message(send_warehouse_webhook)
    finally:
        send_warehouse_webhook.pop_request()


def test_a_task_message_is_its_task_id_named_by_its_task_caused_by_its_parent() -> None:
    message = running(
        {
            "id": "t-2",
            "parent_id": "t-1",
            "retries": 2,
            "delivery_info": {"routing_key": "tb.webhooks"},
        }
    )
    assert message == TaskMessage(
        event_id="t-2",
        event_name="send-warehouse-webhook",
        step="send-warehouse-webhook",
        attempt=3,
        correlation_id=None,
        causation_id="t-1",
        queue="tb.webhooks",
    )


def test_what_tracebraids_headers_say_comes_first() -> None:
    message = running(
        {
            "id": "t-2",
            "parent_id": "t-1",
            "x-event-name": "inventory.reserved",
            "x-causation-id": "evt_0",
            "x-correlation-id": "order_441",
        }
    )
    assert message is not None
    assert (message.event_name, message.causation_id, message.correlation_id) == (
        "inventory.reserved",
        "evt_0",
        "order_441",
    )
    assert message.attempt == 1  # no retries yet


def test_outside_a_run_there_is_no_task_message() -> None:
    assert task_message(send_warehouse_webhook) is None


@pytest.mark.parametrize(
    ("handler", "step"),
    [("authorize_payment", "authorize-payment"), ("_on_order", "on-order"), ("ship", "ship")],
)
def test_a_handler_name_is_a_business_step(handler: str, step: str) -> None:
    assert step_name(handler) == step


@pytest.mark.parametrize(
    "module", ["tracebraid.integrations.celery", "tracebraid.integrations.faststream"]
)
def test_the_docstring_examples_are_true(module: str) -> None:
    import doctest
    import importlib

    found = doctest.testmod(importlib.import_module(module), raise_on_error=False)
    assert found.attempted and not found.failed
