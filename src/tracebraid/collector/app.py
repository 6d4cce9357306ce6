"""The collector's ASGI application: ``POST /v1/traces``, ``GET /healthz``, ``GET /stats``.

``create_app`` builds a Starlette app around a store. Other parts (the web UI) add
their own routes through ``extra_routes``; the bearer token, when set, guards every
route, theirs included.

A request to ``/v1/traces`` is answered only after its valid spans are committed to
the store (the write queue resolves it then), so a 200 means durable. Replays are
harmless: the store is idempotent on (trace ID, span ID).

Example::

    >>> from tracebraid.store import SqliteStore
    >>> app = create_app(SqliteStore(":memory:"), token="s3cret")
    >>> sorted(r.path for r in app.routes)
    ['/healthz', '/stats', '/v1/traces']
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Future
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tracebraid.collector.ingest_processes import IngestProcesses
from tracebraid.collector.otlp_http import (
    JSON,
    PROTOBUF,
    Encoding,
    OtlpRefusal,
    content_coding,
    decode_body,
    encoding_of,
    export_response,
    inflate,
    read_capped,
    status_body,
    store_refusal,
)
from tracebraid.collector.retention import RetainingStore
from tracebraid.collector.validate import Decoded, Rejection, describe_rejections
from tracebraid.collector.write_queue import QueueFull, WriteQueue
from tracebraid.errors import InputError, StoreError
from tracebraid.store.base import SharedWrites, SpanStore, StoreReopener, WriteResult

__all__ = ["BearerTokenGuard", "Collector", "Limits", "create_app", "ingest_reopener"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Limits:
    """How much the collector takes: per request, and queued for the store.

    ``max_body_bytes`` bounds a request body both as sent and once decompressed.
    ``max_queue_spans`` bounds spans waiting for the store and ``max_unqueued_requests``
    the requests being decoded (with ingest processes: decoded or stored) once their
    body is read: past either, requests are refused with 503 and ``Retry-After``.
    ``max_buffered_bytes`` (default 256 MiB, or two bodies if more) bounds the bodies
    held at once, charged as their bytes arrive and until decoded and stored: a body
    that never comes holds nothing, so stalled clients cannot take the slots of others.
    The memory all this bounds is ``memory.memory_bound`` (docs/operations.md).
    ``batch_spans`` is the size the writer merges requests up to per transaction.
    ``ingest_processes`` is how many worker processes decode and store requests (0:
    the collector process does; so does it for a store that other processes cannot
    write, one without ``SharedWrites`` or in memory).
    """

    max_body_bytes: int = 20 * 1024 * 1024
    max_queue_spans: int = 200_000
    max_unqueued_requests: int = 64
    batch_spans: int = 8192
    ingest_processes: int = 0
    max_buffered_bytes: int | None = None

    @property
    def buffered_bytes(self) -> int:
        """The bound on request bodies held at once (``max_buffered_bytes`` or its default)."""
        if self.max_buffered_bytes is not None:
            return self.max_buffered_bytes
        return max(256 * 1024 * 1024, 2 * self.max_body_bytes)


def ingest_reopener(store: SpanStore, limits: Limits) -> StoreReopener | None:
    """How ingest processes open ``store``; None when the collector process ingests itself.

    That is when ``limits`` asks for no ingest processes, or the store is one other
    processes cannot write (no ``SharedWrites``, or in memory).
    """
    if not limits.ingest_processes or not isinstance(store, SharedWrites):
        return None
    return store.reopener()


class Collector:
    """The OTLP/HTTP receiver: decodes, validates, queues, and answers once stored."""

    def __init__(self, store: SpanStore, limits: Limits | None = None) -> None:
        self.store = store
        self.limits = limits or Limits()
        self.queue = WriteQueue(
            store, max_spans=self.limits.max_queue_spans, batch_spans=self.limits.batch_spans
        )
        self.processes: IngestProcesses | None = None
        reopen = ingest_reopener(store, self.limits)
        if reopen is not None:
            self.processes = IngestProcesses(
                self.limits.ingest_processes, reopen, max_body_bytes=self.limits.max_body_bytes
            )
        self.requests = 0
        self.unqueued = 0  # requests being decoded (or stored, by ingest processes)
        self.buffered = 0  # bytes of request bodies held: being read, decoded or stored
        self.spans_rejected = 0
        self.refusals: Counter[int] = Counter()

    @property
    def routes(self) -> list[BaseRoute]:
        """The collector's own routes."""
        return [
            Route("/v1/traces", self.export_traces, methods=["POST"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/stats", self.stats, methods=["GET"]),
        ]

    async def export_traces(self, request: Request) -> Response:
        """``POST /v1/traces``: one OTLP export request, answered as the spec says."""
        self.requests += 1
        headers = request.headers
        encoding: Encoding = "json"
        try:
            encoding = encoding_of(headers.get("content-type"))
            coding = content_coding(headers.get("content-encoding"))
            # Refused before the body is read: under overload, memory stays flat.
            self._admit()
            # Charged until the spans are stored: in process, they wait for the store
            # decoded, and the charge is what bounds that memory too.
            charge = _Charge(self)
            try:
                limit = self.limits.max_body_bytes
                length = headers.get("content-length")
                raw = await read_capped(charge.counted(request.stream()), length, limit)
                self._admit()  # again: others may have finished reading meanwhile
                self.unqueued += 1
                try:
                    accepted, rejected, rejections, future = await self._decode_and_queue(
                        raw, coding, encoding
                    )
                finally:
                    self.unqueued -= 1
                    del raw
                total = accepted + rejected
                if rejected and not accepted:
                    message = describe_rejections(rejections, total, rejected=rejected)
                    raise OtlpRefusal(400, message)
                if future is not None:
                    await self._committed(future)
            finally:
                charge.release()
        except OtlpRefusal as refusal:
            return self._refuse(encoding, refusal)
        except ClientDisconnect:
            # Gone mid-body (or cut by the body deadline): nothing was stored, no one to tell.
            return Response(status_code=400)
        message = describe_rejections(rejections, total, rejected=rejected) if rejected else ""
        body = export_response(encoding, rejected, message)
        return Response(body, media_type=PROTOBUF if encoding == "protobuf" else JSON)

    def _admit(self) -> None:
        """503 with ``Retry-After`` unless a request can be taken on now."""
        if self.queue.full() or self.unqueued >= self.limits.max_unqueued_requests:
            raise _throttled(self.queue)

    def saturation(self) -> str | None:
        """Why an export would be refused now (None when it would be taken)."""
        if self.queue.full():
            return f"the write queue is full ({self.queue.stats().depth_spans} spans)"
        if self.unqueued >= self.limits.max_unqueued_requests:
            return f"{self.unqueued} requests are being decoded or stored, the most at once"
        if self.buffered >= self.limits.buffered_bytes:
            return f"{self.buffered} bytes of request bodies are held, the most at once"
        return None

    async def _decode_and_queue(
        self, raw: bytes, coding: str, encoding: Encoding
    ) -> tuple[int, int, list[Rejection], Future[WriteResult] | None]:
        """Spans accepted and refused, examples of why, the future of their commit (or None)."""
        if self.processes is not None:
            # Decoded and committed by an ingest process: nothing left to wait for.
            ingested = await self.processes.ingest(raw, coding, encoding)
            del raw
            self.spans_rejected += ingested.rejected_count
            return ingested.accepted, ingested.rejected_count, ingested.rejections, None
        try:
            # Off the event loop, so it keeps serving while a large body decodes; in turn
            # with the store writer (see WriteQueue.turn).
            decoded = await run_in_threadpool(self._decode, raw, coding, encoding)
            del raw
            rejected = decoded.rejected_count
            self.spans_rejected += rejected
            if not decoded.spans:
                return 0, rejected, decoded.rejections, None
            future = self.queue.submit(decoded.spans)
            return len(decoded.spans), rejected, decoded.rejections, future
        except QueueFull as exc:
            raise _throttled(self.queue, str(exc)) from None

    def _decode(self, raw: bytes, coding: str, encoding: Encoding) -> Decoded:
        with self.queue.turn:
            return decode_body(inflate(raw, coding, limit=self.limits.max_body_bytes), encoding)

    async def _committed(self, future: Future[WriteResult]) -> None:
        try:
            # Shielded: a client that hangs up must not cancel the write for others.
            await asyncio.shield(asyncio.wrap_future(future))
        except (InputError, StoreError) as exc:
            raise store_refusal(exc) from None

    def _refuse(self, encoding: Encoding, refusal: OtlpRefusal) -> Response:
        self.refusals[refusal.status] += 1
        headers = {}
        if refusal.retry_after_s is not None:
            headers["Retry-After"] = str(refusal.retry_after_s)
        return Response(
            status_body(encoding, refusal.status, refusal.message),
            status_code=refusal.status,
            headers=headers,
            media_type=PROTOBUF if encoding == "protobuf" else JSON,
        )

    async def healthz(self, request: Request) -> Response:
        """``GET /healthz``: 200 when an export would be taken now; 503 with the reason
        and ``Retry-After`` when the store writer has stopped or exports are refused
        (saturated), so a load balancer can send exports elsewhere meanwhile."""
        if not self.queue.alive:
            return JSONResponse(
                {"status": "the store writer has stopped"},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        saturated = self.saturation()
        if saturated is not None:
            return JSONResponse(
                {"status": "saturated", "reason": saturated},
                status_code=503,
                headers={"Retry-After": str(self.queue.retry_after_s())},
            )
        return JSONResponse({"status": "ok"})

    async def stats(self, request: Request) -> Response:
        """``GET /stats``: spans accepted and rejected, queue depth, store size."""
        return JSONResponse(await self.snapshot())

    async def snapshot(self) -> dict[str, Any]:
        """The figures ``/stats`` serves, as a dict."""
        queue = asdict(self.queue.stats())
        restarts = 0
        if self.processes is not None:
            # Requests the ingest processes committed count as the writer's would.
            ingest = asdict(self.processes.stats())
            restarts = ingest.pop("restarts")
            for name, value in ingest.items():
                queue[name] += value
        try:
            stored: int | None = await run_in_threadpool(self.store.span_count)
        except Exception:  # a busy or broken store must not break the stats page
            _log.exception("counting stored spans failed")
            stored = None
        figures = {
            "requests": self.requests,
            "spans_accepted": queue.pop("spans_committed"),
            "spans_rejected": self.spans_rejected,
            "refusals": {str(status): n for status, n in sorted(self.refusals.items())},
            "queue_depth_spans": queue.pop("depth_spans"),
            "queue_capacity_spans": queue.pop("capacity_spans"),
            "ingest_processes": 0 if self.processes is None else self.processes.processes,
            "ingest_process_restarts": restarts,
            "requests_in_progress": self.unqueued,
            "buffered_bytes": self.buffered,
            "buffered_bytes_capacity": self.limits.buffered_bytes,
            "store_spans": stored,
            **queue,
        }
        if isinstance(self.store, RetainingStore):
            figures["retention"] = asdict(await run_in_threadpool(self.store.retention_stats))
        return figures

    async def start(self) -> None:
        """Start the ingest processes, if any, before the first request needs them."""
        if self.processes is not None:
            await self.processes.start()

    async def close(self) -> None:
        """Finish and stop ingest, write what is queued, stop the writer (the store stays open)."""
        if self.processes is not None:
            await run_in_threadpool(self.processes.close)
        await run_in_threadpool(self.queue.close)


class _Charge:
    """A request's share of ``Collector.buffered``: charged per chunk as its body arrives.

    Past ``Limits.buffered_bytes`` the request is refused with 503 (its bytes released):
    bodies held are bounded in bytes, and one that has not come holds nothing.
    """

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.held = 0

    async def counted(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        collector = self.collector
        budget = collector.limits.buffered_bytes
        async for chunk in chunks:
            if collector.buffered + len(chunk) > budget:
                raise OtlpRefusal(
                    503,
                    f"{collector.buffered} bytes of request bodies are held, the most at "
                    "once; retry after the Retry-After delay",
                    retry_after_s=collector.queue.retry_after_s(),
                )
            collector.buffered += len(chunk)
            self.held += len(chunk)
            yield chunk

    def release(self) -> None:
        self.collector.buffered -= self.held
        self.held = 0


def _throttled(queue: WriteQueue, message: str | None = None) -> OtlpRefusal:
    return OtlpRefusal(
        503,
        message or "the write queue is full; retry after the Retry-After delay",
        retry_after_s=queue.retry_after_s(),
    )


class BearerTokenGuard:
    """ASGI middleware: every HTTP and WebSocket request must carry ``Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        supplied = b""
        content_type = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                supplied = value
            elif name == b"content-type":
                content_type = value
        # The scheme is case-insensitive (RFC 7235): "bearer" is as good as "Bearer".
        scheme, _, credentials = supplied.partition(b" ")
        if scheme.lower() == b"bearer":
            supplied = b"Bearer " + credentials.strip()
        if hmac.compare_digest(supplied, self._expected):
            await self.app(scope, receive, send)
            return
        message = (
            "a bearer token is required: send 'Authorization: Bearer <token>' "
            "(the token given to tracebraid serve --token or TRACEBRAID_TOKEN)"
            if not supplied
            else "the bearer token is wrong"
        )
        encoding: Encoding = "protobuf" if content_type.startswith(PROTOBUF.encode()) else "json"
        response = Response(
            status_body(encoding, 401, message),
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="tracebraid"'},
            media_type=PROTOBUF if encoding == "protobuf" else JSON,
        )
        if scope["type"] == "http":
            await response(scope, receive, send)
        else:
            await send({"type": "websocket.close", "code": 1008})


def create_app(
    store: SpanStore,
    *,
    token: str | None = None,
    limits: Limits | None = None,
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """The collector app over ``store``; ``extra_routes`` are served beside it, same token.

    ``app.state.collector`` is the ``Collector``. The store is not closed by the app:
    whoever opened it closes it.
    """
    collector = Collector(store, limits)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await collector.start()
        yield
        await collector.close()

    app = Starlette(routes=[*collector.routes, *extra_routes], lifespan=lifespan)
    app.state.collector = collector
    if token:
        app.add_middleware(BearerTokenGuard, token=token)
    return app
