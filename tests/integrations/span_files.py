"""Spans of services running in other processes, one OTLP protobuf file per export.

Each export is its own file (``<pid>-<n>.otlp``), written as it happens, so the spans and
start markers of a process killed mid-task are on disk already.

Example::

    provider.add_span_processor(SimpleSpanProcessor(SpanFiles(tmp_path)))
    spans = read_spans(tmp_path)
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from pathlib import Path

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tracebraid.collector.otlp import decode_protobuf
from tracebraid.model import Span


class SpanFiles(SpanExporter):
    """Writes every export to a file of its own in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._numbers = itertools.count()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        path = self.directory / f"{os.getpid()}-{next(self._numbers)}.otlp"
        partial = path.with_suffix(".part")
        partial.write_bytes(encode_spans(spans).SerializeToString())
        partial.rename(path)  # a reader never sees half a file
        return SpanExportResult.SUCCESS


def read_spans(directory: Path) -> list[Span]:
    """Every span written to ``directory`` so far."""
    spans: list[Span] = []
    for path in sorted(directory.glob("*.otlp")):
        decoded = decode_protobuf(path.read_bytes())
        assert not decoded.rejections, decoded.rejections
        spans.extend(decoded.spans)
    return spans
