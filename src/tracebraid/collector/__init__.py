"""The collector: OTLP/HTTP ingest (``tracebraid serve``) and file import (``tracebraid import``).

Data flows one way: a payload is decoded into ``Span`` records (``decode_protobuf``,
``decode_json``, ``decode_jaeger``), each span is validated (``span_problem``), valid
spans go into the store, and refused spans come back as ``Rejection`` s naming where
they were and what was wrong. ``serve`` does the decoding and writing in
``IngestProcesses`` when the store can be written from several processes (a SQLite
file), else through the bounded ``WriteQueue`` of one writer thread.

Example::

    >>> from tracebraid.store import SqliteStore
    >>> app = create_app(SqliteStore(":memory:"))  # serve it with uvicorn
"""

from tracebraid.collector.app import BearerTokenGuard, Collector, Limits, create_app
from tracebraid.collector.files import FileChunk, FileProblem, read_span_file
from tracebraid.collector.ingest_processes import Ingested, IngestProcesses, IngestStats
from tracebraid.collector.jaeger import decode_jaeger
from tracebraid.collector.otlp import decode_protobuf, encode_protobuf
from tracebraid.collector.otlp_http import OtlpRefusal
from tracebraid.collector.otlp_json import decode_json, decode_json_document
from tracebraid.collector.remote import OtlpHttpSender, SendResult
from tracebraid.collector.validate import Decoded, Rejection, span_problem
from tracebraid.collector.write_queue import QueueClosed, QueueFull, QueueStats, WriteQueue

__all__ = [
    "BearerTokenGuard",
    "Collector",
    "Decoded",
    "FileChunk",
    "FileProblem",
    "IngestProcesses",
    "IngestStats",
    "Ingested",
    "Limits",
    "OtlpHttpSender",
    "OtlpRefusal",
    "QueueClosed",
    "QueueFull",
    "QueueStats",
    "Rejection",
    "SendResult",
    "WriteQueue",
    "create_app",
    "decode_jaeger",
    "decode_json",
    "decode_json_document",
    "decode_protobuf",
    "encode_protobuf",
    "read_span_file",
    "span_problem",
]
