"""Where a finding points: the service and business step a span's fix belongs to."""

from __future__ import annotations

from tracebraid.analysis.graph import NO_NODE, CausalGraph
from tracebraid.messaging import Role

__all__ = ["describe_event", "step_of"]


def step_of(graph: CausalGraph, node: int) -> str:
    """The business step ``node`` belongs to.

    A consumer span is its own step; anything a consumer's processing did (a publish, a
    client call) belongs to that consumer's step; the rest belongs to the step of its
    trace's root (the user action, e.g. ``place-order``/``POST /orders``).
    """
    views = graph.views
    if views[node].role is Role.CONSUMER:
        return views[node].step
    owner = graph.owner[node]
    if owner != NO_NODE:
        return views[owner].step
    root = node
    for _ in range(len(graph.spans)):  # bounded: a parent chain cannot be longer
        parent = graph.parent[root]
        if parent == NO_NODE:
            break
        root = parent
    return views[root].step


def describe_event(graph: CausalGraph, node: int) -> str:
    """How a finding names the event a span carries: its name, else its destination."""
    view = graph.views[node]
    if view.event_name:
        return view.event_name
    if view.destination:
        return f"messages to {view.destination}"
    return "an event"
