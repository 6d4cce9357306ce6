"""What the spans cannot tell: said in the result, never guessed.

Stock OpenTelemetry instrumentation knows nothing of correlation IDs, consumer
groups, attempts or start markers; a trace may be missing spans. Each gap becomes a
``Limitation`` with a stable code, a message that says what is affected and how to
close the gap, and a count.

Example::

    >>> from tracebraid.analysis.graph import build_graph
    >>> from tracebraid.testing.workflows import order_flow
    >>> graph = build_graph(order_flow(stock=True).spans)
    >>> sorted(l.code for l in find_limitations(graph, None, ()))
    ... # doctest: +NORMALIZE_WHITESPACE
    ['attempt_numbers_absent', 'consumer_group_unknown', 'event_name_absent', 'no_correlation_id',
     'no_expectations', 'start_markers_absent']
"""

from __future__ import annotations

from tracebraid.analysis.cycles import Cycle
from tracebraid.analysis.graph import CausalGraph
from tracebraid.analysis.records import Limitation
from tracebraid.analysis.topology import Topology
from tracebraid.messaging import ConsumerIdentity, Role, written_by_sdk

__all__ = ["find_limitations"]


def _some(names: list[str], shown: int = 3) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def find_limitations(
    graph: CausalGraph,
    topology: Topology | None,
    cycles: tuple[Cycle, ...],
) -> tuple[Limitation, ...]:
    """Every limitation of the analysis of ``graph``, most fundamental first."""
    found: list[Limitation] = []
    messaging = [v for v in graph.views if v.role in (Role.PRODUCER, Role.CONSUMER)]
    consumers = [(node, v) for node, v in enumerate(graph.views) if v.role is Role.CONSUMER]
    correlated = sum(1 for v in graph.views if v.correlation_id is not None)
    if graph.spans and correlated == 0:
        found.append(Limitation(
            "no_correlation_id",
            "no correlation ID on any span: the workflow is only what trace IDs, links and "
            "event IDs connect; other traces of the same business request cannot be found",
            len(graph.spans),
        ))  # fmt: skip
    elif messaging and (missing := sum(1 for v in messaging if v.correlation_id is None)):
        found.append(Limitation(
            "correlation_id_partial",
            f"{missing} producer/consumer spans carry no correlation ID "
            "(messaging.message.conversation_id); their follow-up work may be incomplete",
            missing,
        ))  # fmt: skip
    guessed = [v for _, v in consumers if v.consumer_identified_by is not ConsumerIdentity.GROUP]
    if guessed:
        names = len({v.consumer for v in guessed})
        found.append(Limitation(
            "consumer_group_unknown",
            f"consumer group unknown for {names} consumers ({len(guessed)} spans without "
            "messaging.consumer.group.name): they are identified by their queue when a span "
            "names it, else by their service, so two consumers of one service merge",
            names,
        ))  # fmt: skip
    unnumbered = sum(1 for _, v in consumers if v.attempt is None)
    if unnumbered:
        found.append(Limitation(
            "attempt_numbers_absent",
            f"attempt numbers absent on {unnumbered} consumer spans (no tracebraid.attempt "
            "or celery.retries): attempts are numbered by start order, and a retry whose "
            "earlier attempts were not exported looks like a first attempt",
            unnumbered,
        ))  # fmt: skip
    unnamed = sum(1 for v in messaging if v.event_name is None)
    if unnamed:
        found.append(Limitation(
            "event_name_absent",
            f"{unnamed} producer/consumer spans carry no event name (tracebraid.event_name): "
            "expected consumers are matched by destination instead",
            unnamed,
        ))  # fmt: skip
    anonymous = sum(1 for node, v in consumers if not graph.delivered[node])
    if anonymous:
        found.append(Limitation(
            "event_id_absent",
            f"{anonymous} consumer spans carry no event ID (messaging.message.id) and no "
            "link to a producer: what they processed, retries and duplicates are unknown",
            anonymous,
        ))  # fmt: skip
    # tracebraid's SDK emits a marker only for work still running after a delay (100 ms),
    # so an SDK-written consumer without one just finished quickly. Only consumers whose
    # instrumentation never emits markers leave in-flight work invisible: say so of those.
    unmarked = [node for node, _ in consumers if not written_by_sdk(graph.spans[node])]
    if unmarked:
        services = sorted({graph.spans[node].service for node in unmarked})
        found.append(Limitation(
            "start_markers_absent",
            f"{len(unmarked)} consumer spans ({_some(services)}) come from instrumentation "
            "that emits no start markers (tracebraid's SDK does, for work still running "
            "after 100 ms): their work in flight is invisible until its span ends",
            len(unmarked),
        ))  # fmt: skip
    if graph.copies or graph.rerouted:
        inferred = len(graph.copies) + len(graph.rerouted)
        found.append(Limitation(
            "message_identity_inferred",
            f"{inferred} publishes carry no message ID and were joined to a message by "
            f"structure alone: {len(graph.copies)} sibling publishes nothing tells apart "
            f"were taken for copies of one message (a duplicate publish), "
            f"{len(graph.rerouted)} republishes to a retry or dead-letter route for the "
            "message being handled; set messaging.message.id on publish to be sure",
            inferred,
        ))  # fmt: skip
    if topology is None and (graph.origin_producers or graph.consumers):
        found.append(Limitation(
            "no_expectations",
            "no topology and no history: only consumers that took an event can be pending; "
            "a consumer that never started is invisible (pass a topology file or history)",
        ))  # fmt: skip
    if graph.missing_parents:
        count = len(graph.missing_parents)
        found.append(Limitation(
            "missing_parents",
            f"{count} spans name a parent that is not among the spans (not exported, not "
            "yet arrived, or outside the query): their chains stop there",
            count,
        ))  # fmt: skip
    if graph.missing_links:
        count = len(graph.missing_links)
        found.append(Limitation(
            "missing_links",
            f"{count} links point to spans that are not among the spans: fetch their "
            "traces to see those causes",
            count,
        ))  # fmt: skip
    if cycles:
        found.append(Limitation(
            "cycles",
            f"{len(cycles)} cycles in the causal graph (causality cannot loop: an "
            "instrumentation bug); paths and chains stop at the first repeated span",
            len(cycles),
        ))  # fmt: skip
    if graph.replayed:
        found.append(Limitation(
            "replayed_spans",
            f"{graph.replayed} spans arrived more than once (same trace and span ID) and "
            "were counted once",
            graph.replayed,
        ))  # fmt: skip
    return tuple(found)
