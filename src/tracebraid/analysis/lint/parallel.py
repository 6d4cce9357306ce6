"""Lint a store with several processes: the analysis is CPU-bound, the store can be shared.

Two passes, same answer as ``lint_store``:

1. The main process reads the trace index (IDs and correlation IDs only) and cuts it
   into workflows by correlation ID. Worker processes, each with its own connection
   to the store (``url``), read, analyse and lint those workflows in batches, and
   hand back folded ``LintTally`` s. A workflow that points beyond itself (a link or
   an event in a trace it does not hold) is handed back unlinted.
2. The main process lints those few one at a time, growing each along its frontier
   (``WorkflowReader``), with every trace linted in pass 1 counted as seen.

Memory per process is one workflow's spans plus trace IDs, as for ``lint_store``.

Example::

    >>> import tempfile, pathlib
    >>> from tracebraid.store import open_store
    >>> from tracebraid.testing.workflows import islands
    >>> url = f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 'spans.db'}"
    >>> with open_store(url) as store:
    ...     _ = store.write(islands(2).spans)
    >>> [(f.rule, f.count) for f in lint_store_url(url, workers=2).findings]
    [('TB101', 2)]
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from tracebraid.analysis.lint.conventions import DEFAULT_CONVENTIONS, Conventions
from tracebraid.analysis.lint.rules import RULES, Rule
from tracebraid.analysis.lint.run import LintReport, LintTally, lint_stored_workflow
from tracebraid.analysis.lint.stream import (
    DEFAULT_MAX_TRACES,
    TraceIndex,
    WorkflowReader,
    reaches_beyond,
    read_index,
)
from tracebraid.analysis.workflow import analyze
from tracebraid.model import CorrelationId, TraceId
from tracebraid.store import SpanStore, open_store

__all__ = ["BATCH_WORKFLOWS", "lint_store_url"]

BATCH_WORKFLOWS = 16
"""Workflows a worker lints per task: fewer round trips, still an even spread."""

_store: SpanStore | None = None  # one per worker process


@dataclass(slots=True)
class _Batch:
    """What a worker did with a batch: the folded tally, and what it left for pass 2."""

    tally: LintTally
    done: list[TraceId] = field(default_factory=list)
    deferred: list[TraceId] = field(default_factory=list)


def _open(url: str) -> None:
    global _store
    _store = open_store(url)


_Group = dict[TraceId, tuple[CorrelationId, ...]]
"""One workflow's traces and their correlation IDs, as the index knows them."""


def _lint_batch(
    groups: list[_Group],
    *,
    conventions: Conventions,
    rules: Sequence[Rule],
    windowed: bool,
    max_traces: int,
) -> _Batch:
    assert _store is not None, "the worker's initializer opens the store"
    batch = _Batch(LintTally())
    for group in groups:
        # The group is whole already: its index knows no other trace to join.
        index = TraceIndex(list(group), dict(group), {})
        reader = WorkflowReader(_store, index, windowed, max_traces)
        traces, spans = reader.start(group)
        analysis = analyze(spans)
        if reaches_beyond(analysis, traces) or len(traces) >= max_traces:
            batch.deferred.append(next(iter(group)))
            continue
        workflow = reader.complete(traces, spans, (), analysis)
        lint_stored_workflow(workflow, conventions, rules, batch.tally)
        batch.done += workflow.trace_ids
    return batch


def _batches(index: TraceIndex, max_traces: int) -> Iterator[list[_Group]]:
    batch: list[_Group] = []
    for component in index.components(max_traces):
        batch.append({t: index.correlations.get(t, ()) for t in sorted(component)})
        if len(batch) == BATCH_WORKFLOWS:
            yield batch
            batch = []
    if batch:
        yield batch


def lint_store_url(
    url: str,
    conventions: Conventions = DEFAULT_CONVENTIONS,
    *,
    workers: int = 2,
    since_ns: int | None = None,
    until_ns: int | None = None,
    rules: Sequence[Rule] = RULES,
    max_traces: int = DEFAULT_MAX_TRACES,
    progress: Callable[[LintTally], None] | None = None,
) -> LintReport:
    """``lint_store`` over the store at ``url``, with ``workers`` processes.

    ``rules`` must be importable functions (they travel to the workers by name).
    Raises ``StoreError`` if the store cannot be read.
    """
    windowed = since_ns is not None or until_ns is not None
    tally = LintTally()
    store = open_store(url)
    try:
        index = read_index(store, since_ns, until_ns)
        done: set[TraceId] = set()
        deferred: list[TraceId] = []
        work = partial(
            _lint_batch,
            conventions=conventions,
            rules=tuple(rules),
            windowed=windowed,
            max_traces=max_traces,
        )
        with ProcessPoolExecutor(
            max_workers=max(1, workers),
            # spawn: a fresh interpreter, never a fork of a process holding store threads.
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_open,
            initargs=(url,),
        ) as pool:
            for batch in pool.map(work, _batches(index, max_traces)):
                tally.merge(batch.tally)
                done.update(batch.done)
                deferred += batch.deferred
                if progress is not None:
                    progress(tally)
        reader = WorkflowReader(store, index, windowed, max_traces)
        for start in deferred:
            if start in done:
                continue
            workflow = reader.complete(*reader.start([start]), done)
            lint_stored_workflow(workflow, conventions, rules, tally)
            done.update(workflow.trace_ids)
            if progress is not None:
                progress(tally)
    finally:
        store.close()
    return tally.report()
