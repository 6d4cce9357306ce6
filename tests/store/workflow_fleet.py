"""Workflows spread over traces for the closure's tests, and a store that counts its calls."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from store_factories import consumer, make_span, producer, trace_of

from tracebraid.model import Span, SpanKind
from tracebraid.store import SpanStore

__all__ = ["CountingStore", "Fleet", "build_fleet"]


class CountingStore:
    """A store whose method calls are counted by name (``calls``); answers unchanged."""

    def __init__(self, store: SpanStore) -> None:
        self._store = store
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return method(*args, **kwargs)

        return counted

    @property
    def total(self) -> int:
        return sum(self.calls.values())


@dataclass
class Fleet:
    """Order 1's workflow over five traces, order 2's over one, and an unrelated trace."""

    checkout: list[Span]  # trace A: POST /orders, publish evt_1, payment consumes it
    island: list[Span]  # trace B: summary consumes evt_2 in a new trace, publishes evt_3
    batch: list[Span]  # trace C: a batch consumer linking to order 1's and order 2's events
    downstream: list[Span]  # trace D: a consumer of evt_3, again in a new trace
    linked_out: list[Span]  # trace E: a span order 1's consumer links to (no identities)
    order_2: list[Span]  # trace F: another order's workflow
    unrelated: list[Span]

    @property
    def order_1(self) -> list[Span]:
        return sorted(
            self.checkout + self.island + self.batch + self.downstream + self.linked_out,
            key=lambda s: (s.start_ns, s.trace_id, s.span_id),
        )


def build_fleet() -> Fleet:
    linked_out = [make_span(name="audit-log", start_ms=1)]
    root = make_span(name="POST /orders", kind=SpanKind.SERVER, service="checkout-api")
    placed = producer(root, "evt_1", correlation_id="order_1", start_ms=2)
    payment = consumer(
        placed, "evt_1", "payment", correlation_id="order_1", start_ms=5, links=tuple(linked_out)
    )
    authorized = producer(
        payment, "evt_2", correlation_id="order_1", causation_id="evt_1", start_ms=8
    )
    # No propagation, no correlation: the island is found only through evt_2.
    summary = consumer(None, "evt_2", "summary", start_ms=20)
    projected = producer(summary, "evt_3", causation_id="evt_2", start_ms=25)
    webhook = consumer(None, "evt_3", "warehouse", start_ms=30)
    other_root = make_span(name="POST /orders", kind=SpanKind.SERVER, start_ms=3)
    other_placed = producer(other_root, "evt_9", correlation_id="order_2", start_ms=4)
    other_work = consumer(other_placed, "evt_9", "payment", correlation_id="order_2", start_ms=6)
    batch = consumer(None, "batch_1", "reporting", start_ms=40, links=(placed, other_placed))
    return Fleet(
        checkout=[root, placed, payment, authorized],
        island=[summary, projected],
        batch=[batch],
        downstream=[webhook],
        linked_out=linked_out,
        order_2=[other_root, other_placed, other_work],
        unrelated=trace_of(3, start_ms=50),
    )
