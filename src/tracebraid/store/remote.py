"""A store on another machine: ``--store http://collector:4318`` reads a ``tracebraid serve``.

``RemoteStore`` is a ``SpanStore`` over the collector's HTTP API (the store reads of
``tracebraid.views.store_api``), so every command runs unchanged against a remote
collector: the spans come over the wire exactly as stored (``tracebraid.store.wire``)
and are analysed locally.
Writes go where any exporter's go, ``POST /v1/traces``. The bearer token is the one
``serve`` takes: ``token=``, or the ``TRACEBRAID_TOKEN`` environment variable.

Example::

    $ TRACEBRAID_TOKEN=s3cret tracebraid show order_441 --store https://collector:4318
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator, Sequence
from typing import Any

import httpx
import msgspec

from tracebraid.collector.remote import OtlpHttpSender
from tracebraid.errors import ConfigurationError, InputError, StoreError
from tracebraid.model import CorrelationId, EventId, Span, SpanId, TraceId
from tracebraid.store.base import TraceSummary, WriteResult
from tracebraid.store.wire import decode_spans, decode_summaries

__all__ = ["TOKEN_ENV", "RemoteStore", "open_remote"]

TOKEN_ENV = "TRACEBRAID_TOKEN"
_PREFIX = "/api/store"
_END_OF_IDS = "."  # tracebraid.views.store_api.END_OF_IDS; the store must not import views
# Keys a request: far below the server's bound, and a URL of that many IDs stays short
# enough for every proxy in between (about 40 kB).
_KEYS_PER_REQUEST = 1000


class _TraceIds(msgspec.Struct):
    trace_ids: list[str]


class _Count(msgspec.Struct):
    spans: int


_decode_trace_ids = msgspec.json.Decoder(_TraceIds).decode
_decode_count = msgspec.json.Decoder(_Count).decode


def _start_order(span: Span) -> tuple[int, str, str]:
    return (span.start_ns, span.trace_id, span.span_id)


class RemoteStore:
    """The store of a remote ``tracebraid serve``, read through its API.

    ``url`` is the collector's base URL (``http://127.0.0.1:4318``). Reads need the
    collector's API, which ``serve`` mounts unless started with ``--no-ui``.
    """

    def __init__(self, url: str, *, token: str | None = None, timeout_s: float = 60.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"a remote store URL starts with http:// or https://: {url!r}")
        self.url = url.rstrip("/")
        token = token if token is not None else (os.environ.get(TOKEN_ENV) or None)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)
        self._sender = OtlpHttpSender(self.url, token=token, timeout_s=timeout_s)

    # -- the wire --------------------------------------------------------------------

    def _get(self, path: str, params: Sequence[tuple[str, str | int]] = ()) -> httpx.Response:
        try:
            response = self._client.get(f"{_PREFIX}{path}", params=list(params))
        except httpx.TransportError as exc:
            raise StoreError(f"cannot reach the collector at {self.url}: {exc}") from None
        self._check(response)
        return response

    def _check(self, response: httpx.Response) -> None:
        status = response.status_code
        if status == 200:
            return
        if status == 401:
            raise ConfigurationError(
                f"the collector at {self.url} wants a bearer token: set {TOKEN_ENV} to the "
                "token its serve was given"
            )
        if status == 404:
            raise ConfigurationError(
                f"{self.url} serves no tracebraid store API ({response.request.url.path} "
                "answered 404): is it a tracebraid serve started without --no-ui? "
                "(ClickHouse takes clickhouse:// URLs)"
            )
        try:
            message = str(response.json()["error"])
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        if status == 400:
            raise InputError(f"the collector at {self.url} refused the request: {message}")
        raise StoreError(f"the collector at {self.url} answered {status}: {message}")

    def _spans(self, params: Sequence[tuple[str, str]]) -> list[Span]:
        body = self._get("/spans", params).content
        try:
            spans = decode_spans(body)
        except InputError as exc:
            raise StoreError(f"{self.url} sent spans that do not decode: {exc}") from None
        return sorted(spans, key=_start_order)

    def _spans_by_keys(self, name: str, keys: Collection[str]) -> list[Span]:
        unique = sorted(set(keys))
        found: dict[tuple[str, str], Span] = {}
        for i in range(0, len(unique), _KEYS_PER_REQUEST):
            chunk = unique[i : i + _KEYS_PER_REQUEST]
            for span in self._spans([(name, key) for key in chunk]):
                found[span.key] = span
        return sorted(found.values(), key=_start_order)

    # -- SpanStore -------------------------------------------------------------------

    def write(self, spans: Sequence[Span]) -> WriteResult:
        """Send ``spans`` to the collector; returns once it has committed them.

        A collector does not say which spans it held already, so every accepted span
        counts as inserted. Spans it refuses raise ``InputError`` with its reasons.
        """
        result = self._sender.send(spans)
        if result.rejected:
            raise InputError(
                f"the collector at {self.url} refused {result.rejected} spans: "
                + "; ".join(result.messages)
            )
        return WriteResult(inserted=result.accepted, duplicates=0)

    def spans_of_trace(self, trace_id: TraceId) -> list[Span]:
        """Every span of one trace, in start order."""
        return self._spans([("trace_id", trace_id)])

    def spans_of_traces(self, trace_ids: Collection[TraceId]) -> list[Span]:
        """Every span of the given traces, in start order."""
        return self._spans_by_keys("trace_id", trace_ids)

    def spans_of_correlation(self, correlation_id: CorrelationId) -> list[Span]:
        """Every span carrying this correlation ID, in start order."""
        return self._spans([("correlation_id", correlation_id)])

    def spans_by_event(self, event_id: EventId) -> list[Span]:
        """Every span whose event ID or causation ID is ``event_id``."""
        return self._spans([("event_id", event_id)])

    def spans_by_events(self, event_ids: Collection[EventId]) -> list[Span]:
        """Every span whose event ID or causation ID is one of ``event_ids``, in start order."""
        return self._spans_by_keys("event_id", event_ids)

    def spans_linking_to(self, trace_id: TraceId, span_id: SpanId) -> list[Span]:
        """Every span holding a link to (``trace_id``, ``span_id``)."""
        return self._spans([("linked", f"{trace_id}:{span_id}")])

    def trace_ids_with(
        self,
        *,
        correlation_ids: Collection[CorrelationId] = (),
        event_ids: Collection[EventId] = (),
        link_targets: Collection[tuple[TraceId, SpanId]] = (),
    ) -> set[TraceId]:
        """The traces holding a span with one of the keys (see ``SpanStore``)."""
        keys: list[tuple[str, str]] = [("correlation_id", c) for c in sorted(set(correlation_ids))]
        keys += [("event_id", e) for e in sorted(set(event_ids))]
        keys += [("linked", f"{t}:{s}") for t, s in sorted(set(link_targets))]
        found: set[TraceId] = set()
        for i in range(0, len(keys), _KEYS_PER_REQUEST):
            page = _decode_trace_ids(
                self._get("/trace-ids", keys[i : i + _KEYS_PER_REQUEST]).content
            )
            found.update(TraceId(t) for t in page.trace_ids)
        return found

    def recent_traces(self, limit: int = 50, before_ns: int | None = None) -> list[TraceSummary]:
        """The most recently started traces, newest first, started before ``before_ns``."""
        params: list[tuple[str, str | int]] = [("limit", limit)]
        if before_ns is not None:
            params.append(("before_ns", before_ns))
        body = self._get("/recent", params).content
        try:
            return decode_summaries(body)
        except InputError as exc:
            raise StoreError(f"{self.url} sent summaries that do not decode: {exc}") from None

    def iter_trace_ids(self) -> Iterator[TraceId]:
        """Every stored trace ID, streamed from the collector."""
        try:
            with self._client.stream("GET", f"{_PREFIX}/trace-ids/all") as response:
                if response.status_code != 200:
                    response.read()
                    self._check(response)
                for line in response.iter_lines():
                    if line == _END_OF_IDS:
                        return
                    if line:
                        yield TraceId(line)
        except httpx.TransportError as exc:
            raise StoreError(f"the trace IDs from {self.url} were cut short: {exc}") from None
        raise StoreError(f"the trace IDs from {self.url} were cut short: the store failed midway")

    def span_count(self) -> int:
        """How many spans the collector's store holds."""
        return _decode_count(self._get("/count").content).spans

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()
        self._sender.close()

    def __enter__(self) -> RemoteStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteStore({self.url!r})"


def open_remote(url: str) -> RemoteStore:
    """The ``http://`` and ``https://`` store opener (``open_store``)."""
    return RemoteStore(url)
