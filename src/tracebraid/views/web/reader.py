"""The web API's I/O edge: read a workflow or a trace from the store and analyse it.

One ``WorkflowReader`` serves every request of a ``tracebraid serve`` process. It
reads the store, the clock (``now`` for pending work) and, when no topology file was
given, the store's recent history, from which the expected consumers are learned
in the background and relearned every ``history_ttl_s`` (learning reads a few
hundred traces: too much to do on the way of a page view).

Example::

    reader = WorkflowReader(open_store("sqlite:///tracebraid-demo.db"))
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

from tracebraid.analysis import Topology, WorkflowAnalysis, analyze, latency, learn_topology
from tracebraid.model import Span, TraceId, is_valid_trace_id
from tracebraid.store import SpanStore, fetch_workflow
from tracebraid.views.documents import latency_document, workflow_document
from tracebraid.views.source import UnknownKeyError, history
from tracebraid.views.web.records import ViewDocument, spans_document, view_document

__all__ = ["HISTORY_TTL_S", "VIEW_TTL_S", "Loaded", "WorkflowReader"]

_log = logging.getLogger(__name__)

HISTORY_TTL_S = 30.0
"""How long consumers learned from the store's history are reused."""
VIEW_TTL_S = 5.0
"""How long a view is answered again unchanged while the store takes no new span
(an incident link opened by many people at once is loaded and analysed once)."""
_VIEWS_KEPT = 16


@dataclass(frozen=True, slots=True)
class Loaded:
    """A workflow (``scope="workflow"``) or a single trace (``scope="trace"``), analysed."""

    key: str
    scope: str
    spans: list[Span]
    analysis: WorkflowAnalysis
    truncated: bool


class WorkflowReader:
    """Loads and analyses what the API is asked for; safe to call from many threads."""

    def __init__(
        self,
        store: SpanStore,
        *,
        topology: Topology | None = None,
        clock: Callable[[], int] = time.time_ns,
        history_ttl_s: float = HISTORY_TTL_S,
    ) -> None:
        self.store = store
        self._topology = topology
        self._clock = clock
        self._ttl_ns = int(history_ttl_s * 1e9)
        self._learned: tuple[int, Topology] | None = None
        self._learning = False
        self._views: OrderedDict[tuple[str, str], tuple[int, int, ViewDocument]] = OrderedDict()
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
        analysis = analyze(spans, topology=self.topology(), now_ns=self.now_ns())
        return Loaded(key, scope, spans, analysis, truncated)

    def span(self, trace_id: str, span_id: str) -> Span:
        """One stored span (a start marker too) by trace and span ID."""
        if not is_valid_trace_id(trace_id):
            raise UnknownKeyError(f"{trace_id!r} is not a trace ID (32 lowercase hex characters)")
        for span in self.store.spans_of_trace(TraceId(trace_id)):
            if span.span_id == span_id:
                return span
        raise UnknownKeyError(f"no span {span_id} in trace {trace_id} in the store")

    def view(self, key: str, scope: str = "workflow") -> ViewDocument:
        """``tracebraid.view/v1`` of the workflow (or trace) ``key``.

        Answered again from memory for ``VIEW_TTL_S`` while the store's span count is
        unchanged.
        """
        now = time.monotonic_ns()
        stored = self.store.span_count()
        with self._lock:
            kept = self._views.get((key, scope))
            if kept is not None and kept[1] == stored and now - kept[0] < VIEW_TTL_S * 1e9:
                return kept[2]
        document = self._view(key, scope)
        with self._lock:
            self._views[(key, scope)] = (now, stored, document)
            while len(self._views) > _VIEWS_KEPT:
                self._views.popitem(last=False)
        return document

    def _view(self, key: str, scope: str) -> ViewDocument:
        loaded = self.load(key, scope)
        return view_document(
            key=key,
            scope=scope,
            truncated=loaded.truncated,
            workflow=workflow_document(loaded.analysis, key=key),
            latency=latency_document(latency(loaded.analysis), key=key),
            spans=spans_document(
                loaded.spans,
                key=key,
                truncated=loaded.truncated,
                details=False,
                graph=loaded.analysis.graph,
            ),
        )
