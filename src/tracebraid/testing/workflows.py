"""Synthetic workflows made of ``tracebraid.model.Span`` records, for tests and benchmarks.

``WorkflowBuilder`` writes spans the way tracebraid's SDK does (producer and consumer
spans with the messaging conventions, one span per attempt, start markers), or the
way stock OpenTelemetry instrumentation does (``stock=True``: older attribute keys, no
``tracebraid.*`` attributes, no start markers). Times are milliseconds from the
workflow's start; IDs are deterministic for a given ``seed``.

``order_flow()`` is the seed's order workflow; the other functions build the
adversarial shapes (fan-out, fan-in through a batch consumer's links, a workflow
over many traces, islands, clock skew, duplicates) and ``synthetic()`` builds large
workflows for benchmarks.

The builder itself lives in ``tracebraid.testing._builder`` and is re-exported here.

Example::

    >>> flow = order_flow()
    >>> sorted(flow.events)
    ['inventory.reserved', 'order.placed', 'payment.authorized']
    >>> builder = WorkflowBuilder(correlation_id="order_1")
    >>> post = builder.action("POST /orders", service="checkout-api", duration_ms=12)
    >>> placed = builder.publish(post, "order.placed", destination="orders")
    >>> work = builder.consume(placed, "reserve-inventory", service="inventory", wait_ms=2,
    ...                        tries=[Try(500, error="TimeoutError: dependency timed out",
    ...                                   backoff_ms=200), Try(30)])
    >>> len(work.attempts), len(builder.build().spans)
    (2, 6)
"""

from __future__ import annotations

import random
from collections import deque

from tracebraid.model import SpanKind
from tracebraid.testing._builder import (
    DEFAULT_FIRST_EVENT,
    DEFAULT_START_NS,
    Consumed,
    Message,
    Try,
    Workflow,
    WorkflowBuilder,
)

__all__ = [
    "DEFAULT_FIRST_EVENT",
    "DEFAULT_START_NS",
    "Consumed",
    "Message",
    "Try",
    "Workflow",
    "WorkflowBuilder",
    "clock_skew",
    "duplicates",
    "fan_in",
    "fan_out",
    "islands",
    "link_cycle",
    "order_flow",
    "spread_over_traces",
    "synthetic",
]


def order_flow(
    *,
    stock: bool = False,
    markers: bool = True,
    start_ns: int = DEFAULT_START_NS,
    seed: int = 441,
) -> Workflow:
    """The seed's order workflow, with the shape DESIGN.md sketches.

    ``POST /orders`` (checkout-api) publishes ``order.placed``, which fans out to
    authorize-payment (payment) and reserve-inventory (inventory).
    ``payment.authorized`` leads to project-order-summary (summary), which waits
    about 800 ms in its queue: a lagging consumer. ``inventory.reserved`` leads to
    send-warehouse-webhook (warehouse), whose dependency times out twice (500 ms
    each, back-off 200 ms then 400 ms) before a third attempt succeeds in 80 ms: the
    critical path.
    """
    b = WorkflowBuilder(
        correlation_id="order_441", start_ns=start_ns, seed=seed, stock=stock, markers=markers
    )
    post = b.action("POST /orders", service="checkout-api", duration_ms=12)
    placed = b.publish(post, "order.placed", destination="orders", at_ms=9)
    payment = b.consume(placed, "authorize-payment", service="payment", wait_ms=3, duration_ms=45)
    b.step(payment.last, "POST /charges", at_ms=15, duration_ms=30, kind=SpanKind.CLIENT)
    authorized = b.publish(payment.last, "payment.authorized", destination="payments")
    b.consume(authorized, "project-order-summary", service="summary", wait_ms=812, duration_ms=20)
    inventory = b.consume(
        placed, "reserve-inventory", service="inventory", wait_ms=2, duration_ms=30
    )
    reserved = b.publish(inventory.last, "inventory.reserved", destination="inventory")
    timeout = "TimeoutError: warehouse API did not answer within 500 ms"
    webhook = b.consume(
        reserved,
        "send-warehouse-webhook",
        service="warehouse",
        wait_ms=3,
        tries=[
            Try(500, error=timeout, backoff_ms=200),
            Try(500, error=timeout, backoff_ms=400),
            Try(80),
        ],
    )
    for attempt in webhook.attempts:
        b.step(
            attempt,
            "POST /webhooks/orders",
            at_ms=b.offset_ms(attempt.start_ns) + 1,
            duration_ms=attempt.duration_ns / 1e6 - 2,
            error=attempt.status_message or None,
            kind=SpanKind.CLIENT,
        )
    return b.build()


def fan_out(consumers: int, *, seed: int = 1, stock: bool = False) -> Workflow:
    """One ``order.placed`` event delivered to ``consumers`` consumers, waits varying 1-5 ms."""
    b = WorkflowBuilder(correlation_id="order_fanout", seed=seed, stock=stock)
    post = b.action("POST /orders", service="checkout-api", duration_ms=12)
    placed = b.publish(post, "order.placed", destination="orders", at_ms=9)
    for i in range(consumers):
        b.consume(
            placed,
            f"handle-{i:04d}",
            service=f"svc-{i % 10}",
            group=f"group-{i:04d}",
            wait_ms=1 + i % 5,
            duration_ms=10 + i % 20,
        )
    return b.build()


def fan_in(producers: int, *, seed: int = 2) -> Workflow:
    """``producers`` user actions, each in its own trace publishing ``item.added``, taken
    by one batch consumer (bill-items) whose span links them all (fan-in)."""
    b = WorkflowBuilder(correlation_id="cart_77", seed=seed)
    messages = []
    for i in range(producers):
        post = b.action("POST /cart/items", service="cart-api", at_ms=i * 2.0, duration_ms=5)
        messages.append(b.publish(post, "item.added", destination="cart-items"))
    batch = b.batch(
        messages,
        "bill-items",
        service="billing",
        at_ms=producers * 2.0 + 50,
        duration_ms=40,
    )
    billed = b.publish(batch, "items.billed", destination="billing")
    b.consume(billed, "notify-customer", service="notifications", wait_ms=4, duration_ms=10)
    return b.build()


def spread_over_traces(
    traces: int, *, propagate: bool = True, seed: int = 3, stock: bool = False
) -> Workflow:
    """A chain of hops where every consumer starts a new trace: ``traces`` traces in all.

    With ``propagate`` the hand-offs are link-only (causality intact); without it the
    producer drops the context, every hop is an island to be stitched by event ID.
    """
    b = WorkflowBuilder(correlation_id="order_chain", seed=seed, stock=stock)
    post = b.action("POST /orders", service="checkout-api", duration_ms=10)
    message = b.publish(post, "hop.0", destination="hops", at_ms=7)
    for hop in range(1, traces):
        consumed = b.consume(
            message,
            f"hop-{hop}",
            service=f"svc-{hop % 7}",
            wait_ms=2 + hop % 3,
            duration_ms=8,
            link_only=propagate,
            propagate=propagate,
        )
        if hop < traces - 1:
            message = b.publish(consumed.last, f"hop.{hop}", destination="hops")
    return b.build()


def islands(count: int, *, orphans: int = 0, seed: int = 4) -> Workflow:
    """``count`` orders whose ``order.placed`` reaches legacy-audit without trace context
    (islands that stitching joins back), plus ``orphans`` audit consumers whose event's
    producer is not among the spans at all."""
    b = WorkflowBuilder(correlation_id="order_islands", seed=seed)
    for i in range(count + orphans):
        post = b.action("POST /orders", service="checkout-api", at_ms=i * 20.0, duration_ms=12)
        placed = b.publish(post, "order.placed", destination="orders")
        b.consume(placed, "authorize-payment", service="payment", wait_ms=3, duration_ms=20)
        b.consume(placed, "legacy-audit", service="audit", wait_ms=5, propagate=False)
        if i >= count:
            b.drop(placed.span)
            b.drop(post)
    return b.build()


def clock_skew(skew_ms: float = 40.0, *, seed: int = 5) -> Workflow:
    """``order.placed`` whose inventory consumer's clock runs ``skew_ms`` behind, so it
    appears to start before its producer ended (payment's clock is fine)."""
    b = WorkflowBuilder(correlation_id="order_skew", seed=seed)
    post = b.action("POST /orders", service="checkout-api", duration_ms=12)
    placed = b.publish(post, "order.placed", destination="orders", at_ms=9, duration_ms=2)
    b.consume(placed, "authorize-payment", service="payment", wait_ms=3, duration_ms=45)
    b.consume(
        placed,
        "reserve-inventory",
        service="inventory",
        wait_ms=1,
        duration_ms=30,
        clock_skew_ms=skew_ms,
    )
    return b.build()


def duplicates(*, seed: int = 6) -> Workflow:
    """``order.placed`` published twice with one event ID (an outbox relay re-sending),
    and processed successfully twice by payment: a duplicate publish and a duplicate."""
    b = WorkflowBuilder(correlation_id="order_dup", seed=seed)
    post = b.action("POST /orders", service="checkout-api", duration_ms=12)
    placed = b.publish(post, "order.placed", destination="orders", at_ms=5)
    relay = b.action("outbox-relay", service="outbox", at_ms=30, duration_ms=5,
                     kind=SpanKind.INTERNAL)  # fmt: skip
    again = b.publish(relay, "order.placed", destination="orders", event_id=placed.event_id)
    b.consume(placed, "authorize-payment", service="payment", wait_ms=3, duration_ms=20)
    b.consume(again, "authorize-payment", service="payment", wait_ms=3, duration_ms=20)
    b.consume(placed, "reserve-inventory", service="inventory", wait_ms=2, duration_ms=20)
    return b.build()


def link_cycle(*, seed: int = 7) -> Workflow:
    """Two batch consumers whose spans link to each other (a cycle through links), as
    buggy instrumentation can write; the analysis must terminate and report it."""
    b = WorkflowBuilder(correlation_id="order_cycle", seed=seed)
    post = b.action("POST /orders", service="checkout-api", duration_ms=12)
    placed = b.publish(post, "order.placed", destination="orders", at_ms=5)
    first = b.batch([placed], "aggregate-a", service="agg", at_ms=20, duration_ms=10)
    second = b.batch([placed], "aggregate-b", service="agg", at_ms=25, duration_ms=10)
    first = b.add_link(first, second)
    b.add_link(second, first)
    return b.build()


def synthetic(
    spans: int,
    *,
    seed: int = 0,
    failure_rate: float = 0.1,
    island_rate: float = 0.02,
    in_flight_rate: float = 0.005,
    event_names: int = 20,
    start_ns: int = DEFAULT_START_NS,
    first_event: int = DEFAULT_FIRST_EVENT,
) -> Workflow:
    """A large, realistic workflow of about ``spans`` spans for benchmarks.

    Event names map to fixed consumer sets (so a topology can be learned); consumers
    retry with back-off, some drop trace context (islands), some are still in flight,
    and every consumer publishes zero to two follow-up events. Workflows meant to
    share one store need their own ``first_event`` (event IDs count up from it; equal
    IDs would join the workflows) and, to not overlap in time, their own ``start_ns``.
    """
    rng = random.Random(seed)
    b = WorkflowBuilder(
        correlation_id=f"order_{seed}", seed=seed, start_ns=start_ns, first_event=first_event
    )
    subscribers = {
        f"event-{k}": [f"consumer-{k}-{c}" for c in range(1 + k % 3)] for k in range(event_names)
    }
    names = sorted(subscribers)
    queue: deque[tuple[Message, int]] = deque()
    at = 0.0
    while len(b) < spans or queue:
        if not queue:
            # A new user action of the same business workflow, in its own trace.
            post = b.action("POST /orders", service="checkout-api", at_ms=at, duration_ms=12)
            first = b.publish(post, names[rng.randrange(len(names))], destination="bus")
            queue.append((first, 0))
            at += 50.0
        message, depth = queue.popleft()
        for consumer in subscribers[message.event_name]:
            failures = rng.randint(1, 3) if rng.random() < failure_rate else 0
            tries = [
                Try(rng.uniform(5, 50), error="TimeoutError: dependency timed out",
                    backoff_ms=100.0 * 2**k)
                for k in range(failures)
            ] + [Try(rng.uniform(5, 50))]  # fmt: skip
            consumed = b.consume(
                message,
                consumer,
                service=consumer.rsplit("-", 1)[0],
                group=consumer,
                wait_ms=rng.uniform(1, 20),
                tries=tries,
                propagate=rng.random() >= island_rate,
                in_flight=rng.random() < in_flight_rate,
            )
            if not consumed.attempts:
                continue
            last = consumed.last
            if rng.random() < 0.5:
                b.step(last, "db.query", at_ms=b.offset_ms(last.start_ns) + 1,
                       duration_ms=2, kind=SpanKind.CLIENT)  # fmt: skip
            if depth < 4 and len(b) < spans:
                for _ in range(rng.randint(0, 2)):
                    follow_up = names[rng.randrange(len(names))]
                    queue.append((b.publish(last, follow_up, destination="bus"), depth + 1))
    return b.build()
