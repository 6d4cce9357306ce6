"""StoreSpanExporter behind a real OpenTelemetry TracerProvider."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExportResult,
)

from tracebraid.errors import StoreError
from tracebraid.model import SpanKind, StatusCode
from tracebraid.store import SqliteStore
from tracebraid.store.exporter import StoreSpanExporter


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "spans.db") as opened:
        yield opened


def _provider(processor_of: type, exporter: StoreSpanExporter) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "inventory"}))
    provider.add_span_processor(processor_of(exporter))
    return provider


def test_finished_spans_land_in_the_store(store: SqliteStore) -> None:
    provider = _provider(BatchSpanProcessor, StoreSpanExporter(store))
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("orders publish", kind=trace.SpanKind.PRODUCER) as sent:
        sent.set_attribute("messaging.message.id", "evt_1")
        sent.set_attribute("messaging.message.conversation_id", "order_1")
    with tracer.start_as_current_span(
        "reserve-inventory",
        kind=trace.SpanKind.CONSUMER,
        links=[trace.Link(sent.get_span_context(), {"messaging.message.id": "evt_1"})],
    ) as work:
        work.set_attribute("tracebraid.attempt", 2)
        work.add_event("tracebraid.started", {"n": 1})
        with tracer.start_as_current_span("call-warehouse") as call:
            call.set_status(trace.Status(trace.StatusCode.ERROR, "TimeoutError"))
    provider.shutdown()  # flushes the batch processor

    assert store.span_count() == 3
    trace_id = format(work.get_span_context().trace_id, "032x")
    consume, child = store.spans_of_trace(trace_id)  # type: ignore[arg-type]
    assert (consume.name, consume.kind, consume.service) == (
        "reserve-inventory",
        SpanKind.CONSUMER,
        "inventory",
    )
    assert consume.attributes["tracebraid.attempt"] == 2
    assert [e.name for e in consume.events] == ["tracebraid.started"]
    assert (child.parent_span_id, child.status) == (consume.span_id, StatusCode.ERROR)
    [published] = store.spans_by_event("evt_1")  # type: ignore[arg-type]
    assert store.spans_linking_to(published.trace_id, published.span_id) == [consume]
    assert store.spans_of_correlation("order_1") == [published]  # type: ignore[arg-type]
    assert published.resource["service.name"] == "inventory"


def test_a_store_failure_is_reported_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SqliteStore(tmp_path / "spans.db")
    exporter = StoreSpanExporter(store)
    provider = _provider(SimpleSpanProcessor, exporter)
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("stored"):
        pass
    store.close()
    with caplog.at_level(logging.ERROR, logger="tracebraid.store.exporter"):
        with tracer.start_as_current_span("not stored") as lost:
            pass  # SimpleSpanProcessor exports on end: the closed store must not raise here
        readable = lost
        assert exporter.export([readable]) is SpanExportResult.FAILURE  # type: ignore[list-item]
    assert "could not store 1 spans" in caplog.text
    assert "closed" in caplog.text
    provider.shutdown()
    with SqliteStore(tmp_path / "spans.db") as reopened:
        assert [s.root_name for s in reopened.recent_traces()] == ["stored"]


def test_shutdown_refuses_exports_and_closes_an_owned_store(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "spans.db")
    exporter = StoreSpanExporter(store, close_store=True)
    provider = _provider(SimpleSpanProcessor, exporter)
    with provider.get_tracer("tests").start_as_current_span("one") as span:
        pass
    assert exporter.force_flush()
    provider.shutdown()
    assert exporter.export([span]) is SpanExportResult.FAILURE  # type: ignore[list-item]
    with pytest.raises(StoreError, match="closed"):
        store.span_count()
