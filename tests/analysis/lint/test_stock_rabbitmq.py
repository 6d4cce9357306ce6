"""The lint on spans from stock ``opentelemetry-instrumentation-aio-pika`` against the real
RabbitMQ on loopback: spans that never heard of tracebraid. Requeued retries carry no
attempt numbers, consumer spans are named ``<exchange> receive``, the consumer group is
unknown, and a producer that drops the headers starts an island."""

from __future__ import annotations

import uuid

import pytest

from tracebraid.analysis.lint import lint

from ..stock_rabbitmq import record_stock_workflow

pytestmark = pytest.mark.broker


async def test_the_lint_reads_stock_aio_pika_spans() -> None:
    run = uuid.uuid4().hex[:8]
    report = lint(await record_stock_workflow("tb-lint", run, failures=1, audit_inside_order=True))
    found = {(f.rule, f.step) for f in report.findings}
    reserve_step = f"tb-lint-orders-{run} receive"
    assert ("TB101", "POST /orders") in found  # the audit publish dropped its headers
    assert ("TB601", reserve_step) in found  # a requeued retry with no attempt numbers
    assert ("TB501", reserve_step) in found  # "<exchange> receive"
    missing = next(f for f in report.findings if f.rule == "TB401" and f.step == reserve_step)
    assert "consumerName" in missing.details["missing"]
    assert "correlationId" not in missing.details["missing"]  # message.correlation_id
    naming = next(f for f in report.findings if f.rule == "TB501" and f.step == reserve_step)
    assert "verb-noun" in str(naming.details["suggestion"])
