"""An OpenTelemetry ``SpanExporter`` that writes finished spans straight into a store.

For a service (or the demo) that keeps its traces in a local file without running
a collector. Put it behind a ``BatchSpanProcessor`` as with any exporter, so spans
are written in batches off the request path.

Example::

    >>> from opentelemetry.sdk.trace import TracerProvider
    >>> from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    >>> from tracebraid.store import open_store
    >>> store = open_store("sqlite:///:memory:")
    >>> provider = TracerProvider()
    >>> provider.add_span_processor(SimpleSpanProcessor(StoreSpanExporter(store)))
    >>> with provider.get_tracer("demo").start_as_current_span("reserve-inventory"):
    ...     pass
    >>> store.span_count()
    1
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tracebraid.errors import TracebraidError
from tracebraid.sdk.convert import to_span
from tracebraid.store.base import SpanStore

__all__ = ["StoreSpanExporter"]

_log = logging.getLogger(__name__)


class StoreSpanExporter(SpanExporter):
    """Converts each batch with ``to_span`` and writes it to ``store`` in one transaction.

    A store failure is logged and reported as ``FAILURE`` (the SDK's processors drop
    the batch and carry on); it never raises into the application. The store stays
    the caller's to close, unless ``close_store=True``.
    """

    def __init__(self, store: SpanStore, *, close_store: bool = False) -> None:
        self._store = store
        self._close_store = close_store
        self._shut_down = False

    @property
    def store(self) -> SpanStore:
        """The store spans are written to."""
        return self._store

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write ``spans``; ``SUCCESS`` once they are committed."""
        if self._shut_down:
            _log.warning("StoreSpanExporter is shut down; dropped %d spans", len(spans))
            return SpanExportResult.FAILURE
        try:
            self._store.write([to_span(span) for span in spans])
        except TracebraidError as exc:
            # StoreError (disk full, locked too long, closed) or InputError (a value the
            # store cannot hold): either way the batch is not stored, and saying so
            # beats crashing the exporting thread.
            _log.error("could not store %d spans: %s", len(spans), exc)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Refuse further exports; close the store if this exporter owns it."""
        if self._shut_down:
            return
        self._shut_down = True
        if self._close_store:
            self._store.close()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is buffered here: every ``export`` is committed before it returns."""
        return True
