"""The embedded store's look-ups by many keys at once: one statement, whatever the count.

Keys travel as one JSON array, read back with ``json_each``, rather than as an
``IN (?, ?, ...)`` list: SQLite caps bound parameters (32,766; 999 before 3.32), so a
list would have to be cut into chunks run as several statements, while
``x IN (SELECT value FROM json_each(?))`` is one statement that still searches ``x``'s
index once per key (``tests/store/test_sqlite_store.py`` checks the plans).

``trace_ids_statement`` asks for the traces that correlation IDs, event IDs and link
targets lead to, all three in one ``UNION ALL``; ``traces_found`` reads its rows.
``trace_summaries`` turns rows of ``SUMMARY_SELECT`` into ``TraceSummary`` records with
their correlation IDs (what ``recent_traces`` and the search list).

Example::

    >>> sql, params = trace_ids_statement(event_ids=["evt_8821"])
    >>> params
    ['["evt_8821"]']
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

import msgspec

from tracebraid.model import CorrelationId, EventId, SpanId, TraceId
from tracebraid.store._rows import decode_link_targets
from tracebraid.store.base import TraceSummary

__all__ = ["SUMMARY_SELECT", "json_keys", "trace_ids_statement", "trace_summaries", "traces_found"]

SUMMARY_SELECT = (
    "SELECT t.trace_id, t.root_name, t.root_service, t.start_ns, t.end_ns, t.span_count, "
    "t.error_count FROM traces t"
)
"""The ``traces`` columns ``trace_summaries`` reads, in its order; add WHERE and ORDER BY."""
_CORRELATIONS_OF_TRACES = (
    "SELECT trace_id, correlation_id FROM trace_correlations "
    "WHERE trace_id IN (SELECT value FROM json_each(?)) ORDER BY trace_id, correlation_id"
)

_encode_json = msgspec.json.Encoder().encode

_BY_CORRELATION = (
    "SELECT trace_id, NULL, NULL, NULL FROM trace_correlations "
    "WHERE correlation_id IN (SELECT value FROM json_each(?{n}))"
)
_BY_EVENT = (
    "SELECT trace_id, NULL, NULL, NULL FROM spans "
    "WHERE event_id IN (SELECT value FROM json_each(?{n})) "
    "OR causation_id IN (SELECT value FROM json_each(?{n})) "
    "UNION ALL SELECT trace_id, NULL, NULL, NULL FROM message_identities "
    "WHERE value IN (SELECT value FROM json_each(?{n}))"
)
# The holder's own links come along: a replay of a span with other links adds index
# rows that the stored span (the first version) does not hold.
_BY_LINK = (
    "SELECT s.trace_id, s.links, l.linked_trace_id, l.linked_span_id FROM links l "
    "JOIN spans s ON s.trace_id = l.trace_id AND s.span_id = l.span_id "
    "WHERE (l.linked_trace_id, l.linked_span_id) IN "
    "(SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?{n}))"
)


def json_keys(keys: Iterable[str | tuple[str, str]]) -> str:
    """``keys`` as the JSON array ``json_each`` reads (sorted, each once)."""
    return _encode_json(sorted(set(keys))).decode()


def trace_ids_statement(
    *,
    correlation_ids: Collection[CorrelationId | str] = (),
    event_ids: Collection[EventId | str] = (),
    link_targets: Collection[tuple[TraceId, SpanId]] = (),
) -> tuple[str, list[str]]:
    """One statement for ``SpanStore.trace_ids_with``; ``("", [])`` when there is no key.

    Rows are (trace ID, holder's links, linked trace ID, linked span ID), the last
    three NULL but for rows found through a link.
    """
    parts: list[str] = []
    params: list[str] = []
    for keys, sql in (
        (correlation_ids, _BY_CORRELATION),
        (event_ids, _BY_EVENT),
        (link_targets, _BY_LINK),
    ):
        if keys:
            params.append(json_keys(keys))
            parts.append(sql.format(n=len(params)))
    return " UNION ALL ".join(parts), params


def traces_found(rows: Sequence[Sequence[Any]]) -> set[TraceId]:
    """The trace IDs in ``trace_ids_statement``'s rows; a link row counts only when its
    holder span really holds that link."""
    found: set[TraceId] = set()
    for trace_id, links, linked_trace_id, linked_span_id in rows:
        if trace_id in found:
            continue
        if linked_trace_id is None or (linked_trace_id, linked_span_id) in decode_link_targets(
            links
        ):
            found.add(TraceId(trace_id))
    return found


def trace_summaries(
    query: Callable[[str, Sequence[Any]], list[tuple[Any, ...]]], rows: Sequence[Sequence[Any]]
) -> list[TraceSummary]:
    """``rows`` of ``SUMMARY_SELECT`` as summaries, in their order, each with its
    correlation IDs (sorted) read by ``query`` in one more statement."""
    if not rows:
        return []
    correlations: dict[str, list[CorrelationId]] = {}
    for trace_id, correlation_id in query(
        _CORRELATIONS_OF_TRACES, [json_keys(row[0] for row in rows)]
    ):
        correlations.setdefault(trace_id, []).append(CorrelationId(correlation_id))
    return [
        TraceSummary(
            trace_id=TraceId(trace_id),
            root_name=root_name,
            root_service=root_service,
            start_ns=start_ns,
            end_ns=end_ns,
            span_count=span_count,
            error_count=error_count,
            correlation_ids=tuple(correlations.get(trace_id, ())),
        )
        for trace_id, root_name, root_service, start_ns, end_ns, span_count, error_count in rows
    ]
