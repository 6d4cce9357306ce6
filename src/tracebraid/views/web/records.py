"""The web API's own documents: spans with their identities, search pages, the view bundle.

The analysis documents (``tracebraid.workflow/v1``, ``latency/v1``...) come from
``tracebraid.views.documents`` unchanged, so the API and ``--json`` never differ;
what only the UI needs is here, under the same rules (``"schema"`` names the
shape, v1 only gains keys, every key present, ``*_ns`` integers):

- ``tracebraid.spans/v1``: every span of a workflow, each with the identities of
  DESIGN.md as separate fields (as the analysis normalised them), its attributes,
  events and links; start markers flagged (an in-flight attempt has only one);
- ``tracebraid.span/v1``: one span with its attributes, events, links and resource;
- ``tracebraid.search/v1``: one page of ``search_traces``;
- ``tracebraid.facets/v1``: the services and event names of recent traces;
- ``tracebraid.view/v1``: what the workflow page draws, from one analysis: the
  workflow, latency and spans documents together (spans without their attributes,
  events and links: a page fetches those for the span it opens).

Example::

    >>> from tracebraid.testing.workflows import order_flow
    >>> doc = spans_document(order_flow().spans, key="order_441", truncated=False)
    >>> took = next(s["identity"] for s in doc["spans"] if s["identity"]["role"] == "consumer")
    >>> took["correlation_id"], took["event_name"], took["attempt"]
    ('order_441', 'order.placed', 1)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypedDict

from tracebraid.analysis.graph import CausalGraph
from tracebraid.messaging import MessagingView, is_start_marker, normalize
from tracebraid.model import AttributeValue, Span, SpanKind, StatusCode
from tracebraid.store.search import SearchPage, TraceHit
from tracebraid.views.schema import LatencyDocument, WorkflowDocument

__all__ = [
    "WEB_SCHEMAS",
    "FacetsDocument",
    "IdentityJson",
    "LimitedJson",
    "SearchDocument",
    "SearchHitJson",
    "SpanDocument",
    "SpanJson",
    "SpansDocument",
    "ViewDocument",
    "facets_document",
    "search_document",
    "span_document",
    "span_json",
    "spans_document",
    "view_document",
]

WEB_SCHEMAS = {
    kind: f"tracebraid.{kind}/v1" for kind in ("span", "spans", "search", "view", "facets")
}
"""The ``"schema"`` value of each web document kind."""

JsonValue = str | bool | int | float | list[str] | list[bool] | list[int] | list[float]


class IdentityJson(TypedDict):
    role: str
    correlation_id: str | None
    event_id: str | None
    causation_id: str | None
    event_name: str | None
    consumer: str | None
    attempt: int | None
    destination: str | None
    step: str
    outcome: str
    error: str | None


class SpanEventJson(TypedDict):
    name: str
    time_ns: int
    attributes: dict[str, JsonValue]


class SpanLinkJson(TypedDict):
    trace_id: str
    span_id: str
    attributes: dict[str, JsonValue]


class SpanJson(TypedDict):
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    service: str
    start_ns: int
    end_ns: int
    duration_ns: int
    status: str
    status_message: str
    start_marker: bool
    marker_for: str | None
    scope: str
    identity: IdentityJson
    details: bool
    attributes: dict[str, JsonValue]
    events: list[SpanEventJson]
    links: list[SpanLinkJson]
    resource: dict[str, JsonValue]


class LimitedJson(TypedDict):
    """A view cut to its first spans: how many are shown, of how many, and how to narrow."""

    shown: int
    total: int
    message: str


class SpansDocument(TypedDict):
    schema: str
    key: str | None
    truncated: bool
    limited: LimitedJson | None
    spans: list[SpanJson]


class SpanDocument(TypedDict):
    schema: str
    span: SpanJson


class SearchHitJson(TypedDict):
    key: str
    trace_id: str
    correlation_ids: list[str]
    root_name: str
    root_service: str
    start_ns: int
    end_ns: int
    duration_ns: int
    span_count: int
    error_count: int
    services: list[str]
    event_names: list[str]
    retries: int
    in_flight: int
    broken: bool
    failed: int
    duplicates: int


class SearchDocument(TypedDict):
    schema: str
    traces: list[SearchHitJson]
    next_cursor: str | None
    scanned: int | None


class FacetsDocument(TypedDict):
    schema: str
    services: list[str]
    event_names: list[str]


class ViewDocument(TypedDict):
    schema: str
    key: str
    scope: str
    truncated: bool
    limited: LimitedJson | None
    workflow: WorkflowDocument
    latency: LatencyDocument
    spans: SpansDocument


def _value(value: AttributeValue) -> JsonValue:
    return list(value) if isinstance(value, tuple) else value  # type: ignore[return-value]


def _attributes(attributes: Mapping[str, AttributeValue]) -> dict[str, JsonValue]:
    return {key: _value(value) for key, value in attributes.items()}


# Enum names read once: a view of 10,000 spans would read each member's name 10,000 times.
_KIND_NAMES = {kind: kind.name.lower() for kind in SpanKind}
_STATUS_NAMES = {status: status.name.lower() for status in StatusCode}


def span_json(span: Span, *, details: bool = True, view: MessagingView | None = None) -> SpanJson:
    """One span with its identities as separate fields.

    Without ``details``, ``attributes``, ``events``, ``links`` and ``resource`` are left
    empty (``"details": false``): what a page needs to draw many spans, fetching one
    span's details when it is opened. ``view`` is the span's ``normalize`` result
    when the caller has it already.
    """
    if view is None:
        view = normalize(span)
    return {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "name": span.name,
        "kind": _KIND_NAMES[span.kind],
        "service": span.service,
        "start_ns": span.start_ns,
        "end_ns": span.end_ns,
        "duration_ns": span.duration_ns,
        "status": _STATUS_NAMES[span.status],
        "status_message": span.status_message,
        "start_marker": is_start_marker(span),
        "marker_for": view.marker_for,
        "scope": span.scope,
        "identity": {
            "role": str(view.role),
            "correlation_id": view.correlation_id,
            "event_id": view.event_id,
            "causation_id": view.causation_id,
            "event_name": view.event_name,
            "consumer": view.consumer,
            "attempt": view.attempt,
            "destination": view.destination,
            "step": view.step,
            "outcome": str(view.outcome),
            "error": view.error,
        },
        "details": details,
        "attributes": _attributes(span.attributes) if details else {},
        "events": [
            {"name": e.name, "time_ns": e.time_ns, "attributes": _attributes(e.attributes)}
            for e in span.events
        ]
        if details
        else [],
        "links": [
            {"trace_id": k.trace_id, "span_id": k.span_id, "attributes": _attributes(k.attributes)}
            for k in span.links
        ]
        if details
        else [],
        "resource": _attributes(span.resource) if details else {},
    }


def spans_document(
    spans: Iterable[Span],
    *,
    key: str | None,
    truncated: bool,
    details: bool = True,
    graph: CausalGraph | None = None,
    limited: LimitedJson | None = None,
) -> SpansDocument:
    """``tracebraid.spans/v1``: the spans in start order (replays once); ``details`` as in
    ``span_json``. ``graph``, the analysis of the same spans, saves normalising them again.
    ``limited`` says the spans are the first of more (``WorkflowReader``'s span cap).
    """
    unique = {span.key: span for span in spans}
    ordered = sorted(unique.values(), key=lambda s: (s.start_ns, s.trace_id, s.span_id))
    # By identity: a view is reused only for the very span object the graph normalised.
    known = (
        {} if graph is None else {id(s): v for s, v in zip(graph.spans, graph.views, strict=True)}
    )
    return {
        "schema": WEB_SCHEMAS["spans"],
        "key": key,
        "truncated": truncated,
        "limited": limited,
        "spans": [span_json(s, details=details, view=known.get(id(s))) for s in ordered],
    }


def span_document(span: Span) -> SpanDocument:
    """``tracebraid.span/v1``: one span with every detail."""
    return {"schema": WEB_SCHEMAS["span"], "span": span_json(span)}


def _hit(hit: TraceHit) -> SearchHitJson:
    summary, facts = hit.summary, hit.facts
    return {
        "key": summary.workflow_key,
        "trace_id": summary.trace_id,
        "correlation_ids": list(summary.correlation_ids),
        "root_name": summary.root_name,
        "root_service": summary.root_service,
        "start_ns": summary.start_ns,
        "end_ns": summary.end_ns,
        "duration_ns": max(0, summary.end_ns - summary.start_ns),
        "span_count": summary.span_count,
        "error_count": summary.error_count,
        "services": list(facts.services),
        "event_names": list(facts.event_names),
        "retries": facts.retries,
        "in_flight": facts.in_flight,
        "broken": facts.broken,
        "failed": facts.failed,
        "duplicates": facts.duplicates,
    }


def search_document(page: SearchPage) -> SearchDocument:
    """``tracebraid.search/v1``: a page of traces, newest first, and the next page's cursor."""
    return {
        "schema": WEB_SCHEMAS["search"],
        "traces": [_hit(hit) for hit in page.hits],
        "next_cursor": page.next_cursor,
        "scanned": page.scanned,
    }


def facets_document(page: SearchPage) -> FacetsDocument:
    """``tracebraid.facets/v1``: the services and event names seen in a page of traces."""
    return {
        "schema": WEB_SCHEMAS["facets"],
        "services": sorted({s for hit in page.hits for s in hit.facts.services}),
        "event_names": sorted({n for hit in page.hits for n in hit.facts.event_names}),
    }


def view_document(
    *,
    key: str,
    scope: str,
    truncated: bool,
    workflow: WorkflowDocument,
    latency: LatencyDocument,
    spans: SpansDocument,
    limited: LimitedJson | None = None,
) -> ViewDocument:
    """``tracebraid.view/v1``: everything the workflow page draws, from one analysis."""
    return {
        "schema": WEB_SCHEMAS["view"],
        "key": key,
        "scope": scope,
        "truncated": truncated,
        "limited": limited,
        "workflow": workflow,
        "latency": latency,
        "spans": spans,
    }
