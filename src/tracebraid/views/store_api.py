"""The store's own reads over HTTP: what ``--store http://collector:4318`` reads remotely.

Every ``SpanStore`` read has one ``GET /api/store/...`` endpoint here, so a
``RemoteStore`` (``tracebraid.store.remote``) on another machine is a full store and
every command (``show``, ``why``, ``pending``, ``lint`` ...) runs there unchanged,
analysing locally what the collector's store holds. Spans travel exactly as stored
(``tracebraid.store.wire``: MessagePack, where OTLP would add a ``service.name`` and
turn arrays into lists); trace IDs, summaries and counts as JSON. Writes need nothing
new: ``POST /v1/traces``.

==========================================  =============================================
``/api/store/spans?trace_id=``              ``spans_of_traces`` (the parameter repeats)
``/api/store/spans?correlation_id=``        ``spans_of_correlation``
``/api/store/spans?event_id=``              ``spans_by_events`` (repeats)
``/api/store/spans?linked=TRACE:SPAN``      ``spans_linking_to``
``/api/store/trace-ids``                    ``trace_ids_with`` (``correlation_id``,
                                            ``event_id``, ``linked``, each repeating)
``/api/store/trace-ids/all``                ``iter_trace_ids``, streamed, one a line
``/api/store/recent?limit=&before_ns=``     ``recent_traces``
``/api/store/count``                        ``span_count``
==========================================  =============================================
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import TypedDict

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from tracebraid.errors import InputError, StoreError
from tracebraid.model import CorrelationId, EventId, Span, SpanId, TraceId
from tracebraid.store.base import SpanStore
from tracebraid.store.wire import (
    SPANS_MEDIA_TYPE,
    SummaryDocument,
    encode_spans,
    encode_summaries,
)
from tracebraid.views.web.openapi import Endpoint, Param

__all__ = [
    "END_OF_IDS",
    "STORE_API_PREFIX",
    "CountDocument",
    "StoreApi",
    "TraceIdsDocument",
    "error_response",
    "unreadable_store",
]

STORE_API_PREFIX = "/api/store"
END_OF_IDS = "."
"""The last line of ``/api/store/trace-ids/all``: every ID before it was sent."""
_MAX_KEYS = 10_000
_MAX_RECENT = 1_000_000


class TraceIdsDocument(TypedDict):
    """Trace IDs, sorted."""

    trace_ids: list[str]


class CountDocument(TypedDict):
    """How many spans the store holds."""

    spans: int


def error_response(status: int, message: str, *, retry_after_s: int | None = None) -> Response:
    """Every API error: ``{"error": message, "status": status}`` with that status."""
    headers = None if retry_after_s is None else {"Retry-After": str(retry_after_s)}
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


def unreadable_store(exc: StoreError) -> Response:
    """503 with ``Retry-After``: the store failed this read (busy, or its server away)."""
    return error_response(503, f"the store cannot be read now, retry: {exc}", retry_after_s=2)


def _keys(request: Request, name: str) -> list[str]:
    values = [v.strip() for v in request.query_params.getlist(name) if v.strip()]
    if len(values) > _MAX_KEYS:
        raise InputError(f"at most {_MAX_KEYS} {name} values a request, not {len(values)}")
    return values


def _link_targets(request: Request) -> list[tuple[TraceId, SpanId]]:
    targets = []
    for value in _keys(request, "linked"):
        trace_id, sep, span_id = value.partition(":")
        if not sep or len(trace_id) != 32 or len(span_id) != 16:
            raise InputError(f"linked must be TRACE_ID:SPAN_ID (32 and 16 hex), not {value!r}")
        targets.append((TraceId(trace_id), SpanId(span_id)))
    return targets


_INT64_MAX = 2**63 - 1


def _int(request: Request, name: str, default: int | None) -> int | None:
    text = request.query_params.get(name, "").strip()
    if not text:
        return default
    # Bounded before int(): a 5,000-digit number is refused by length, not by int()'s limit.
    if len(text) > 20:
        shown = f"{text[:30]!r}..."
        raise InputError(f"{name} must be an integer between 0 and {_INT64_MAX}, not {shown}")
    try:
        value = int(text)
    except ValueError:
        raise InputError(f"{name} must be an integer, not {text!r}") from None
    if not -_INT64_MAX <= value <= _INT64_MAX:
        raise InputError(f"{name} must be an integer between 0 and {_INT64_MAX}, not {value}")
    return value


class StoreApi:
    """``SpanStore`` reads as HTTP endpoints over one store."""

    def __init__(self, store: SpanStore) -> None:
        self.store = store

    async def _answer(self, build: Callable[[], object], *, spans: bool = False) -> Response:
        try:
            result = await run_in_threadpool(build)
        except InputError as exc:
            return error_response(400, str(exc))
        except StoreError as exc:
            return unreadable_store(exc)
        headers = {"Cache-Control": "no-store"}
        if spans:
            assert isinstance(result, list)
            return Response(encode_spans(result), media_type=SPANS_MEDIA_TYPE, headers=headers)
        return Response(msgspec.json.encode(result), media_type="application/json", headers=headers)

    async def spans(self, request: Request) -> Response:
        """The spans one kind of key selects (exactly one kind a request)."""

        def build() -> list[Span]:
            traces = _keys(request, "trace_id")
            correlations = _keys(request, "correlation_id")
            events = _keys(request, "event_id")
            links = _link_targets(request)
            given = [bool(traces), bool(correlations), bool(events), bool(links)]
            if sum(given) != 1 or len(correlations) > 1 or len(links) > 1:
                raise InputError(
                    "give trace_id (repeatable), one correlation_id, event_id (repeatable) "
                    "or one linked=TRACE_ID:SPAN_ID"
                )
            if traces:
                return self.store.spans_of_traces([TraceId(t) for t in traces])
            if correlations:
                return self.store.spans_of_correlation(CorrelationId(correlations[0]))
            if events:
                return self.store.spans_by_events([EventId(e) for e in events])
            return self.store.spans_linking_to(*links[0])

        return await self._answer(build, spans=True)

    async def trace_ids(self, request: Request) -> Response:
        """``trace_ids_with``: the traces holding any of the keys."""

        def build() -> TraceIdsDocument:
            found = self.store.trace_ids_with(
                correlation_ids=[CorrelationId(c) for c in _keys(request, "correlation_id")],
                event_ids=[EventId(e) for e in _keys(request, "event_id")],
                link_targets=_link_targets(request),
            )
            return {"trace_ids": sorted(found)}

        return await self._answer(build)

    async def all_trace_ids(self, request: Request) -> Response:
        """``iter_trace_ids``, streamed as text, one ID a line (a fleet may hold millions)."""

        def lines() -> Iterator[str]:
            # Batched: one chunk of the response per thousand IDs, not per ID.
            ids = self.store.iter_trace_ids()
            while batch := list(itertools.islice(ids, 1000)):
                yield "".join(f"{trace_id}\n" for trace_id in batch)
            # The status is sent before the first ID: a store failing midway can only cut
            # the stream short, and a reader that misses this line knows it was.
            yield f"{END_OF_IDS}\n"

        # A sync iterator: Starlette drains it in a worker thread, off the event loop.
        return StreamingResponse(lines(), media_type="text/plain")

    async def recent(self, request: Request) -> Response:
        """``recent_traces``: newest first."""

        def build() -> list[SummaryDocument]:
            limit = _int(request, "limit", 50)
            assert limit is not None
            if not 0 <= limit <= _MAX_RECENT:
                raise InputError(f"limit must be between 0 and {_MAX_RECENT}, not {limit}")
            before_ns = _int(request, "before_ns", None)
            if before_ns is not None and before_ns < 0:
                raise InputError(f"before_ns must be Unix nanoseconds, 0 or more, not {before_ns}")
            return encode_summaries(self.store.recent_traces(limit, before_ns))

        return await self._answer(build)

    async def count(self, request: Request) -> Response:
        """``span_count``."""
        return await self._answer(lambda: {"spans": self.store.span_count()})

    def endpoints(self) -> Sequence[Endpoint]:
        """The endpoints, for the API's routes and its OpenAPI document."""
        p = STORE_API_PREFIX
        linked = Param("linked", "TRACE_ID:SPAN_ID of a span that others link to")
        correlation = Param("correlation_id", "a correlation ID (e.g. order_441)")
        event = Param("event_id", "an event ID or causation ID; repeatable")
        return [
            Endpoint(
                f"{p}/spans", "store_spans", "spans by trace, correlation, event or link",
                list, self.spans,
                (Param("trace_id", "a trace ID; repeatable"), correlation, event, linked),
                "The spans exactly as stored, as tracebraid.store.wire encodes them.",
                media_type=SPANS_MEDIA_TYPE,
            ),
            Endpoint(
                f"{p}/trace-ids", "store_trace_ids", "traces holding any of the keys",
                TraceIdsDocument, self.trace_ids, (correlation, event, linked),
            ),
            Endpoint(
                f"{p}/trace-ids/all", "store_all_trace_ids", "every trace ID, one a line",
                str, self.all_trace_ids, media_type="text/plain",
            ),
            Endpoint(
                f"{p}/recent", "store_recent", "the most recently started traces",
                list[SummaryDocument], self.recent,
                (Param("limit", f"how many (0-{_MAX_RECENT}, default 50)", "integer",
                       minimum=0, maximum=_MAX_RECENT),
                 Param("before_ns", "only traces started before (Unix ns)", "integer",
                       minimum=0, maximum=_INT64_MAX)),
            ),
            Endpoint(f"{p}/count", "store_count", "how many spans are stored", CountDocument,
                     self.count),
        ]  # fmt: skip
