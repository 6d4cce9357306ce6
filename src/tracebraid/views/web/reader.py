"""The web API's I/O edge: read a workflow or a trace from the store and analyse it.

One ``WorkflowReader`` serves every request of a ``tracebraid serve`` process. It
reads the store, the clock (``now`` for pending work) and, when no topology file was
given, the store's recent history, from which the expected consumers are learned
in the background and relearned every ``history_ttl_s`` (learning reads a few
hundred traces: too much to do on the way of a page view).

What one request costs is bounded: a workflow or trace of more than ``max_view_spans``
spans is analysed and answered on its first spans (by start time), and the answer says
so (``limited``: "showing N of M spans", and how to narrow it: one trace, or a branch's
event ID as the key). Views are kept as their encoded JSON in a cache bounded in bytes
(``VIEW_CACHE_BYTES``), and dropped once ``VIEW_TTL_S`` old.

Example::

    reader = WorkflowReader(open_store("sqlite:///tracebraid.db"))
    view = reader.view("order_441")
    print(view["workflow"]["summary"]["retries"])
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from tracebraid.analysis import Topology, WorkflowAnalysis, analyze, latency, learn_topology
from tracebraid.model import Span, TraceId, is_valid_trace_id
from tracebraid.store import SpanStore, fetch_workflow
from tracebraid.views.documents import latency_document, workflow_document
from tracebraid.views.source import UnknownKeyError, history
from tracebraid.views.web.records import (
    LimitedJson,
    ViewDocument,
    spans_document,
    view_document,
)

__all__ = [
    "HISTORY_TTL_S",
    "MAX_VIEW_SPANS",
    "VIEW_CACHE_BYTES",
    "VIEW_TTL_S",
    "Loaded",
    "WorkflowReader",
    "first_spans",
]

_log = logging.getLogger(__name__)

HISTORY_TTL_S = 30.0
"""How long consumers learned from the store's history are reused."""
VIEW_TTL_S = 5.0
"""How long a view is answered again unchanged while the store takes no new span
(an incident link opened by many people at once is loaded and analysed once)."""
MAX_VIEW_SPANS = 20_000
"""Spans a view analyses and answers at most (about 20 MB of JSON); more are counted."""
VIEW_CACHE_BYTES = 64 * 1024 * 1024
"""Encoded views kept at most, in bytes; a view larger than a quarter of it is not kept."""


def first_spans(spans: list[Span], most: int, scope: str) -> tuple[list[Span], LimitedJson | None]:
    """At most ``most`` of ``spans``, the first by start, and what to say when some are
    left out (``None`` when all are kept): what bounds one view's cost, for every view.

    A parent starts before its children, so what is kept is the workflow's beginning,
    whole, rather than scattered spans.
    """
    if len(spans) <= most:
        return spans, None
    kept = sorted(spans, key=lambda s: (s.start_ns, s.trace_id, s.span_id))[:most]
    narrow = (
        "open one of its traces (scope=trace) or a branch by its event ID"
        if scope == "workflow"
        else "open a branch by its event ID as the key"
    )
    limited: LimitedJson = {
        "shown": len(kept),
        "total": len(spans),
        "message": f"showing the first {len(kept):,} of {len(spans):,} spans; to see "
        f"the rest, narrow it: {narrow}",
    }
    return kept, limited


@dataclass(frozen=True, slots=True)
class Loaded:
    """A workflow (``scope="workflow"``) or a single trace (``scope="trace"``), analysed."""

    key: str
    scope: str
    spans: list[Span]
    analysis: WorkflowAnalysis
    truncated: bool
    limited: LimitedJson | None = None
    """Set when only the first spans were analysed (``WorkflowReader.max_view_spans``)."""


class WorkflowReader:
    """Loads and analyses what the API is asked for; safe to call from many threads."""

    def __init__(
        self,
        store: SpanStore,
        *,
        topology: Topology | None = None,
        clock: Callable[[], int] = time.time_ns,
        history_ttl_s: float = HISTORY_TTL_S,
        max_view_spans: int = MAX_VIEW_SPANS,
        view_cache_bytes: int = VIEW_CACHE_BYTES,
    ) -> None:
        self.store = store
        self.max_view_spans = max_view_spans
        self.view_cache_bytes = view_cache_bytes
        self._topology = topology
        self._clock = clock
        self._ttl_ns = int(history_ttl_s * 1e9)
        self._learned: tuple[int, Topology] | None = None
        self._learning = False
        # (key, scope) -> (made at, store's span count then, the view's JSON), oldest first.
        self._views: OrderedDict[tuple[str, str], tuple[int, int, bytes]] = OrderedDict()
        self._views_bytes = 0
        self._lock = threading.Lock()

    def now_ns(self) -> int:
        """The clock the analysis judges pending work by."""
        return self._clock()

    def topology(self) -> Topology:
        """The topology file's, else the consumers learned from recent history.

        Only the first call waits for the learning; later ones get what was learned
        while a background thread learns afresh once it is ``history_ttl_s`` old.
        """
        if self._topology is not None:
            return self._topology
        with self._lock:
            learned = self._learned
            stale = learned is None or time.monotonic_ns() - learned[0] >= self._ttl_ns
            refresh = stale and learned is not None and not self._learning
            if refresh:
                self._learning = True
        if learned is None:
            return self._learn()
        if refresh:
            self._learn_in_background()
        return learned[1]

    def warm_up(self) -> None:
        """Learn the expected consumers now, in the background, before the first request."""
        if self._topology is None and self._learned is None:
            with self._lock:
                self._learning = True
            self._learn_in_background()

    def _learn_in_background(self) -> None:
        threading.Thread(target=self._learn_quietly, name="tracebraid-learn", daemon=True).start()

    def _learn_quietly(self) -> None:
        try:
            self._learn()
        except Exception:  # a closed or busy store: the next request learns again
            _log.warning("learning the expected consumers failed", exc_info=True)

    def _learn(self) -> Topology:
        try:
            learned = learn_topology(history(self.store))
        except Exception:
            with self._lock:
                self._learning = False
            raise
        with self._lock:
            self._learned = (time.monotonic_ns(), learned)
            self._learning = False
        return learned

    def workflow(self, key: str) -> Loaded:
        """The workflow a trace, correlation or event ID names, across every trace it touched."""
        found = fetch_workflow(self.store, key)
        if not found.spans:
            raise UnknownKeyError(
                f"no trace, correlation or event ID {key!r} in the store; search for it, "
                "or check that its spans reached this collector"
            )
        return self._analysed(key, "workflow", list(found.spans), found.truncated)

    def trace(self, trace_id: str) -> Loaded:
        """One trace alone: what a single trace shows (an island, on its own)."""
        if not is_valid_trace_id(trace_id):
            raise UnknownKeyError(
                f"{trace_id!r} is not a trace ID (32 lowercase hex characters); "
                "open it as a workflow instead"
            )
        spans = self.store.spans_of_trace(TraceId(trace_id))
        if not spans:
            raise UnknownKeyError(f"no trace {trace_id} in the store")
        return self._analysed(trace_id, "trace", spans, False)

    def load(self, key: str, scope: str) -> Loaded:
        """``workflow`` or ``trace`` by ``scope``."""
        return self.trace(key) if scope == "trace" else self.workflow(key)

    def _analysed(self, key: str, scope: str, spans: list[Span], truncated: bool) -> Loaded:
        spans, limited = first_spans(spans, self.max_view_spans, scope)
        analysis = analyze(spans, topology=self.topology(), now_ns=self.now_ns())
        return Loaded(key, scope, spans, analysis, truncated, limited)

    def span(self, trace_id: str, span_id: str) -> Span:
        """One stored span (a start marker too) by trace and span ID."""
        if not is_valid_trace_id(trace_id):
            raise UnknownKeyError(f"{trace_id!r} is not a trace ID (32 lowercase hex characters)")
        for span in self.store.spans_of_trace(TraceId(trace_id)):
            if span.span_id == span_id:
                return span
        raise UnknownKeyError(f"no span {span_id} in trace {trace_id} in the store")

    def view(self, key: str, scope: str = "workflow") -> ViewDocument:
        """``tracebraid.view/v1`` of the workflow (or trace) ``key``, made afresh."""
        loaded = self.load(key, scope)
        return view_document(
            key=key,
            scope=scope,
            truncated=loaded.truncated,
            limited=loaded.limited,
            workflow=workflow_document(loaded.analysis, key=key),
            latency=latency_document(latency(loaded.analysis), key=key),
            spans=spans_document(
                loaded.spans,
                key=key,
                truncated=loaded.truncated,
                limited=loaded.limited,
                details=False,
                graph=loaded.analysis.graph,
            ),
        )

    def view_json(self, key: str, scope: str = "workflow") -> bytes:
        """``view`` as JSON, answered again from memory for ``VIEW_TTL_S`` while the
        store's span count is unchanged (an incident link opened by many at once is
        analysed once). The cache holds encoded views, within ``view_cache_bytes``."""
        now = time.monotonic_ns()
        stored = self.store.span_count()
        with self._lock:
            self._drop_expired(now)
            kept = self._views.get((key, scope))
            if kept is not None and kept[1] == stored:
                return kept[2]
        # msgspec: several times faster than json for multi-megabyte views, and a NaN
        # attribute value becomes null instead of failing the response.
        encoded = msgspec.json.encode(self.view(key, scope))
        if len(encoded) <= self.view_cache_bytes // 4:
            with self._lock:
                self._forget((key, scope))
                self._views[(key, scope)] = (now, stored, encoded)
                self._views_bytes += len(encoded)
                while self._views_bytes > self.view_cache_bytes:
                    self._forget(next(iter(self._views)))
        return encoded

    @property
    def cached_view_bytes(self) -> int:
        """Bytes of encoded views held now."""
        return self._views_bytes

    def _drop_expired(self, now: int) -> None:
        ttl_ns = VIEW_TTL_S * 1e9
        while self._views:
            oldest = next(iter(self._views))
            if now - self._views[oldest][0] < ttl_ns:
                return
            self._forget(oldest)

    def _forget(self, entry: tuple[str, str]) -> None:
        kept = self._views.pop(entry, None)
        if kept is not None:
            self._views_bytes -= len(kept[2])
