"""An OTLP/HTTP client for ``tracebraid import --endpoint``: spans to a remote ``serve``.

It speaks what any OpenTelemetry exporter speaks (protobuf ``POST /v1/traces``) and
retries what the specification says is retryable (429, 502, 503, 504 and connection
failures), honouring ``Retry-After``. The collector is idempotent, so a retry after an
unanswered request never duplicates anything. A batch refused as too large is split
in two and sent again.

Example::

    >>> sender = OtlpHttpSender("http://127.0.0.1:4318")
    >>> sender.url
    'http://127.0.0.1:4318/v1/traces'
    >>> sender.close()
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
from google.rpc.status_pb2 import Status  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tracebraid.collector.otlp import encode_protobuf
from tracebraid.errors import ConfigurationError, StoreError
from tracebraid.model import Span

__all__ = ["OtlpHttpSender", "SendResult"]

_RETRYABLE = frozenset((429, 502, 503, 504))


@dataclass(slots=True)
class SendResult:
    """What the collector made of the spans sent: accepted, and refused with reasons."""

    accepted: int = 0
    rejected: int = 0
    messages: list[str] = field(default_factory=list)


class OtlpHttpSender:
    """Posts spans as OTLP protobuf to a collector, retrying transient failures.

    ``endpoint`` is the collector's base URL or its full ``/v1/traces`` URL.
    ``give_up_s`` bounds how long one batch is retried before ``StoreError``.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        token: str | None = None,
        timeout_s: float = 60.0,
        give_up_s: float = 300.0,
    ) -> None:
        if not endpoint.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"--endpoint {endpoint!r} must be an http:// or https:// URL, "
                "e.g. http://127.0.0.1:4318"
            )
        self.url = (
            endpoint
            if endpoint.rstrip("/").endswith("/v1/traces")
            else (endpoint.rstrip("/") + "/v1/traces")
        )
        headers = {"Content-Type": "application/x-protobuf"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(headers=headers, timeout=timeout_s)
        self._give_up_s = give_up_s

    def send(self, spans: Sequence[Span]) -> SendResult:
        """Deliver ``spans``; returns once the collector has stored (or refused) them."""
        result = SendResult()
        if spans:
            self._send(list(spans), result)
        return result

    def _send(self, spans: list[Span], result: SendResult) -> None:
        body = encode_protobuf(spans)
        deadline = time.monotonic() + self._give_up_s
        delay = 0.5
        while True:
            try:
                response = self._client.post(self.url, content=body)
            except httpx.TransportError as exc:
                status, reason, wait = None, f"cannot reach {self.url}: {exc}", delay
            else:
                status = response.status_code
                if status == 200:
                    self._accepted(response.content, len(spans), result)
                    return
                reason = f"{status} {_status_message(response.content)}"
                if status == 413 and len(spans) > 1:
                    half = len(spans) // 2
                    self._send(spans[:half], result)
                    self._send(spans[half:], result)
                    return
                if status in (401, 403):
                    raise ConfigurationError(f"the collector at {self.url} refused: {reason}")
                if status not in _RETRYABLE:
                    result.rejected += len(spans)
                    result.messages.append(reason)
                    return
                wait = _retry_after(response) or delay
            if time.monotonic() + wait > deadline:
                raise StoreError(
                    f"gave up sending {len(spans)} spans to {self.url} after "
                    f"{self._give_up_s:.0f} s: {reason}"
                )
            time.sleep(wait)
            delay = min(delay * 2, 10.0)

    @staticmethod
    def _accepted(content: bytes, sent: int, result: SendResult) -> None:
        response = ExportTraceServiceResponse()
        try:
            response.ParseFromString(content)
        except Exception:  # a 200 without a parsable body still means stored
            response = ExportTraceServiceResponse()
        rejected = response.partial_success.rejected_spans
        result.accepted += sent - rejected
        if rejected or response.partial_success.error_message:
            result.rejected += rejected
            result.messages.append(response.partial_success.error_message)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return min(max(float(value), 0.0), 60.0)
    except ValueError:
        return None


def _status_message(content: bytes) -> str:
    status = Status()
    try:
        status.ParseFromString(content)
    except Exception:
        return content[:200].decode("utf-8", "replace")
    message: str = status.message
    return message
