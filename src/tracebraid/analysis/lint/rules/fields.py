"""Required fields (TB401): the identities a project's conventions require, where missing.

Each ``IdentityField`` applies where it means something: ``consumerName``, ``attempt``
and ``parentSpanId`` on consumer spans; ``causationId`` on follow-up events (published
while processing another); ``eventId``, ``correlationId`` and ``eventName`` on producer
and consumer spans; ``traceId`` and ``spanId`` every span has. One finding per
(service, step, role) lists the missing fields with how many spans lack each. A
follow-up that lost its cause's correlation ID is TB201's finding, not this one's.

Example::

    >>> from tracebraid.analysis import analyze
    >>> from tracebraid.analysis.lint.conventions import DEFAULT_CONVENTIONS
    >>> from tracebraid.testing.workflows import order_flow
    >>> findings = list(required_fields(analyze(order_flow(stock=True).spans),
    ...                                 DEFAULT_CONVENTIONS))
    >>> sorted((f.service, f.details["missing"]) for f in findings)[0]
    ('checkout-api', ('correlationId',))
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from tracebraid.analysis.graph import NO_NODE, CausalGraph
from tracebraid.analysis.lint.catalog import REQUIRED_FIELD_MISSING
from tracebraid.analysis.lint.conventions import Conventions, IdentityField
from tracebraid.analysis.lint.findings import Finding
from tracebraid.analysis.lint.rules._where import step_of
from tracebraid.analysis.lint.rules.correlation import find_lost_correlations
from tracebraid.analysis.workflow import WorkflowAnalysis
from tracebraid.messaging import ConsumerIdentity, Role

__all__ = ["required_fields"]

_Check = Callable[[CausalGraph, int], bool]
"""True when the field is *missing* on the node (which the field applies to)."""


def _event_id_missing(graph: CausalGraph, node: int) -> bool:
    view = graph.views[node]
    if view.role is Role.CONSUMER:
        return not graph.delivered[node]  # a batch consumer's events come through links
    return view.event_id is None


def _causation_missing(graph: CausalGraph, node: int) -> bool:
    view = graph.views[node]
    return view.role is Role.PRODUCER and graph.owner[node] != NO_NODE and view.causation_id is None


_CHECKS: dict[IdentityField, tuple[frozenset[Role], _Check]] = {
    IdentityField.EVENT_ID: (frozenset({Role.PRODUCER, Role.CONSUMER}), _event_id_missing),
    IdentityField.CORRELATION_ID: (
        frozenset({Role.PRODUCER, Role.CONSUMER}),
        lambda g, n: g.views[n].correlation_id is None,
    ),
    IdentityField.EVENT_NAME: (
        frozenset({Role.PRODUCER, Role.CONSUMER}),
        lambda g, n: g.views[n].event_name is None,
    ),
    IdentityField.CONSUMER_NAME: (
        frozenset({Role.CONSUMER}),
        lambda g, n: g.views[n].consumer_identified_by is not ConsumerIdentity.GROUP,
    ),
    IdentityField.ATTEMPT: (frozenset({Role.CONSUMER}), lambda g, n: g.views[n].attempt is None),
    IdentityField.PARENT_SPAN_ID: (
        frozenset({Role.CONSUMER}),
        lambda g, n: g.spans[n].parent_span_id is None,
    ),
    IdentityField.CAUSATION_ID: (frozenset({Role.PRODUCER}), _causation_missing),
}
"""Fields every span has (traceId, spanId) have no check: they cannot be missing."""


def required_fields(analysis: WorkflowAnalysis, conventions: Conventions) -> Iterator[Finding]:
    """TB401: one finding per (service, step, role) missing required identities."""
    graph = analysis.graph
    # A span that lost its cause's correlation ID is TB201's finding, not a missing field.
    lost_correlation = {item.node for item in find_lost_correlations(graph)}
    groups: dict[tuple[str, str, Role], dict[IdentityField, list[int]]] = {}
    for node, view in enumerate(graph.views):
        if view.role not in (Role.PRODUCER, Role.CONSUMER):
            continue
        service = graph.spans[node].service
        for wanted in conventions.for_service(service).required_fields:
            check = _CHECKS.get(wanted)
            if check is None or view.role not in check[0]:
                continue
            if wanted is IdentityField.CORRELATION_ID and node in lost_correlation:
                continue
            if check[1](graph, node):
                key = (service, step_of(graph, node), view.role)
                groups.setdefault(key, {}).setdefault(wanted, []).append(node)
    for (service, step, role), missing in groups.items():
        fields = tuple(f.value for f in IdentityField if f in missing)
        nodes = sorted({n for found in missing.values() for n in found})
        counts = ", ".join(f"{f.value} on {len(missing[f])}" for f in IdentityField if f in missing)
        yield Finding.of(
            REQUIRED_FIELD_MISSING,
            service=service,
            step=step,
            message=f"{role.value} spans of {step} lack required {', '.join(fields)} ({counts})",
            spans=(graph.ref(n) for n in nodes),
            key=role.value,
            count=len(nodes),
            details={"missing": fields, "role": role.value},
        )
