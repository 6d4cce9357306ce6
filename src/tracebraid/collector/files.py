"""Span files -> ``Span``: what ``tracebraid import`` reads, format detected from the content.

- **OTLP JSON lines**: one ``TracesData`` JSON object per line, as the OpenTelemetry
  Collector's file exporter writes by default. Also a single (pretty-printed) OTLP/JSON
  document.
- **OTLP protobuf**: the Collector's file exporter with ``format: proto`` (each message
  after a 4-byte big-endian length), the specification's varint-delimited stream, or one
  bare ``TracesData`` / ``ExportTraceServiceRequest`` message.
- **Jaeger JSON**: the UI's trace download and the query API's answer, ``{"data": [...]}``
  (``jaeger``).
- **Tempo JSON**: the query API's ``{"batches": [...]}`` (and v2's ``{"trace": {...}}``),
  protobuf's JSON mapping of OTLP with base64 IDs (``tempo``).

A JSON document that is none of these (``{"foo": 1}``) is a problem naming the formats
expected (``EXPECTED_FORMATS``), never silently zero spans.

Any of them may be gzip- (or, where Python has it, zstd-) compressed. Files are read as
a stream, in chunks of spans, so a large file never sits in memory as ``Span`` s at once
(a single JSON document or bare protobuf message is parsed whole: it is one value). A
malformed line, record or span is reported as a ``FileProblem`` with its file and line
(or record) and skipped; everything valid is kept.

Example::

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "spans.jsonl"
    >>> _ = path.write_text('{"resourceSpans": []}\\nnot json\\n')
    >>> [str(p) for chunk in read_span_file(path) for p in chunk.problems]  # doctest: +ELLIPSIS
    ['.../spans.jsonl:2: not valid JSON: Expecting value: line 1 column 1 (char 0)']
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import stat
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeAlias

from tracebraid.collector.jaeger import decode_jaeger, is_jaeger
from tracebraid.collector.otlp import decode_protobuf
from tracebraid.collector.otlp_json import decode_json_document
from tracebraid.collector.tempo import as_otlp, is_tempo
from tracebraid.collector.validate import Decoded
from tracebraid.errors import InputError
from tracebraid.model import Span

__all__ = [
    "EXPECTED_FORMATS",
    "FileChunk",
    "FileProblem",
    "Format",
    "detect_format",
    "read_span_file",
]

EXPECTED_FORMATS = (
    'OTLP JSON lines, OTLP JSON, OTLP protobuf, Jaeger JSON ({"data": [...]}) or '
    'Tempo JSON ({"batches": [...]}), plain or gzip-compressed'
)
"""The formats ``read_span_file`` reads, for messages about a file that is none of them."""
_OTLP_KEYS = ("resourceSpans", "resource_spans")

Format = Literal["otlp-json", "otlp-protobuf"]
_LengthReader: TypeAlias = Callable[["_Stream"], "tuple[int | str, int] | None"]


class _Stream(Protocol):
    """What is read from a span file: a plain, gzip or zstd binary stream."""

    def read(self, size: int = -1, /) -> bytes: ...
    def readline(self, size: int = -1, /) -> bytes: ...
    def peek(self, size: int, /) -> bytes: ...


_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# Keys every span has exactly once and nothing else in the document has: the n-th
# occurrence marks the n-th span, which is how a span of a document gets its line.
_SPAN_KEYS = {
    "jaeger": re.compile(rb'"operationName"\s*:'),
    "otlp": re.compile(rb'"(?:startTimeUnixNano|start_time_unix_nano)"\s*:'),
}
_READ_LIMIT = 1 << 30  # one record or line past this is refused rather than read
_MAX_FRUITLESS = 16
_NOT_SPANS = (
    "not a span file: {} records in a row hold no span (zero-length or undecodable "
    "framing, as a file of zeros has); stopped reading"
)
_UNPARSED = object()


@dataclass(frozen=True, slots=True)
class FileProblem:
    """A line, record or span of a file that was skipped, and why."""

    path: str
    line: int | None
    reason: str
    where: str = ""
    count: int = 1

    def __str__(self) -> str:
        at = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{at}: {self.where}: {self.reason}" if self.where else f"{at}: {self.reason}"


@dataclass(slots=True)
class FileChunk:
    """Spans read from a file since the last chunk, what was skipped, how far it got."""

    spans: list[Span] = field(default_factory=list)
    problems: list[FileProblem] = field(default_factory=list)
    position: int = 0  # bytes of the file (as stored, compressed or not) read so far


def detect_format(head: bytes) -> Format:
    """``otlp-json`` when the (decompressed) content starts like JSON, else ``otlp-protobuf``.

    Jaeger JSON is told from OTLP/JSON per document, once parsed.
    """
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return "otlp-json" if text[:1] in (b"{", b"[") else "otlp-protobuf"


def read_span_file(path: str | os.PathLike[str], *, chunk_spans: int = 5000) -> Iterator[FileChunk]:
    """Read a span file of any supported format, yielding chunks of about ``chunk_spans``.

    Raises ``InputError`` when the file cannot be opened or decompressed at all.
    """
    name = os.fspath(path)
    try:
        # Asked before opening: opening a FIFO waits, forever, for a writer.
        mode = os.stat(name).st_mode
    except OSError as exc:
        raise InputError(f"cannot open {name}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        raise InputError(
            f"{name} is not a regular file (it is {_file_kind(mode)}); "
            "import reads span files: save the spans to a file first"
        )
    try:
        raw = open(name, "rb")  # noqa: SIM115 - closed in the finally below
    except OSError as exc:
        raise InputError(f"cannot open {name}: {exc.strerror or exc}") from None
    try:
        stream = _decompressed(raw, name)
        fmt = detect_format(stream.peek(4096)[:4096])
        reader = _json_chunks if fmt == "otlp-json" else _protobuf_chunks
        for chunk in reader(stream, name, chunk_spans):
            chunk.position = raw.tell()
            yield chunk
    except (OSError, EOFError, ValueError) as exc:
        # A corrupt gzip/zstd stream surfaces here, mid-read.
        yield FileChunk(problems=[FileProblem(name, None, f"cannot read further: {exc}")])
    finally:
        raw.close()


def _file_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def _decompressed(raw: io.BufferedReader, name: str) -> _Stream:
    magic = raw.read(4)
    raw.seek(0)
    if magic.startswith(_GZIP_MAGIC):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if magic == _ZSTD_MAGIC:
        try:
            from compression import zstd  # type: ignore[import-not-found]  # Python 3.14+
        except ImportError:
            try:
                from backports import zstd
            except ImportError:
                raise InputError(
                    f"{name} is zstd-compressed; decompress it first (zstd -d) or "
                    "install backports.zstd"
                ) from None
        stream: _Stream = zstd.ZstdFile(raw, mode="rb")
        return stream
    return raw


# -- JSON: lines, or one document ------------------------------------------------------


def _json_chunks(stream: _Stream, name: str, chunk_spans: int) -> Iterator[FileChunk]:
    first = stream.readline(_READ_LIMIT)
    first_doc: object = _UNPARSED
    try:
        # Kept for line 1, which can be the whole file (a Jaeger download is one line).
        first_doc = json.loads(first)
        lines: Iterable[bytes] = _chain(first, stream)
    except (ValueError, RecursionError):
        # Not a whole JSON value on line 1: a pretty-printed document, or a JSON-lines
        # file whose first line is broken. The document is tried first.
        text = first + stream.read()
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):
            lines = text.splitlines(keepends=True)
        else:
            yield _document(doc, text, name)
            return
    chunk = FileChunk()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if number == 1 and first_doc is not _UNPARSED:
            doc, first_doc = first_doc, _UNPARSED
        else:
            try:
                doc = json.loads(line)
            except (ValueError, RecursionError) as exc:
                chunk.problems.append(FileProblem(name, number, f"not valid JSON: {exc}"))
                continue
        try:
            decoded = _decode_doc(doc)
        except InputError as exc:
            chunk.problems.append(FileProblem(name, number, str(exc)))
            continue
        chunk.spans.extend(decoded.spans)
        chunk.problems.extend(
            FileProblem(name, number, r.reason, r.where, r.count) for r in decoded.rejections
        )
        chunk.problems.extend(_omitted(decoded, name, number))
        if len(chunk.spans) >= chunk_spans:
            yield chunk
            chunk = FileChunk()
    yield chunk


def _chain(first: bytes, stream: _Stream) -> Iterator[bytes]:
    yield first
    while line := stream.readline(_READ_LIMIT):
        yield line


def _document(doc: object, text: bytes, name: str) -> FileChunk:
    try:
        decoded = _decode_doc(doc)
    except InputError as exc:
        return FileChunk(problems=[FileProblem(name, None, str(exc))])
    line_of = _line_finder(doc, text, decoded) if decoded.rejections else _no_line
    problems = [
        FileProblem(name, line_of(r.ordinal), r.reason, r.where, r.count)
        for r in decoded.rejections
    ]
    problems.extend(_omitted(decoded, name, None))
    return FileChunk(spans=decoded.spans, problems=problems)


def _omitted(decoded: Decoded, name: str, line: int | None, where: str = "") -> list[FileProblem]:
    """One problem counting the refused spans not kept as examples (``Decoded.reject``)."""
    rest = decoded.rejected_count - sum(r.count for r in decoded.rejections)
    if rest <= 0:
        return []
    return [FileProblem(name, line, "more spans refused, as above or otherwise", where, rest)]


def _no_line(ordinal: int) -> int | None:
    return None


def _line_finder(doc: object, text: bytes, decoded: Decoded) -> Callable[[int], int | None]:
    key = _SPAN_KEYS["jaeger" if is_jaeger(doc) else "otlp"]
    starts = [m.start() for m in key.finditer(text)]
    if len(starts) != len(decoded.spans) + decoded.rejected_count:
        return _no_line  # the one-key-per-span rule does not hold in this document
    newlines = [m.start() for m in re.finditer(b"\n", text)]

    def line_of(ordinal: int) -> int | None:
        return bisect_right(newlines, starts[ordinal]) + 1 if ordinal >= 0 else None

    return line_of


def _decode_doc(doc: object) -> Decoded:
    if is_jaeger(doc):
        return decode_jaeger(doc)
    if is_tempo(doc):
        return decode_json_document(as_otlp(doc))
    if isinstance(doc, dict) and not any(key in doc for key in _OTLP_KEYS):
        keys = ", ".join(sorted(map(str, doc))[:5]) or "none"
        raise InputError(f"not a span document of a format tracebraid reads (its keys: {keys})")
    return decode_json_document(doc)


# -- protobuf: framed records, or one message ------------------------------------------


def _protobuf_chunks(stream: _Stream, name: str, chunk_spans: int) -> Iterator[FileChunk]:
    head = stream.peek(1)[:1]
    if not head:
        yield FileChunk()
        return
    if head == b"\x0a":  # field 1 (resource_spans), length-delimited: one bare message
        records: Iterable[tuple[int, bytes | str]] = [(0, stream.read())]
    elif head == b"\x00":  # a 4-byte big-endian length: the Collector's file exporter
        records = _framed(stream, _fixed32)
    else:
        records = _framed(stream, _varint)
    chunk = FileChunk()
    fruitless = 0  # records in a row that held no span
    for number, (offset, record) in enumerate(records, start=1):
        where = f"record {number} at byte {offset}"
        if isinstance(record, str):  # a framing error: nothing after it can be trusted
            chunk.problems.append(FileProblem(name, None, record, where))
            break
        if fruitless >= _MAX_FRUITLESS:
            # Zeros, or anything else whose "lengths" frame empty or broken records:
            # refused now, not after millions of them.
            chunk.problems.append(FileProblem(name, None, _NOT_SPANS.format(fruitless), where))
            break
        fruitless += 1
        if not record:
            continue  # an empty message: no exporter writes one
        try:
            decoded = decode_protobuf(record)
        except InputError as exc:
            chunk.problems.append(FileProblem(name, None, str(exc), where))
            continue
        if decoded.spans or decoded.rejected_count:
            fruitless = 0
        chunk.spans.extend(decoded.spans)
        chunk.problems.extend(
            FileProblem(name, None, r.reason, f"{where}, {r.where}", r.count)
            for r in decoded.rejections
        )
        chunk.problems.extend(_omitted(decoded, name, None, where))
        if len(chunk.spans) >= chunk_spans:
            yield chunk
            chunk = FileChunk()
    yield chunk


def _framed(stream: _Stream, length_of: _LengthReader) -> Iterator[tuple[int, bytes | str]]:
    offset = 0
    while True:
        framed = length_of(stream)
        if framed is None:
            return
        size, header = framed
        if isinstance(size, str):
            yield offset, size
            return
        if size > _READ_LIMIT:
            yield offset, f"a record of {size} bytes is past the {_READ_LIMIT}-byte limit"
            return
        record = stream.read(size)
        if len(record) < size:
            yield offset, f"the file ends {size - len(record)} bytes into a {size}-byte record"
            return
        yield offset, record
        offset += header + size


def _fixed32(stream: _Stream) -> tuple[int | str, int] | None:
    prefix = stream.read(4)
    if not prefix:
        return None
    if len(prefix) < 4:
        return "the file ends inside a record's 4-byte length", 4
    return int.from_bytes(prefix, "big"), 4


def _varint(stream: _Stream) -> tuple[int | str, int] | None:
    value = shift = 0
    for count in range(1, 11):
        byte = stream.read(1)
        if not byte:
            return None if count == 1 else ("the file ends inside a record's length", count)
        value |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return value, count
        shift += 7
    return "a record's varint length is longer than 10 bytes", 10
