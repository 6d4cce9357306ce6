"""Workflow-aware retention (``tracebraid serve --retain RATIO``): keep every workflow
that went wrong whole, and a deterministic ratio of the healthy ones.

The collector holds each arriving span in a durable holding file
(``collector.holding``) under its workflow (its correlation ID; a span without one
joins its trace's workflow) before acknowledging it. A workflow is decided once no span
of it has arrived for ``window_s`` (or ``max_window_s`` after its first): a judge
passed in at wiring time (``serve`` composes it from the analysis; this module never
imports the analysis) names what went wrong — a retry, a failure, a dead letter, a
broken link, a lagging consumer, a duplicate, work pending — and such a workflow is
stored whole. A healthy one is stored when its correlation ID hashes below the ratio
(``tracebraid.sampling.keeps``: the same rule as the SDK's ``WorkflowSampler``), else
dropped. Spans arriving after the decision follow it.

Crash-safe: a span is acknowledged only once it is in the holding file or the store,
and a decision is recorded and the spans released only after a kept workflow is
stored, so a restart loses no acknowledged span of a kept workflow (it decides again
what it had not finished deciding; the store ignores spans it already has). Memory
is flat: everything held is on disk; ``max_held_spans`` decides the oldest workflows
early when the file holds too much.

Example::

    >>> from tracebraid.store import SqliteStore
    >>> store = RetainingStore(SqliteStore(":memory:"), HoldingFile(":memory:"),
    ...                        RetentionPolicy(ratio=0.1), judge=lambda spans, now_ns: ())
    >>> store.retention_stats().held_workflows
    0
    >>> store.stop()
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tracebraid.collector.holding import Decision, HoldingFile, trace_key
from tracebraid.errors import ConfigurationError, StoreError
from tracebraid.messaging import normalize
from tracebraid.model import Span
from tracebraid.sampling import check_ratio, keeps
from tracebraid.store.base import ReadsThrough, SpanStore, WriteResult

__all__ = ["Judge", "RetainingStore", "RetentionPolicy", "RetentionStats"]

_log = logging.getLogger(__name__)

Judge = Callable[[Sequence[Span], int], Sequence[str]]
"""Why a workflow must be kept whole (its spans, now in ns): reasons, or none if healthy."""


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """What retention keeps, and how long it waits to decide.

    ``ratio``: healthy workflows kept. ``window_s``: quiet time after a workflow's last
    span before it is decided; ``max_window_s``: the longest any workflow is held.
    ``max_held_spans``: past it, the oldest workflows are decided early.
    ``remember_s``: how long decisions are remembered for late spans.
    """

    ratio: float
    window_s: float = 30.0
    max_window_s: float = 300.0
    max_held_spans: int = 1_000_000
    remember_s: float = 3600.0

    def __post_init__(self) -> None:
        check_ratio(self.ratio, "--retain")
        if not 0 < self.window_s <= self.max_window_s:
            raise ConfigurationError(
                f"the retention window must be positive and at most the longest hold "
                f"({self.max_window_s} s), not {self.window_s} s"
            )


@dataclass(frozen=True, slots=True)
class RetentionStats:
    """Retention's figures for ``/stats``: held now, decided since start, and why kept."""

    ratio: float
    window_s: float
    held_workflows: int
    held_spans: int
    kept_interesting: int
    kept_sampled: int
    dropped: int
    spans_kept: int
    spans_dropped: int
    late_spans_kept: int
    late_spans_dropped: int
    decision_errors: int
    reasons: dict[str, int] = field(default_factory=dict)


class RetainingStore(ReadsThrough):
    """A ``SpanStore`` whose writes go through retention; reads go to ``store``.

    The collector writes into it; ``stop()`` ends the decisions (held spans stay held,
    for the next start); the underlying store is closed by whoever opened it.
    """

    def __init__(
        self,
        store: SpanStore,
        holding: HoldingFile,
        policy: RetentionPolicy,
        judge: Judge,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(store)
        self.holding = holding
        self.policy = policy
        self._judge = judge
        self._clock = clock
        self._lock = threading.Lock()  # one holding transaction or decision at a time
        self._stopping = threading.Event()
        self._counts: Counter[str] = Counter()
        self._reasons: Counter[str] = Counter()
        self._thread = threading.Thread(target=self._run, name="tracebraid-retention", daemon=True)
        self._thread.start()

    # -- writes ----------------------------------------------------------------------

    def write(self, spans: Sequence[Span]) -> WriteResult:
        """Hold ``spans`` (or store or drop them, if their workflow is decided); durable."""
        if not spans:
            return WriteResult(0, 0)
        with self._lock:
            keys, new_traces = self._workflows_of(spans)
            decided = self.holding.decisions_of(set(keys))
            groups: dict[str, list[Span]] = {}
            late: list[Span] = []
            for span, key in zip(spans, keys, strict=True):
                decision = decided.get(key)
                if decision is None:
                    groups.setdefault(key, []).append(span)
                elif decision.kept:
                    late.append(span)
                else:
                    self._counts["late_spans_dropped"] += 1
            self.holding.hold(groups, new_traces, self._clock())
            stored = self.store.write(late) if late else WriteResult(0, 0)
            self._counts["late_spans_kept"] += len(late)
        held = sum(len(group) for group in groups.values())
        return WriteResult(stored.inserted + held, stored.duplicates)

    def _workflows_of(self, spans: Sequence[Span]) -> tuple[list[str], dict[str, str]]:
        """Each span's workflow key, and the traces newly seen to belong to a workflow."""
        correlations = [normalize(span).correlation_id for span in spans]
        in_batch: dict[str, str] = {}
        for span, cid in zip(spans, correlations, strict=True):
            if cid is not None:
                in_batch.setdefault(span.trace_id, cid)
        known = self.holding.workflows_of_traces({s.trace_id for s in spans})
        new_traces = {t: w for t, w in in_batch.items() if t not in known}
        keys = [
            cid
            or in_batch.get(span.trace_id)
            or known.get(span.trace_id)
            or trace_key(span.trace_id)
            for span, cid in zip(spans, correlations, strict=True)
        ]
        return keys, new_traces

    # -- decisions -------------------------------------------------------------------

    def _run(self) -> None:
        tick = min(1.0, self.policy.window_s / 4)
        last_forget = 0.0
        while not self._stopping.wait(tick):
            try:
                while self.decide_due() and not self._stopping.is_set():
                    pass
                now = self._clock()
                if now - last_forget > 60:
                    with self._lock:
                        self.holding.forget(now - self.policy.remember_s)
                    last_forget = now
            except StoreError as exc:  # the store or the file is unavailable: try again
                _log.error("retention: %s", exc)
            except Exception:  # a bug here must not stop retention for good
                _log.exception("retention decisions failed")

    def decide_due(self, limit: int = 256) -> int:
        """Decide up to ``limit`` workflows whose window has closed; how many were."""
        policy = self.policy
        now = self._clock()
        with self._lock:
            due = self.holding.due(now - policy.window_s, now - policy.max_window_s, limit)
            if len(due) < limit and self.holding.held_totals()[1] > policy.max_held_spans:
                due = list(dict.fromkeys([*due, *self.holding.oldest(limit - len(due))]))
        for workflow in due:
            if self._stopping.is_set():
                break
            with self._lock:
                self._decide(workflow)
        return len(due)

    def _decide(self, workflow: str) -> None:
        spans = self.holding.spans_of(workflow)
        if not spans:  # decided meanwhile (an early decision, or by another caller)
            return
        try:
            reasons = tuple(self._judge(spans, time.time_ns()))
        except Exception:
            _log.exception("retention: judging workflow %s failed; keeping it", workflow)
            self._counts["decision_errors"] += 1
            reasons = ("unjudged",)
        sampled = keeps(workflow.removeprefix("trace:"), self.policy.ratio)
        decision = Decision(bool(reasons) or sampled, reasons or (("sampled",) if sampled else ()))
        if decision.kept:
            self.store.write(spans)  # durable before the spans leave the holding file
            self._counts["spans_kept"] += len(spans)
            self._counts["kept_interesting" if reasons else "kept_sampled"] += 1
            self._reasons.update(reasons)
        else:
            self._counts["spans_dropped"] += len(spans)
            self._counts["dropped"] += 1
        self.holding.decide(workflow, decision, self._clock())

    def retention_stats(self) -> RetentionStats:
        """The figures ``/stats`` shows under ``retention``."""
        with self._lock:
            held_workflows, held_spans = self.holding.held_totals()
        counts = self._counts
        return RetentionStats(
            ratio=self.policy.ratio,
            window_s=self.policy.window_s,
            held_workflows=held_workflows,
            held_spans=held_spans,
            kept_interesting=counts["kept_interesting"],
            kept_sampled=counts["kept_sampled"],
            dropped=counts["dropped"],
            spans_kept=counts["spans_kept"],
            spans_dropped=counts["spans_dropped"],
            late_spans_kept=counts["late_spans_kept"],
            late_spans_dropped=counts["late_spans_dropped"],
            decision_errors=counts["decision_errors"],
            reasons=dict(self._reasons.most_common()),
        )

    def stop(self) -> None:
        """Stop deciding and close the holding file; what is held is decided next start."""
        self._stopping.set()
        self._thread.join(30)
        with self._lock:
            self.holding.close()

    def span_count(self) -> int:
        """Spans in the underlying store (held spans are in ``retention_stats``)."""
        return self.store.span_count()

    def close(self) -> None:
        """Stop retention; the underlying store stays open (its opener closes it)."""
        self.stop()
