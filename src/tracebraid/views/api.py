"""The JSON API the web UI (and the CLI's remote mode) reads: ``GET /api/...``.

Every answer is a versioned document (``"schema": "tracebraid.<kind>/v1"``), the same
the CLI prints with ``--json``; errors are ``{"error": "...", "status": N}`` with
404 for a key the store does not hold, 400 for a bad parameter, 503 when the
store cannot be read. ``GET /api/openapi.json`` describes all of it.

=================================  ====================================================
``/api/search``                    traces newest first, filtered, keyset-paged
``/api/facets``                    services and event names of recent traces
``/api/workflows/{key}``           ``tracebraid.workflow/v1`` (as ``show --json``)
``/api/workflows/{key}/view``      workflow, latency and spans from one analysis
``/api/workflows/{key}/latency``   ``tracebraid.latency/v1``
``/api/workflows/{key}/spans``     ``tracebraid.spans/v1``: identities, attributes
``/api/workflows/{key}/mermaid``   ``tracebraid.mermaid/v1``
``/api/workflows/{key}/why``       ``tracebraid.why/v1`` for ``?target=``
``/api/spans/{trace_id}/{span_id}``  ``tracebraid.span/v1``: one span, every detail
``/api/pending``, ``/api/retries``  across recent workflows
``/api/lint``                      ``tracebraid.lint/v1`` over a time window
``/api/store/...``                 the store's own reads (``tracebraid.views.store_api``)
=================================  ====================================================

``key`` is a trace, correlation or event ID; with ``?scope=trace`` a trace ID is read
alone instead of with the rest of its workflow. The store is read and analysed in a
worker thread, so the collector sharing the event loop keeps answering exporters.

Example::

    from starlette.applications import Starlette
    app = Starlette(routes=api_routes(WorkflowReader(store)))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tracebraid import __version__
from tracebraid.analysis import latency, parse_duration, why
from tracebraid.errors import ConfigurationError, InputError, StoreError
from tracebraid.store.search import MAX_PAGE, TraceQuery, search_traces
from tracebraid.views.counts import analysed_counts
from tracebraid.views.documents import (
    latency_document,
    mermaid_document,
    why_document,
    workflow_document,
)
from tracebraid.views.mermaid import to_mermaid
from tracebraid.views.recent import pending_document, retries_document
from tracebraid.views.schema import (
    LatencyDocument,
    MermaidDocument,
    PendingDocument,
    RetriesDocument,
    WhyDocument,
    WorkflowDocument,
)
from tracebraid.views.source import LoadedWorkflow, UnknownKeyError, recent
from tracebraid.views.store_api import StoreApi, error_response, unreadable_store
from tracebraid.views.web.openapi import Endpoint, Param, openapi_document
from tracebraid.views.web.reader import Loaded, WorkflowReader
from tracebraid.views.web.records import (
    FacetsDocument,
    SearchDocument,
    SpanDocument,
    SpansDocument,
    ViewDocument,
    facets_document,
    search_document,
    span_document,
    spans_document,
)

__all__ = ["API_PREFIX", "Api", "api_routes"]

API_PREFIX = "/api"
_PAGE = 50
_RECENT_LIMIT = 50
_FACET_TRACES = 200
_LINT_SINCE = "24h"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

_KEY = Param("key", "a trace ID, correlation ID (e.g. order_441) or event ID", where="path")
_SCOPE = Param(
    "scope",
    "workflow (default): every trace the workflow touched; trace: the trace ID's spans alone",
    enum=("workflow", "trace"),
)
_SINCE = Param("since", "only traces started this long ago or later, e.g. 15m or 2h")
_LIMIT = Param(
    "limit",
    f"how many recent traces to look at (1-{MAX_PAGE})",
    "integer",
    minimum=1,
    maximum=MAX_PAGE,
)
_MAX_MS = 9_000_000_000_000.0
"""Largest duration in milliseconds a query takes: its nanoseconds must fit in 64 bits."""
_INT64_MAX = 2**63 - 1
_MAX_PARAM = 1024  # characters in any one number or cursor; more is not one


def _flag(request: Request, name: str) -> bool | None:
    text = request.query_params.get(name)
    if text is None or text == "":
        return None
    lowered = text.lower()
    if lowered in _TRUE or lowered in _FALSE:
        return lowered in _TRUE
    raise InputError(f"{name} must be true or false, not {text!r}")


def _number(
    request: Request, name: str, *, default: float | None = None, maximum: float = _MAX_MS
) -> float | None:
    """A finite number from 0 to ``maximum``; 400 for NaN, infinity or out of range."""
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    try:
        value = float(text[:_MAX_PARAM])
    except ValueError:
        raise InputError(f"{name} must be a number, not {_shown(text)}") from None
    if value < 0:
        raise InputError(f"{name} cannot be negative, got {_shown(text)}")
    if not value <= maximum:  # True for NaN: refused too
        raise InputError(f"{name} must be a number from 0 to {maximum:g}, not {_shown(text)}")
    return value


def _limit(request: Request, *, default: int) -> int:
    text = request.query_params.get("limit")
    if text is None or text == "":
        return default
    try:
        limit = int(text[:_MAX_PARAM].strip())
    except ValueError:
        raise InputError(f"limit must be a number, a whole one, not {_shown(text)}") from None
    if not 1 <= limit <= MAX_PAGE:
        raise InputError(f"limit must be between 1 and {MAX_PAGE}, not {_shown(text)}")
    return limit


def _cursor(request: Request) -> str | None:
    """``?cursor=`` checked for range here, so the store never sees a number it cannot bind."""
    cursor = _text(request, "cursor")
    if cursor is None:
        return None
    start = cursor.partition(":")[0]
    if len(cursor) > _MAX_PARAM or not start.isdigit() or int(start) > _INT64_MAX:
        raise InputError(
            f"bad cursor {_shown(cursor)}: pass back a page's next_cursor unchanged, "
            "or leave it out for the newest traces"
        )
    return cursor


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:37]) + "..."


def _text(request: Request, name: str) -> str | None:
    text = request.query_params.get(name, "").strip()
    return text or None


def _since_ns(text: str | None, *, now_ns: int) -> int | None:
    """``?since=`` (a duration ago, e.g. 15m) as Unix nanoseconds; None when not given.

    A duration longer than the time since 1970 means every trace: it is clamped to 0.
    """
    if text is None:
        return None
    if len(text) > 40:
        raise InputError(f"since must be a duration such as 15m or 2h, not {_shown(text)}")
    return max(0, now_ns - parse_duration(text, where="since"))


def _ms_to_ns(value: float | None) -> int | None:
    return None if value is None else round(value * 1_000_000)


class Api:
    """The API's handlers over one ``WorkflowReader``; ``endpoints`` lists them."""

    def __init__(self, reader: WorkflowReader) -> None:
        self.reader = reader
        self.store = reader.store
        self.store_api = StoreApi(reader.store)
        from tracebraid.views.web.console_api import ConsoleApi

        self.console = ConsoleApi(reader, self._answer, self._query)

    async def _answer(self, build: Callable[[], Mapping[str, Any]]) -> Response:
        return await self._answer_json(lambda: msgspec.json.encode(build()))

    async def _answer_json(self, build: Callable[[], bytes]) -> Response:
        try:
            encoded = await run_in_threadpool(build)
        except UnknownKeyError as exc:
            return error_response(404, str(exc))
        except (InputError, ConfigurationError) as exc:
            return error_response(400, str(exc))
        except StoreError as exc:
            return unreadable_store(exc)
        except OverflowError as exc:
            # Every parameter is range-checked above; this is the net under that rule.
            return error_response(400, f"a parameter is out of range: {exc}")
        # msgspec: several times faster than json for the multi-megabyte views, and a
        # NaN attribute value becomes null instead of failing the response.
        return Response(
            encoded,
            media_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    # -- search ----------------------------------------------------------------------

    def _query(self, request: Request) -> TraceQuery:
        return TraceQuery(
            service=_text(request, "service"),
            event_name=_text(request, "event_name"),
            correlation_id=_text(request, "correlation_id"),
            event_id=_text(request, "event_id"),
            has_retries=_flag(request, "has_retries"),
            has_pending=_flag(request, "has_pending"),
            has_errors=_flag(request, "has_errors"),
            has_broken=_flag(request, "has_broken"),
            has_failed=_flag(request, "has_failed"),
            min_duration_ns=_ms_to_ns(_number(request, "min_duration_ms")),
            max_duration_ns=_ms_to_ns(_number(request, "max_duration_ms")),
            since_ns=_since_ns(_text(request, "since"), now_ns=self.reader.now_ns()),
            cursor=_cursor(request),
            limit=_limit(request, default=_PAGE),
        )

    async def search(self, request: Request) -> Response:
        def build() -> SearchDocument:
            page = search_traces(self.store, self._query(request), facts=analysed_counts)
            return search_document(page)

        return await self._answer(build)

    async def facets(self, request: Request) -> Response:
        def build() -> FacetsDocument:
            page = search_traces(self.store, TraceQuery(limit=_FACET_TRACES), facts=analysed_counts)
            return facets_document(page)

        return await self._answer(build)

    # -- one workflow ----------------------------------------------------------------

    def _scope(self, request: Request) -> str:
        scope = request.query_params.get("scope", "workflow")
        if scope not in ("workflow", "trace"):
            raise InputError(f"scope must be workflow or trace, not {scope!r}")
        return scope

    def _load(self, request: Request) -> Loaded:
        """What the path's ``key`` names: its workflow, or with ``?scope=trace`` the trace."""
        return self.reader.load(request.path_params["key"], self._scope(request))

    async def workflow(self, request: Request) -> Response:
        def build() -> WorkflowDocument:
            loaded = self._load(request)
            return workflow_document(loaded.analysis, key=loaded.key)

        return await self._answer(build)

    async def view(self, request: Request) -> Response:
        def build() -> bytes:
            return self.reader.view_json(request.path_params["key"], self._scope(request))

        return await self._answer_json(build)

    async def latency(self, request: Request) -> Response:
        def build() -> LatencyDocument:
            loaded = self._load(request)
            return latency_document(latency(loaded.analysis), key=loaded.key)

        return await self._answer(build)

    async def spans(self, request: Request) -> Response:
        def build() -> SpansDocument:
            loaded = self._load(request)
            return spans_document(
                loaded.spans, key=loaded.key, truncated=loaded.truncated, limited=loaded.limited
            )

        return await self._answer(build)

    async def span(self, request: Request) -> Response:
        def build() -> SpanDocument:
            found = self.reader.span(
                request.path_params["trace_id"], request.path_params["span_id"]
            )
            return span_document(found)

        return await self._answer(build)

    async def mermaid(self, request: Request) -> Response:
        def build() -> MermaidDocument:
            loaded = self._load(request)
            return mermaid_document(to_mermaid(loaded.analysis), key=loaded.key)

        return await self._answer(build)

    async def why(self, request: Request) -> Response:
        def build() -> WhyDocument:
            target = _text(request, "target")
            if target is None:
                raise InputError("give ?target= an event ID, a span ID or TRACE_ID:SPAN_ID")
            loaded = self._load(request)
            return why_document(why(loaded.analysis, target), key=loaded.key)

        return await self._answer(build)

    # -- across recent workflows -----------------------------------------------------

    def _recent(self, request: Request) -> tuple[int, int | None, list[LoadedWorkflow]]:
        now = self.reader.now_ns()
        since_ns = _since_ns(_text(request, "since"), now_ns=now)
        loaded = recent(
            self.store,
            now_ns=now,
            topology=self.reader.topology(),
            since_ns=since_ns,
            limit=_limit(request, default=_RECENT_LIMIT),
        )
        return now, since_ns, loaded

    async def pending(self, request: Request) -> Response:
        def build() -> PendingDocument:
            now, since_ns, loaded = self._recent(request)
            return pending_document(loaded, now_ns=now, since_ns=since_ns)

        return await self._answer(build)

    async def retries(self, request: Request) -> Response:
        def build() -> RetriesDocument:
            _, _, loaded = self._recent(request)
            return retries_document(loaded)

        return await self._answer(build)

    async def lint(self, request: Request) -> Response:
        def build() -> dict[str, Any]:
            from tracebraid.analysis.lint import DEFAULT_CONVENTIONS, lint_store
            from tracebraid.views.lint_json import lint_document

            since = _text(request, "since") or _LINT_SINCE
            since_ns = _since_ns(since, now_ns=self.reader.now_ns())
            report = lint_store(self.store, DEFAULT_CONVENTIONS, since_ns=since_ns)
            return lint_document(
                report,
                source=f"traces started in the last {since}",
                conventions=DEFAULT_CONVENTIONS,
                fail_on="never",
                exit_code=0,
            )

        return await self._answer(build)

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(self.openapi_document())

    def openapi_document(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document of every endpoint."""
        return openapi_document(
            self.endpoints(),
            version=__version__,
            description=(
                "Causal tracing for asynchronous systems: search traces, read a workflow's "
                "causal analysis. Every answer names its shape in `schema` "
                "(tracebraid.<kind>/v1); see docs/json-schema.md and docs/ui.md."
            ),
        )

    def endpoints(self) -> list[Endpoint]:
        """The API's endpoints: the routes and the OpenAPI document are both made from these."""
        w = f"{API_PREFIX}/workflows/{{key}}"
        search_params = (
            Param("service", "a span of this service is in the trace"),
            Param("event_name", "an event of this name was published or taken"),
            Param("correlation_id", "the trace carries this correlation ID"),
            Param("event_id", "a span has this event ID or causation ID"),
            Param("has_retries", "a branch retried after a failed attempt", "boolean"),
            Param("has_pending", "work in flight: a start marker without its span", "boolean"),
            Param("has_errors", "a span has an ERROR status", "boolean"),
            Param("has_broken", "broken causality: an island, or its producer", "boolean"),
            Param("has_failed", "a branch failed: its last attempt failed", "boolean"),
            Param(
                "min_duration_ms", "lasted at least this long", "number", minimum=0, maximum=_MAX_MS
            ),
            Param(
                "max_duration_ms", "lasted at most this long", "number", minimum=0, maximum=_MAX_MS
            ),
            _SINCE,
            Param("cursor", "a page's next_cursor, for the page after it"),
            Param(
                "limit",
                f"traces per page (1-{MAX_PAGE}, default {_PAGE})",
                "integer",
                minimum=1,
                maximum=MAX_PAGE,
            ),
        )
        return [
            Endpoint(f"{API_PREFIX}/openapi.json", "openapi", "this document", dict, self.openapi),
            Endpoint(
                f"{API_PREFIX}/search", "search", "search traces, newest first", SearchDocument,
                self.search, search_params,
                "Keyset-paged: pass next_cursor back as cursor. Every filter runs in the store.",
            ),
            Endpoint(
                f"{API_PREFIX}/facets", "facets", "services and event names of recent traces",
                FacetsDocument, self.facets,
            ),
            Endpoint(w, "workflow", "a workflow's analysis (show --json)", WorkflowDocument,
                     self.workflow, (_KEY, _SCOPE)),
            Endpoint(f"{w}/view", "view", "workflow, latency and spans from one analysis",
                     ViewDocument, self.view, (_KEY, _SCOPE)),
            Endpoint(f"{w}/latency", "latency", "critical path, lagging consumers, hand-offs",
                     LatencyDocument, self.latency, (_KEY, _SCOPE)),
            Endpoint(f"{w}/spans", "spans", "every span with its identities and attributes",
                     SpansDocument, self.spans, (_KEY, _SCOPE)),
            Endpoint(
                f"{API_PREFIX}/spans/{{trace_id}}/{{span_id}}", "span",
                "one span with its attributes, events, links and resource", SpanDocument,
                self.span,
                (Param("trace_id", "32 hex characters", where="path"),
                 Param("span_id", "16 hex characters", where="path")),
            ),
            Endpoint(f"{w}/mermaid", "mermaid", "the workflow as a Mermaid flowchart",
                     MermaidDocument, self.mermaid, (_KEY, _SCOPE)),
            Endpoint(
                f"{w}/why", "why", "the causal chain back to the user action", WhyDocument,
                self.why,
                (_KEY, _SCOPE, Param("target", "an event ID, span ID or TRACE_ID:SPAN_ID")),
            ),
            Endpoint(f"{API_PREFIX}/pending", "pending", "pending and lost branches, recent "
                     "workflows", PendingDocument, self.pending, (_SINCE, _LIMIT)),
            Endpoint(f"{API_PREFIX}/retries", "retries", "retries per workflow and consumer",
                     RetriesDocument, self.retries, (_SINCE, _LIMIT)),
            Endpoint(
                f"{API_PREFIX}/lint", "lint", "convention and propagation findings",
                dict, self.lint,
                (Param("since", f"lint traces started this long ago or later ({_LINT_SINCE})"),),
                "The tracebraid.lint/v1 document of `tracebraid lint --json`, seed conventions.",
            ),
            *self.store_api.endpoints(),
            *self.console.endpoints(search_params),
        ]  # fmt: skip

    def routes(self) -> list[BaseRoute]:
        """Starlette routes for every endpoint (``GET`` and ``HEAD``).

        A key may hold ``/`` (``order/441``; sent as ``%2F``, which the server decodes
        before routing), so ``{key}`` matches a path; the routes with a suffix after
        the key come first, or the bare workflow route would take ``KEY/view`` whole, and
        the longer suffixes before the shorter (``KEY/runs/RUN/view`` before ``KEY/view``,
        which would take it with the key ``KEY/runs/RUN``).
        """
        endpoints = sorted(
            self.endpoints(), key=lambda e: (e.path.endswith("{key}"), -e.path.count("/"))
        )
        return [
            Route(e.path.replace("{key}", "{key:path}"), e.handler, methods=["GET"],
                  name=e.operation_id)
            for e in endpoints
        ]  # fmt: skip


def api_routes(reader: WorkflowReader) -> list[BaseRoute]:
    """The API's routes over ``reader``, to pass as ``create_app(..., extra_routes=...)``."""
    return Api(reader).routes()
