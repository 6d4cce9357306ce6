"""The OTLP/HTTP protocol, apart from routing: media types, size limits, gzip, replies.

Everything here follows the OTLP/HTTP specification: a request is
``application/x-protobuf`` or ``application/json``, optionally ``Content-Encoding:
gzip``; a reply uses the request's encoding, carrying an ``ExportTraceServiceResponse``
on success (with ``partial_success`` when some spans were refused) and a
``google.rpc.Status`` on failure. A refusal is an ``OtlpRefusal`` carrying its status.

Decompression is capped: a body that inflates past the limit is refused as soon as it
does, without inflating the rest, so a gzip bomb costs at most the limit.

Example::

    >>> import gzip
    >>> len(inflate(gzip.compress(b"x" * 100), "gzip", limit=1000))
    100
    >>> try:
    ...     inflate(gzip.compress(b"x" * 100), "gzip", limit=10)
    ... except OtlpRefusal as refusal:
    ...     print(refusal.status, refusal)
    413 the body inflates past the limit of 10 bytes
"""

from __future__ import annotations

import json
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Literal

from google.protobuf import json_format
from google.rpc.status_pb2 import Status  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tracebraid.collector.otlp import decode_protobuf, decode_protobuf_slices
from tracebraid.collector.otlp_json import decode_json
from tracebraid.collector.validate import Decoded
from tracebraid.errors import InputError, StoreError, TracebraidError

__all__ = [
    "JSON",
    "PROTOBUF",
    "Encoding",
    "OtlpRefusal",
    "content_coding",
    "decode_body",
    "decode_body_slices",
    "encoding_of",
    "export_response",
    "inflate",
    "read_capped",
    "status_body",
    "store_refusal",
]

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
Encoding = Literal["protobuf", "json"]

_MEDIA: dict[str, Encoding] = {
    PROTOBUF: "protobuf",
    "application/protobuf": "protobuf",
    JSON: "json",
}
_GRPC_CODES = {400: 3, 401: 16, 413: 3, 415: 3, 429: 8, 503: 14, 500: 13}
_CHUNK = 1 << 16


class OtlpRefusal(TracebraidError):
    """A request refused with an HTTP status and a message saying what was wrong."""

    def __init__(self, status: int, message: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after_s = retry_after_s

    def __reduce__(self) -> tuple[object, ...]:
        # Raised in decoder processes too: it must cross back whole, status included.
        return (_refusal, (self.status, self.message, self.retry_after_s))


def _refusal(status: int, message: str, retry_after_s: int | None) -> OtlpRefusal:
    return OtlpRefusal(status, message, retry_after_s=retry_after_s)


def encoding_of(content_type: str | None) -> Encoding:
    """The OTLP encoding named by a ``Content-Type`` header; 415 for anything else."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    encoding = _MEDIA.get(media)
    if encoding is None:
        shown = media or "no Content-Type"
        raise OtlpRefusal(415, f"{shown} is not an OTLP media type; send {PROTOBUF} or {JSON}")
    return encoding


async def read_capped(
    chunks: AsyncIterator[bytes], content_length: str | None, limit: int
) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit``."""
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise OtlpRefusal(400, f"Content-Length {content_length!r} is not a number") from None
        if declared > limit:
            raise OtlpRefusal(413, _too_large(declared, limit))
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise OtlpRefusal(413, _too_large(size, limit, at_least=True))
        parts.append(chunk)
    return b"".join(parts)


def content_coding(content_encoding: str | None) -> str:
    """The normalised ``Content-Encoding``: gzip, deflate or identity; 415 for anything else."""
    coding = (content_encoding or "identity").strip().lower() or "identity"
    coding = {"x-gzip": "gzip"}.get(coding, coding)
    if coding not in ("gzip", "deflate", "identity"):
        raise OtlpRefusal(415, f"Content-Encoding {coding!r} is not supported; use gzip or none")
    return coding


def inflate(body: bytes, content_encoding: str | None, *, limit: int) -> bytes:
    """``body`` decoded per ``Content-Encoding`` (gzip, deflate or none), capped at ``limit``."""
    coding = content_coding(content_encoding)
    if coding == "identity":
        return body
    wbits = 16 + zlib.MAX_WBITS if coding == "gzip" else zlib.MAX_WBITS
    parts: list[bytes] = []
    size = 0
    data = body
    try:
        while True:
            inflater = zlib.decompressobj(wbits)
            while not inflater.eof:
                out = inflater.decompress(data, min(_CHUNK, limit + 1 - size))
                data = inflater.unconsumed_tail
                if out:
                    size += len(out)
                    if size > limit:
                        raise OtlpRefusal(413, f"the body inflates past the limit of {limit} bytes")
                    parts.append(out)
                elif not data:
                    raise OtlpRefusal(400, f"the {coding} body is truncated")
            # gzip allows several members one after another.
            data = inflater.unused_data if wbits > zlib.MAX_WBITS else b""
            if not data:
                break
    except zlib.error as exc:
        raise OtlpRefusal(400, f"the body is not valid {coding}: {exc}") from None
    return b"".join(parts)


def decode_body(body: bytes, encoding: Encoding) -> Decoded:
    """Decode a request body; 400 with the decoder's reason when it is not OTLP."""
    try:
        return decode_protobuf(body) if encoding == "protobuf" else decode_json(body)
    except TracebraidError as exc:
        raise OtlpRefusal(400, str(exc)) from None


def decode_body_slices(body: bytes, encoding: Encoding) -> Iterator[Decoded]:
    """``decode_body`` a slice at a time (protobuf; JSON is one slice): see ``otlp_slices``.

    A body that is not OTLP is refused (400) before its first slice is yielded only
    when it cannot be walked; a later slice may still refuse it.
    """
    if encoding == "json":
        yield decode_body(body, encoding)
        return
    try:
        yield from decode_protobuf_slices(body)
    except TracebraidError as exc:
        raise OtlpRefusal(400, str(exc)) from None


def export_response(encoding: Encoding, rejected: int = 0, message: str = "") -> bytes:
    """An ``ExportTraceServiceResponse``; ``partial_success`` set when spans were refused."""
    response = ExportTraceServiceResponse()
    if rejected or message:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    if encoding == "protobuf":
        body: bytes = response.SerializeToString()
        return body
    return json.dumps(json_format.MessageToDict(response)).encode()


def status_body(encoding: Encoding, http_status: int, message: str) -> bytes:
    """A ``google.rpc.Status`` naming what was wrong, as the spec asks of a failure."""
    # The message may quote the client's own bad text: escaped, as a reply must be UTF-8.
    message = message.encode("utf-8", "backslashreplace").decode()
    status = Status(code=_GRPC_CODES.get(http_status, 2), message=message)
    if encoding == "protobuf":
        body: bytes = status.SerializeToString()
        return body
    return json.dumps(json_format.MessageToDict(status)).encode()


def store_refusal(exc: InputError | StoreError) -> OtlpRefusal:
    """What the client hears when the store would not take its spans.

    400 when the spans themselves cannot be stored (retrying cannot help); 503 with
    ``Retry-After`` when the store cannot be written now (nothing was stored, so the
    exporter's retry is safe).
    """
    if isinstance(exc, InputError):
        return OtlpRefusal(400, f"the store refused the spans: {exc}")
    return OtlpRefusal(503, f"the store could not be written, retry later: {exc}", retry_after_s=5)


def _too_large(size: int, limit: int, *, at_least: bool = False) -> str:
    more = "at least " if at_least else ""
    return (
        f"the body is {more}{size} bytes, over the limit of {limit}; send smaller batches "
        "(the exporter's max_export_batch_size) or raise the collector's --max-body-bytes"
    )
