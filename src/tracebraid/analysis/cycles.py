"""Cycles in the causal graph: causality cannot loop, so a cycle is an instrumentation bug.

Links written by hand (or by a buggy aggregator) can point both ways, and corrupt
parent IDs can loop. Every traversal in the analysis keeps a visited set, so a cycle
never hangs it; this module finds them so the result can say where they are.

Kahn's algorithm first peels off the acyclic part (almost all of any real graph) in
linear time; Tarjan's algorithm then runs only on what is left.

Example::

    >>> from tracebraid.analysis.graph import build_graph
    >>> from tracebraid.testing.workflows import link_cycle
    >>> [sorted(s.name for s in c.spans) for c in find_cycles(build_graph(link_cycle().spans))]
    [['aggregate-a', 'aggregate-b']]
"""

from __future__ import annotations

from dataclasses import dataclass

from tracebraid.analysis.graph import CausalGraph, EdgeKind
from tracebraid.analysis.records import SpanRef

__all__ = ["Cycle", "find_cycles"]


@dataclass(frozen=True, slots=True)
class Cycle:
    """Spans that cause each other in a loop, and the kinds of edge that close it."""

    spans: tuple[SpanRef, ...]
    edge_kinds: tuple[EdgeKind, ...]


def _acyclic_leftover(graph: CausalGraph) -> list[int]:
    count = len(graph.spans)
    indegree = [len(edges) for edges in graph.incoming]
    ready = [node for node in range(count) if indegree[node] == 0]
    edges, outgoing = graph.edges, graph.outgoing
    while ready:
        node = ready.pop()
        for number in outgoing[node]:
            target = edges[number].target
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    return [node for node in range(count) if indegree[node] > 0]


def _components(graph: CausalGraph, nodes: list[int]) -> list[list[int]]:
    """Tarjan's strongly connected components over ``nodes``, iteratively."""
    inside = set(nodes)
    order: dict[int, int] = {}
    low: dict[int, int] = {}
    stack: list[int] = []
    on_stack: set[int] = set()
    found: list[list[int]] = []
    for root in nodes:
        if root in order:
            continue
        work = [(root, 0)]
        while work:
            node, position = work.pop()
            if position == 0:
                order[node] = low[node] = len(order)
                stack.append(node)
                on_stack.add(node)
            descended = False
            for offset, number in enumerate(graph.outgoing[node][position:]):
                target = graph.edges[number].target
                if target not in inside:
                    continue
                if target not in order:
                    work.append((node, position + offset + 1))
                    work.append((target, 0))
                    descended = True
                    break
                if target in on_stack:
                    low[node] = min(low[node], order[target])
            if descended:
                continue
            if low[node] == order[node]:
                component: list[int] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                found.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def find_cycles(graph: CausalGraph) -> tuple[Cycle, ...]:
    """Every cycle (strongly connected component with a loop), members in start order."""
    leftover = _acyclic_leftover(graph)
    if not leftover:
        return ()
    cycles: list[Cycle] = []
    for component in _components(graph, leftover):
        members = set(component)
        kinds = {
            graph.edges[e].kind
            for node in component
            for e in graph.outgoing[node]
            if graph.edges[e].target in members
        }
        if len(component) > 1 or kinds:
            cycles.append(
                Cycle(
                    spans=tuple(graph.ref(node) for node in sorted(component)),
                    edge_kinds=tuple(sorted(kinds)),
                )
            )
    cycles.sort(key=lambda cycle: (cycle.spans[0].trace_id, cycle.spans[0].span_id))
    return tuple(cycles)
