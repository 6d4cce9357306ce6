"""The operator's console's own API routes, beside ``tracebraid.views.api``'s.

=========================================  ==============================================
``/api/workflow-search``                   one row per workflow run, counts from analysis
``/api/workflows/{key}/runs/{run}/view``   the view of one run (``latest`` or 0, 1, ...)
``/api/consumers``                         queue wait and lag per consumer group
``/api/retries/series``                    retries per consumer over time (pushed down)
``/api/changes``                           the store's span count, with an ``ETag``
=========================================  ==============================================

``/api/changes`` is what a live page polls: it answers ``304 Not Modified`` to
``If-None-Match`` while the store took no new span, so an open workflow or the
Pending page asks for its document again only when something arrived.

Example (``Api`` builds one over its reader, its error mapping and its search filters)::

    console = ConsoleApi(reader, api._answer, api._query)
    routes = [Route(e.path, e.handler) for e in console.endpoints(search_params)]
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypedDict

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from tracebraid.analysis import WorkflowAnalysis, analyze, latency, parse_duration
from tracebraid.errors import InputError, StoreError
from tracebraid.messaging import is_start_marker, marker_target
from tracebraid.model import Span
from tracebraid.store import fetch_workflow
from tracebraid.store.search import MAX_PAGE, SearchPage, TraceQuery, search_traces
from tracebraid.views.counts import analysed_counts
from tracebraid.views.documents import latency_document, workflow_document
from tracebraid.views.schema import WorkflowDocument
from tracebraid.views.source import UnknownKeyError, recent
from tracebraid.views.store_api import unreadable_store
from tracebraid.views.web.fleet import (
    MAX_WINDOWS,
    ConsumersDocument,
    RetrySeriesDocument,
    consumers_document,
    fleet_aggregates,
    retry_series_document,
    windows,
)
from tracebraid.views.web.openapi import Endpoint, Param
from tracebraid.views.web.reader import WorkflowReader, first_spans
from tracebraid.views.web.records import (
    LimitedJson,
    ViewDocument,
    spans_document,
    view_document,
)
from tracebraid.views.web.runs import (
    CountsJson,
    Run,
    RunJson,
    run_json,
    run_of,
    split_runs,
    workflow_counts,
)

__all__ = [
    "ChangesDocument",
    "ConsoleApi",
    "RunViewDocument",
    "WorkflowRowJson",
    "WorkflowSearchDocument",
]

Answer = Callable[[Callable[[], Mapping[str, Any]]], Awaitable[Response]]
QueryOf = Callable[[Request], TraceQuery]

_FLEET_SINCE = "24h"
_FLEET_WINDOWS = 12
_RECENT = 50
_KEPT = 256
_VIEWS_KEPT = 8
_VIEW_TTL_NS = 5_000_000_000


class WorkflowRowJson(TypedDict):
    key: str
    correlation_id: str | None
    run: int
    runs: int
    trace_ids: list[str]
    matched_traces: int
    root_name: str | None
    root_service: str | None
    start_ns: int
    end_ns: int
    duration_ns: int
    span_count: int
    services: list[str]
    counts: CountsJson


class WorkflowSearchDocument(TypedDict):
    schema: str
    workflows: list[WorkflowRowJson]
    next_cursor: str | None
    scanned: int | None


class RunViewDocument(ViewDocument):
    run: RunJson
    runs: list[RunJson]
    counts: CountsJson


class ChangesDocument(TypedDict):
    schema: str
    span_count: int


def _since(request: Request, now_ns: int, default: str) -> int:
    text = request.query_params.get("since", "").strip() or default
    return now_ns - parse_duration(text, where="since")


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query_params.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise InputError(f"{name} must be a whole number, not {text!r}") from None
    if not low <= value <= high:
        raise InputError(f"{name} must be between {low} and {high}, not {value}")
    return value


def _drawn(spans: list[Span]) -> list[Span]:
    """The spans a page draws: a start marker whose span arrived says nothing that span
    does not (a third of a large workflow's spans), so only open markers stay."""
    present = {(s.trace_id, s.span_id) for s in spans}
    kept = []
    for span in spans:
        if is_start_marker(span):
            target = marker_target(span)
            announced = span.parent_span_id if target == span.span_id else target
            if (span.trace_id, announced) in present:
                continue
        kept.append(span)
    return kept


class ConsoleApi:
    """The console's handlers over the API's reader; ``answer`` encodes and maps errors."""

    def __init__(self, reader: WorkflowReader, answer: Answer, query: QueryOf) -> None:
        self.reader = reader
        self.store = reader.store
        self._answer = answer
        self._query = query
        self._lock = threading.Lock()
        self._documents: OrderedDict[
            tuple[str, int], list[tuple[Run, WorkflowDocument, list[str]]]
        ] = OrderedDict()
        self._views: OrderedDict[tuple[str, str], tuple[int, int, RunViewDocument]] = OrderedDict()

    # -- runs and workflow search ----------------------------------------------------

    def _spans(self, key: str) -> list[Span]:
        found = fetch_workflow(self.store, key)
        if not found.spans:
            raise UnknownKeyError(
                f"no trace, correlation or event ID {key!r} in the store; search for it, "
                "or check that its spans reached this collector"
            )
        return list(found.spans)

    def _runs(self, key: str) -> tuple[list[Span], WorkflowAnalysis, list[Run], LimitedJson | None]:
        """The workflow's spans (within the reader's span cap, as every view is), their
        analysis, its runs read off that analysis' graph, and what the cap left out."""
        spans, limited = first_spans(self._spans(key), self.reader.max_view_spans, "workflow")
        analysis = analyze(spans, topology=self.reader.topology(), now_ns=self.reader.now_ns())
        graph = analysis.graph
        return spans, analysis, split_runs(graph.spans, views=graph.views), limited

    def _run_analysis(
        self, spans: list[Span], analysis: WorkflowAnalysis, runs: list[Run], run: Run
    ) -> tuple[list[Span], WorkflowAnalysis]:
        """One run's spans and analysis (the whole analysis when it is the only run)."""
        if len(runs) == 1:
            return spans, analysis
        mine = [s for s in spans if run_of(runs, s.trace_id, s.start_ns) is run]
        return mine, analyze(mine, topology=self.reader.topology(), now_ns=self.reader.now_ns())

    def _summaries(self, key: str, stored: int) -> list[tuple[Run, WorkflowDocument, list[str]]]:
        """Each run of ``key`` with its analysis document and services; kept while the
        store's span count holds (a search page opens many workflows, again and again)."""
        with self._lock:
            kept = self._documents.get((key, stored))
        if kept is not None:
            return kept
        spans, analysis, runs, _ = self._runs(key)
        found = []
        for run in runs:
            mine, analysed = self._run_analysis(spans, analysis, runs, run)
            services = sorted({s.service for s in mine})
            found.append((run, workflow_document(analysed, key=key), services))
        with self._lock:
            self._documents[(key, stored)] = found
            while len(self._documents) > _KEPT:
                self._documents.popitem(last=False)
        return found

    def rows(self, page: SearchPage) -> list[WorkflowRowJson]:
        """One row per workflow run the page's traces belong to, newest first."""
        stored = self.store.span_count()
        rows: dict[tuple[str, int], WorkflowRowJson] = {}
        for hit in page.hits:
            key = hit.summary.workflow_key
            summaries = self._summaries(key, stored)
            runs = [run for run, _, _ in summaries]
            run = run_of(runs, hit.summary.trace_id, hit.summary.start_ns)
            row = rows.get((key, run.index))
            if row is not None:
                row["matched_traces"] += 1
                continue
            _, document, services = summaries[run.index]
            roots = document["roots"]
            summary = document["summary"]
            rows[(key, run.index)] = {
                "key": key,
                "correlation_id": summary["correlation_ids"][0]
                if summary["correlation_ids"]
                else None,
                "run": run.index,
                "runs": len(runs),
                # The analysis' traces (the header's "N spans in M traces"): a trace
                # holding only a start marker is not one of them.
                "trace_ids": summary["trace_ids"],
                "matched_traces": 1,
                "root_name": roots[0]["name"] if roots else None,
                "root_service": roots[0]["service"] if roots else None,
                "start_ns": summary["start_ns"],
                "end_ns": summary["end_ns"],
                "duration_ns": summary["duration_ns"],
                "span_count": summary["span_count"],
                "services": services,
                "counts": workflow_counts(document),
            }
        return list(rows.values())

    async def workflow_search(self, request: Request) -> Response:
        def build() -> WorkflowSearchDocument:
            page = search_traces(self.store, self._query(request), facts=analysed_counts)
            return {
                "schema": "tracebraid.workflow_search/v1",
                "workflows": self.rows(page),
                "next_cursor": page.next_cursor,
                "scanned": page.scanned,
            }

        return await self._answer(build)

    def run_view(self, key: str, which: str) -> RunViewDocument:
        """The view of one run of ``key``: ``latest``, or its index (0 is the oldest)."""
        now = time.monotonic_ns()
        stored = self.store.span_count()
        with self._lock:
            kept = self._views.get((key, which))
            if kept is not None and kept[1] == stored and now - kept[0] < _VIEW_TTL_NS:
                return kept[2]
        spans, whole, runs, limited = self._runs(key)
        if which == "latest":
            run = runs[-1]
        else:
            try:
                index = int(which)
            except ValueError:
                raise InputError(f"run must be latest or a run number, not {which!r}") from None
            if not 0 <= index < len(runs):
                raise UnknownKeyError(f"{key} has {len(runs)} run(s): 0 to {len(runs) - 1}")
            run = runs[index]
        mine, analysis = self._run_analysis(spans, whole, runs, run)
        workflow = workflow_document(analysis, key=key)
        base = view_document(
            key=key,
            scope="workflow",
            truncated=False,
            workflow=workflow,
            latency=latency_document(latency(analysis), key=key),
            spans=spans_document(
                _drawn(mine), key=key, truncated=False, details=False, graph=analysis.graph
            ),
            limited=limited,
        )
        document: RunViewDocument = {
            **base,
            "run": run_json(run),
            "runs": [run_json(r) for r in runs],
            "counts": workflow_counts(workflow),
        }
        with self._lock:
            # Kept from when it was ready: a view that took seconds is still fresh for 5 s.
            self._views[(key, which)] = (time.monotonic_ns(), stored, document)
            while len(self._views) > _VIEWS_KEPT:
                self._views.popitem(last=False)
        return document

    async def run_view_route(self, request: Request) -> Response:
        def build() -> RunViewDocument:
            return self.run_view(request.path_params["key"], request.path_params["run"])

        return await self._answer(build)

    # -- fleet -----------------------------------------------------------------------

    async def consumers(self, request: Request) -> Response:
        def build() -> ConsumersDocument:
            now = self.reader.now_ns()
            since = _since(request, now, _FLEET_SINCE)
            count = _int(request, "windows", _FLEET_WINDOWS, 1, MAX_WINDOWS)
            limit = _int(request, "limit", _RECENT, 1, MAX_PAGE)
            loaded = recent(
                self.store,
                now_ns=now,
                topology=self.reader.topology(),
                since_ns=since,
                limit=limit,
            )
            return consumers_document(
                loaded,
                fleet_aggregates(self.store),
                now_ns=now,
                series=windows(since, now, count),
            )

        return await self._answer(build)

    async def retry_series(self, request: Request) -> Response:
        def build() -> RetrySeriesDocument:
            now = self.reader.now_ns()
            since = _since(request, now, _FLEET_SINCE)
            count = _int(request, "windows", _FLEET_WINDOWS, 1, MAX_WINDOWS)
            return retry_series_document(
                fleet_aggregates(self.store), now_ns=now, series=windows(since, now, count)
            )

        return await self._answer(build)

    # -- live ------------------------------------------------------------------------

    async def changes(self, request: Request) -> Response:
        try:
            stored = await run_in_threadpool(self.store.span_count)
        except StoreError as exc:
            return unreadable_store(exc)
        tag = f'W/"spans-{stored}"'
        headers = {"ETag": tag, "Cache-Control": "no-cache"}
        if request.headers.get("if-none-match") == tag:
            return Response(status_code=304, headers=headers)
        body = f'{{"schema":"tracebraid.changes/v1","span_count":{stored}}}'
        return Response(body, media_type="application/json", headers=headers)

    def endpoints(self, search_params: tuple[Param, ...]) -> list[Endpoint]:
        """The console's endpoints; ``search_params`` are ``/api/search``'s filters."""
        since = Param("since", f"look this far back, e.g. 1h or 7d ({_FLEET_SINCE})")
        count = Param("windows", f"how many windows the series has (1-{MAX_WINDOWS})", "integer")
        return [
            Endpoint(
                "/api/workflow-search", "workflow_search",
                "workflow runs whose traces match, newest first", WorkflowSearchDocument,
                self.workflow_search, search_params,
                "The filters and paging of /api/search; one row per workflow run, its "
                "counts from the run's analysis (what the workflow page shows).",
            ),
            Endpoint(
                "/api/workflows/{key}/runs/{run}/view", "run_view",
                "the view of one run of a workflow", RunViewDocument, self.run_view_route,
                (Param("key", "a trace, correlation or event ID", where="path"),
                 Param("run", "latest, or a run number (0: the oldest)", where="path")),
            ),
            Endpoint(
                "/api/consumers", "consumers", "queue wait and lag per consumer group",
                ConsumersDocument, self.consumers,
                (since, count, Param("limit", "recent workflows analysed", "integer")),
            ),
            Endpoint(
                "/api/retries/series", "retry_series", "retries per consumer over time",
                RetrySeriesDocument, self.retry_series, (since, count),
            ),
            Endpoint(
                "/api/changes", "changes", "the store's span count; ETag for polling",
                ChangesDocument, self.changes,
            ),
        ]  # fmt: skip
