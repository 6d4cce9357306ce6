"""A fleet of small order workflows with known trouble, for the retention tests."""

from __future__ import annotations

import random
from dataclasses import dataclass

from tracebraid.model import Span
from tracebraid.testing.workflows import Try, WorkflowBuilder

__all__ = ["KINDS", "Planned", "fleet"]

# kind -> share of the fleet; everything but "healthy" must be kept whole
KINDS = {
    "healthy": 0.80,
    "retry": 0.07,
    "failure": 0.04,
    "dead_letter": 0.03,
    "duplicate": 0.03,
    "in_flight": 0.03,
}


@dataclass(frozen=True, slots=True)
class Planned:
    """One workflow: its correlation ID, what is wrong with it, and its spans."""

    correlation_id: str
    kind: str
    spans: tuple[Span, ...]

    @property
    def interesting(self) -> bool:
        return self.kind != "healthy"


def _workflow(n: int, kind: str) -> Planned:
    cid = f"order_{n:06d}"
    builder = WorkflowBuilder(
        correlation_id=cid, seed=n, first_event=n * 10, start_ns=1_767_225_600_000_000_000 + n
    )
    post = builder.action("POST /orders", service="checkout-api", duration_ms=5)
    placed = builder.publish(post, "order.placed", destination="orders")
    builder.consume(placed, "reserve-inventory", service="inventory", duration_ms=10)
    tries: list[Try] = [Try(15)]
    in_flight = False
    if kind == "retry":
        tries = [Try(15, error="TimeoutError: slow", backoff_ms=20), Try(15)]
    elif kind == "failure":
        tries = [Try(15, error="ValueError: bad address")]
    elif kind == "dead_letter":
        tries = [Try(15, error="ValueError: bad address", dead_letter=True)]
    elif kind == "duplicate":
        tries = [Try(15), Try(15)]
    elif kind == "in_flight":
        in_flight = True
    builder.consume(placed, "charge-payment", service="payment", tries=tries, in_flight=in_flight)
    return Planned(cid, kind, tuple(builder.build().spans))


def fleet(count: int, *, seed: int = 17) -> list[Planned]:
    """``count`` workflows, their kinds drawn with ``KINDS``' shares."""
    rng = random.Random(seed)
    kinds = rng.choices(list(KINDS), weights=list(KINDS.values()), k=count)
    return [_workflow(n, kind) for n, kind in enumerate(kinds)]
