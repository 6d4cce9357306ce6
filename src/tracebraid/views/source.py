"""The commands' I/O edge: open the store, load a workflow or the recent ones, analyse them.

Everything here reads (the store, the topology file, the clock); everything after it
is pure. A key that names nothing raises ``UnknownKeyError`` with the keys the store
does hold, so the message says what to type instead.

Example::

    store = open_for_reading("sqlite:///tracebraid.db")
    loaded = load("order_441", store, url="sqlite:///tracebraid.db", now_ns=time.time_ns())
    print(loaded.analysis.critical_path.duration_ns)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tracebraid.analysis import (
    Topology,
    WorkflowAnalysis,
    analyze,
    learn_topology,
    load_topology,
    parse_duration,
)
from tracebraid.errors import ConfigurationError, InputError
from tracebraid.messaging import normalize
from tracebraid.model import Span
from tracebraid.store import SpanStore, TraceSummary, fetch_workflow, open_store

__all__ = [
    "DEFAULT_STORE",
    "HISTORY_TRACES",
    "PROGRAM_ENV",
    "SPAN_SEARCH_TRACES",
    "SQLITE_URLS",
    "STORE_ENV",
    "AmbiguousKeyError",
    "LoadedWorkflow",
    "UnknownKeyError",
    "default_store",
    "history",
    "load",
    "open_for_reading",
    "parse_since",
    "parse_when",
    "program",
    "read_topology",
    "reading",
    "recent",
    "require_key",
    "resolve_prefix",
    "trace_of_span",
]

STORE_ENV = "TRACEBRAID_STORE"
"""Environment variable naming the store when ``--store`` is not given."""
DEFAULT_STORE = "sqlite:///tracebraid.db"
"""The store the commands read when neither ``--store`` nor ``TRACEBRAID_STORE`` says."""
PROGRAM_ENV = "TRACEBRAID_PROGRAM"
"""How the hints spell the command: ``./scripts/tracebraid`` sets it, so a printed command
runs as printed from the repository; unset, it is ``tracebraid``."""
SQLITE_URLS = (
    "sqlite:///data/x.db is data/x.db relative to the current directory, "
    "sqlite:////data/x.db (four slashes) the absolute /data/x.db, as in SQLAlchemy"
)
"""What the slashes of an SQLite URL mean, for help texts and errors."""
HISTORY_TRACES = 200
"""How many recent traces teach the expected consumers when there is no topology file."""
SPAN_SEARCH_TRACES = 500
"""How many recent traces a bare span ID is looked for in."""
_SUGGESTIONS = 8


class UnknownKeyError(InputError):
    """No trace, correlation or event ID in the store matches what was asked for."""


@dataclass(frozen=True, slots=True)
class LoadedWorkflow:
    """One workflow as loaded from the store, and its analysis.

    ``key`` is what it was loaded by (the ID asked for, or the correlation or trace
    ID of a recent workflow); ``truncated`` when it spans more traces than loaded.
    """

    key: str
    analysis: WorkflowAnalysis
    truncated: bool


def default_store() -> str:
    """``$TRACEBRAID_STORE``, else ``sqlite:///tracebraid.db``."""
    return os.environ.get(STORE_ENV) or DEFAULT_STORE


def program() -> str:
    """How to spell the command in a hint: ``$TRACEBRAID_PROGRAM``, else ``tracebraid``."""
    return os.environ.get(PROGRAM_ENV) or "tracebraid"


def _sqlite_path(url: str) -> Path | None:
    scheme, sep, _ = url.partition("://")
    if not sep:
        return Path(url)
    if scheme.lower() != "sqlite":
        return None
    parts = urlsplit(url)
    path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
    return Path(path) if path and path != ":memory:" else None


def open_for_reading(url: str) -> SpanStore:
    """Open the store at ``url`` to read it; an SQLite file must already exist.

    Raises ``ConfigurationError`` for a bad URL or a missing file (opening would
    silently create an empty store, and every answer would be "not found").
    """
    path = _sqlite_path(url)
    if path is not None and not path.exists():
        option = "" if url == default_store() else f" --store {url}"
        raise ConfigurationError(
            f"no store at {url!r} (file {str(path.absolute())!r} does not exist; "
            f"{SQLITE_URLS}); run `{program()} demo{option}` or `{program()} import FILE"
            f"{option}` to create one, pass --store, or set {STORE_ENV}"
        )
    return open_store(url)


@contextmanager
def reading(url: str) -> Iterator[SpanStore]:
    """``open_for_reading`` as a context manager that closes the store."""
    store = open_for_reading(url)
    try:
        yield store
    finally:
        store.close()


def read_topology(path: str | None) -> Topology | None:
    """The topology file given with ``--topology``, or ``None``."""
    return None if path is None else load_topology(path)


def history(store: SpanStore, *, limit: int = HISTORY_TRACES) -> list[Span]:
    """The spans of the ``limit`` most recent traces (what expected consumers are learned from)."""
    summaries = store.recent_traces(limit)
    return store.spans_of_traces([s.trace_id for s in summaries]) if summaries else []


def _suggestions(store: SpanStore) -> list[str]:
    return _workflow_keys(store.recent_traces(_SUGGESTIONS * 4))[:_SUGGESTIONS]


def load(
    key: str,
    store: SpanStore,
    *,
    url: str,
    now_ns: int,
    topology: Topology | None = None,
    learn: bool = True,
) -> LoadedWorkflow:
    """Load and analyse the workflow ``key`` names (a trace, correlation or event ID).

    Without a topology and with ``learn``, expected consumers are learned from the
    store's recent history. Raises ``UnknownKeyError`` when nothing matches.
    """
    found = fetch_workflow(store, key)
    if not found.spans:
        full = resolve_prefix(store, key, url=url)
        if full is not None:
            found, key = fetch_workflow(store, full), full
    if not found.spans:
        known = _suggestions(store)
        hint = (
            f"try `{program()} show` with one of: " + ", ".join(known)
            if known
            else f"the store is empty: run `{program()} demo`, or send spans to `{program()} serve`"
        )
        raise UnknownKeyError(f"no trace, correlation or event ID {key!r} in store {url}; {hint}")
    past = history(store) if topology is None and learn else None
    analysis = analyze(found.spans, topology=topology, history=past, now_ns=now_ns)
    return LoadedWorkflow(key, analysis, found.truncated)


class AmbiguousKeyError(InputError):
    """A shortened ID that begins more than one trace, correlation or event ID."""


_ELLIPSES = ("…", "...")
_MIN_PREFIX = 4


def resolve_prefix(
    store: SpanStore, key: str, *, url: str, limit: int = SPAN_SEARCH_TRACES
) -> str | None:
    """The one full ID that ``key`` begins, as the tree prints IDs shortened (``da8c33f2…``).

    Looked for among the trace, correlation and event IDs of the ``limit`` most recent
    traces; ``None`` when none begins so (or ``key`` is under four characters). Raises
    ``AmbiguousKeyError`` naming the candidates when more than one does.

    Example::

        >>> from tracebraid.store import open_store
        >>> resolve_prefix(open_store("sqlite:///:memory:"), "da8c33f2…", url="memory") is None
        True
    """
    prefix = key.strip()
    for ellipsis in _ELLIPSES:
        prefix = prefix.removesuffix(ellipsis)
    if len(prefix) < _MIN_PREFIX:
        return None
    summaries = store.recent_traces(limit)
    candidates: set[str] = set()
    for summary in summaries:
        candidates.add(summary.trace_id)
        candidates.update(summary.correlation_ids)
    if summaries:
        for span in store.spans_of_traces([s.trace_id for s in summaries]):
            event_id = normalize(span).event_id
            if event_id:
                candidates.add(event_id)
    matches = sorted(c for c in candidates if c.startswith(prefix))
    if len(matches) > 1:
        shown = ", ".join(matches[:_SUGGESTIONS]) + (", …" if len(matches) > _SUGGESTIONS else "")
        raise AmbiguousKeyError(
            f"{key!r} begins {len(matches)} IDs in store {url}: {shown}; give more of it"
        )
    return matches[0] if matches else None


def trace_of_span(store: SpanStore, span_id: str, *, limit: int = SPAN_SEARCH_TRACES) -> str | None:
    """The trace ID holding span ``span_id`` among the ``limit`` most recent traces.

    Stores index spans by trace, not by span ID alone, so older spans need the
    ``TRACE_ID:SPAN_ID`` form.
    """
    return next((s.trace_id for s in history(store, limit=limit) if s.span_id == span_id), None)


def _workflow_keys(summaries: list[TraceSummary]) -> list[str]:
    """One key per workflow: its correlation ID, or the trace ID of an uncorrelated trace."""
    return list(dict.fromkeys(summary.workflow_key for summary in summaries))


def recent(
    store: SpanStore,
    *,
    now_ns: int,
    topology: Topology | None,
    since_ns: int | None = None,
    limit: int = 50,
) -> list[LoadedWorkflow]:
    """The workflows of the ``limit`` most recent traces (started after ``since_ns``),
    each loaded whole and analysed; newest first.

    Without a topology, expected consumers are learned from the same recent history.
    """
    summaries = [
        s for s in store.recent_traces(limit) if since_ns is None or s.start_ns >= since_ns
    ]
    if not summaries:
        return []
    # Learned once for every workflow: analyze(history=...) would learn it anew each time.
    expected = topology if topology is not None else learn_topology(history(store))
    loaded: list[LoadedWorkflow] = []
    seen: set[str] = set()
    for key in _workflow_keys(summaries):
        found = fetch_workflow(store, key)
        traces = set(found.trace_ids)
        if not found.spans or traces <= seen:
            continue
        seen |= traces
        analysis = analyze(found.spans, topology=expected, now_ns=now_ns)
        loaded.append(LoadedWorkflow(key, analysis, found.truncated))
    return loaded


def parse_when(text: str | None, *, now_ns: int, option: str) -> int | None:
    """A time option as Unix nanoseconds: a duration ago, or an ISO 8601 time.

    Every command reads ``--since`` (and ``lint`` also ``--until``) the same way.

    >>> parse_when("10s", now_ns=60_000_000_000, option="--since")
    50000000000
    >>> parse_when("1970-01-01T00:01:00Z", now_ns=0, option="--since")
    60000000000
    >>> parse_when("2300-01-01", now_ns=0, option="--until") == 2**63 - 1
    True

    Clamped to what a store holds (0 to 2^63-1 ns): earlier is 1970, later is 2262.
    """
    if text is None:
        return None
    return min(max(_when(text, now_ns=now_ns, option=option), 0), 2**63 - 1)


def _when(text: str, *, now_ns: int, option: str) -> int:
    try:
        return now_ns - parse_duration(text, where=option)
    except ConfigurationError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(
            f"{option} {text!r} is neither a duration (10m, 2h, 7d) nor an ISO 8601 time "
            "(2026-01-31T12:00:00Z)"
        ) from None
    try:
        if moment.tzinfo is None:
            moment = moment.astimezone()  # a local time, as the user typed it
        return round(moment.timestamp() * 1_000_000_000)
    except (OverflowError, OSError, ValueError):  # year 1 or 9999 in some time zones
        raise ConfigurationError(f"{option} {text!r} is out of range") from None


def parse_since(text: str | None, *, now_ns: int) -> int | None:
    """``--since 10m`` or ``--since 2026-01-31T12:00Z`` as Unix nanoseconds; None if not given."""
    return parse_when(text, now_ns=now_ns, option="--since")


def require_key(key: str) -> str:
    """A non-empty key, or ``InputError`` that says what a key is."""
    if not key.strip():
        raise InputError("give a trace ID, a correlation ID (e.g. order_441) or an event ID")
    return key.strip()
