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
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from tracebraid import semconv
from tracebraid.model import (
    AttributeValue,
    CorrelationId,
    EventId,
    Span,
    SpanEvent,
    SpanId,
    SpanKind,
    SpanLink,
    StatusCode,
    TraceId,
)

__all__ = [
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

DEFAULT_START_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
_MS = 1_000_000


def _ns(ms: float) -> int:
    return round(ms * _MS)


@dataclass(frozen=True, slots=True)
class Try:
    """One planned processing attempt: how long it runs and how it ends.

    ``error`` (``"TimeoutError: dependency timed out"``) makes it fail; ``backoff_ms`` is
    the pause before the next attempt; ``dead_letter`` marks the attempt that gave up.
    """

    duration_ms: float
    error: str | None = None
    backoff_ms: float = 0.0
    dead_letter: bool = False


@dataclass(frozen=True, slots=True)
class Message:
    """A published event: the producer span and the identities it carries."""

    span: Span
    event_id: EventId
    event_name: str
    destination: str
    correlation_id: CorrelationId | None


@dataclass(frozen=True, slots=True)
class Consumed:
    """The spans of one consumer's processing of one message, one per attempt."""

    message: Message
    attempts: tuple[Span, ...]
    markers: tuple[Span, ...]

    @property
    def last(self) -> Span:
        """The last attempt (the successful one, when there is one)."""
        return self.attempts[-1]


@dataclass(frozen=True, slots=True)
class Workflow:
    """A built workflow: its spans, plus the names tests look things up by."""

    spans: tuple[Span, ...]
    correlation_id: CorrelationId | None
    start_ns: int
    events: dict[str, EventId] = field(default_factory=dict)
    """Event name -> the event ID of its first publish."""

    @property
    def end_ns(self) -> int:
        """The latest end of any span."""
        return max(span.end_ns for span in self.spans)

    @property
    def trace_ids(self) -> frozenset[TraceId]:
        """Every trace the workflow spans."""
        return frozenset(span.trace_id for span in self.spans)


class WorkflowBuilder:
    """Writes the spans of a workflow step by step; ``build()`` returns them.

    ``stock=True`` writes what stock OpenTelemetry messaging instrumentation writes:
    ``messaging.operation``/``messaging.destination``/``messaging.message_id``, no
    consumer group, attempt, event name, correlation or start markers.
    """

    def __init__(
        self,
        *,
        correlation_id: str | None = "order_441",
        start_ns: int = DEFAULT_START_NS,
        seed: int = 0,
        stock: bool = False,
        markers: bool = True,
        system: str = "inproc",
        first_event: int = 8821,
    ) -> None:
        self.correlation_id = CorrelationId(correlation_id) if correlation_id else None
        self.start_ns = start_ns
        self.stock = stock
        self.markers = markers and not stock
        self.system = system
        self._rng = random.Random(seed)
        self._spans: list[Span] = []
        self._positions: dict[tuple[TraceId, SpanId], int] = {}
        self._processing: dict[SpanId, EventId] = {}  # consumer span -> the event it handles
        self._next_event = first_event
        self._events: dict[str, EventId] = {}

    # -- identities --
    def new_trace_id(self) -> TraceId:
        """A fresh trace ID."""
        return TraceId(f"{self._rng.getrandbits(128) | 1:032x}")

    def _span_id(self) -> SpanId:
        return SpanId(f"{self._rng.getrandbits(64) | 1:016x}")

    def _event_id(self) -> EventId:
        event_id = EventId(f"evt_{self._next_event}")
        self._next_event += 1
        return event_id

    def at(self, ms: float) -> int:
        """The timestamp ``ms`` milliseconds after the workflow's start."""
        return self.start_ns + _ns(ms)

    def _add(self, span: Span) -> Span:
        self._positions[span.key] = len(self._spans)
        self._spans.append(span)
        return span

    # -- spans --
    def action(
        self,
        name: str,
        *,
        service: str,
        duration_ms: float,
        at_ms: float = 0.0,
        kind: SpanKind = SpanKind.SERVER,
        trace_id: TraceId | None = None,
    ) -> Span:
        """The user action a workflow starts from (``POST /orders``): a root span."""
        return self._add(
            Span(
                trace_id=trace_id or self.new_trace_id(),
                span_id=self._span_id(),
                parent_span_id=None,
                name=name,
                kind=kind,
                start_ns=self.at(at_ms),
                end_ns=self.at(at_ms + duration_ms),
                service=service,
                status=StatusCode.OK if kind is SpanKind.SERVER else StatusCode.UNSET,
                attributes={"http.request.method": name.split(" ")[0]} if " " in name else {},
            )
        )

    def step(
        self,
        parent: Span,
        name: str,
        *,
        at_ms: float,
        duration_ms: float,
        error: str | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> Span:
        """A business step or client call inside ``parent`` (same trace)."""
        end = self.at(at_ms + duration_ms)
        status, status_message, events = _failure(error, end)
        return self._add(
            Span(
                trace_id=parent.trace_id,
                span_id=self._span_id(),
                parent_span_id=parent.span_id,
                name=name,
                kind=kind,
                start_ns=self.at(at_ms),
                end_ns=end,
                service=parent.service,
                status=status,
                status_message=status_message,
                events=events,
            )
        )

    def publish(
        self,
        parent: Span,
        event_name: str,
        *,
        destination: str,
        at_ms: float | None = None,
        duration_ms: float = 1.0,
        event_id: EventId | None = None,
    ) -> Message:
        """A PRODUCER span publishing ``event_name`` from inside ``parent``.

        Without ``at_ms`` it publishes just before ``parent`` ends. The causation ID is
        the event ``parent`` was processing, when ``parent`` is a consumer span.
        """
        if at_ms is None:
            start = max(parent.start_ns, parent.end_ns - _ns(duration_ms + 1.0))
        else:
            start = self.at(at_ms)
        event_id = event_id or self._event_id()
        self._events.setdefault(event_name, event_id)
        attributes: dict[str, AttributeValue] = {semconv.MESSAGING_SYSTEM: self.system}
        if self.stock:
            attributes["messaging.destination"] = destination
            attributes["messaging.message_id"] = event_id
        else:
            attributes[semconv.OPERATION_TYPE] = "send"
            attributes[semconv.DESTINATION] = destination
            attributes[semconv.MESSAGE_ID] = event_id
            attributes[semconv.EVENT_NAME] = event_name
            if self.correlation_id:
                attributes[semconv.CORRELATION_ID] = self.correlation_id
            cause = self._processing.get(parent.span_id)
            if cause:
                attributes[semconv.CAUSATION_ID] = cause
        span = self._add(
            Span(
                trace_id=parent.trace_id,
                span_id=self._span_id(),
                parent_span_id=parent.span_id,
                name=f"{destination} send" if self.stock else f"{event_name} publish",
                kind=SpanKind.PRODUCER,
                start_ns=start,
                end_ns=start + _ns(duration_ms),
                service=parent.service,
                attributes=attributes,
            )
        )
        return Message(span, event_id, event_name, destination, self.correlation_id)

    def consume(
        self,
        message: Message,
        step: str,
        *,
        service: str,
        wait_ms: float = 2.0,
        duration_ms: float = 20.0,
        tries: Sequence[Try] | None = None,
        group: str | None = None,
        propagate: bool = True,
        link_only: bool = False,
        in_flight: bool = False,
        clock_skew_ms: float = 0.0,
    ) -> Consumed:
        """A consumer processing ``message``: one CONSUMER span per attempt.

        ``wait_ms`` is the queue wait before the first attempt; ``tries`` plans every
        attempt (default: one successful attempt of ``duration_ms``). ``group`` is the
        consumer group (default: the service). ``propagate=False`` drops the trace
        context, as a producer that loses headers does: the consumer starts a new trace
        with neither parent nor link (an island). ``link_only=True`` starts a new trace
        linked to the producer (a correct, link-only hand-off). ``in_flight=True``
        writes only the start marker of the last attempt, as for work still running.
        ``clock_skew_ms`` shifts the consumer's clock back by that much.
        """
        plan = list(tries) if tries else [Try(duration_ms)]
        trace_id = message.span.trace_id
        parent: SpanId | None = message.span.span_id
        links: tuple[SpanLink, ...] = (SpanLink(message.span.trace_id, message.span.span_id),)
        if not propagate or link_only:
            trace_id, parent = self.new_trace_id(), None
            links = links if link_only else ()
        attempts: list[Span] = []
        markers: list[Span] = []
        start = message.span.end_ns + _ns(wait_ms) - _ns(clock_skew_ms)
        for number, planned in enumerate(plan, start=1):
            attributes = self._consumer_attributes(message, step, group or service, number)
            if not self.stock:
                attributes[semconv.OUTCOME] = (
                    "dead_letter" if planned.dead_letter else "error" if planned.error else "ok"
                )
                if planned.dead_letter:
                    attributes[semconv.DEAD_LETTER] = True
            end = start + _ns(planned.duration_ms)
            status, status_message, events = _failure(planned.error, end)
            span = Span(
                trace_id=trace_id,
                span_id=self._span_id(),
                parent_span_id=parent,
                name=f"{message.destination} receive" if self.stock else step,
                kind=SpanKind.CONSUMER,
                start_ns=start,
                end_ns=end,
                service=service,
                status=status,
                status_message=status_message,
                attributes=attributes,
                events=events,
                links=links,
            )
            last = number == len(plan)
            if self.markers or (in_flight and last):
                markers.append(self._add(_marker(span, self._span_id())))
            if not (in_flight and last):
                attempts.append(self._add(span))
                self._processing[span.span_id] = message.event_id
            start = span.end_ns + _ns(planned.backoff_ms)
        return Consumed(message, tuple(attempts), tuple(markers))

    def batch(
        self,
        messages: Sequence[Message],
        step: str,
        *,
        service: str,
        at_ms: float,
        duration_ms: float,
        group: str | None = None,
    ) -> Span:
        """A batch consumer: one CONSUMER span in a new trace linking every message."""
        attributes = self._consumer_attributes(None, step, group or service, 1)
        attributes[semconv.BATCH_COUNT] = len(messages)
        if messages:
            attributes[semconv.DESTINATION if not self.stock else "messaging.destination"] = (
                messages[0].destination
            )
        return self._add(
            Span(
                trace_id=self.new_trace_id(),
                span_id=self._span_id(),
                parent_span_id=None,
                name=step,
                kind=SpanKind.CONSUMER,
                start_ns=self.at(at_ms),
                end_ns=self.at(at_ms + duration_ms),
                service=service,
                attributes=attributes,
                links=tuple(
                    SpanLink(m.span.trace_id, m.span.span_id, {semconv.MESSAGE_ID: m.event_id})
                    for m in messages
                ),
            )
        )

    def add_link(self, holder: Span, target: Span) -> Span:
        """Give ``holder`` (already written) a link to ``target``; returns the new span."""
        updated = replace(holder, links=(*holder.links, SpanLink(target.trace_id, target.span_id)))
        self._spans[self._positions[holder.key]] = updated
        return updated

    def drop(self, span: Span) -> None:
        """Remove ``span``, as a lost export would: its children keep their parent ID."""
        position = self._positions.pop(span.key)
        last = self._spans.pop()
        if position < len(self._spans):
            self._spans[position] = last
            self._positions[last.key] = position

    def __len__(self) -> int:
        return len(self._spans)

    def build(self) -> Workflow:
        """The workflow written so far."""
        return Workflow(tuple(self._spans), self.correlation_id, self.start_ns, dict(self._events))

    def _consumer_attributes(
        self, message: Message | None, step: str, group: str, attempt: int
    ) -> dict[str, AttributeValue]:
        attributes: dict[str, AttributeValue] = {semconv.MESSAGING_SYSTEM: self.system}
        if self.stock:
            attributes["messaging.operation"] = "receive"
            if message is not None:
                attributes["messaging.destination"] = message.destination
                attributes["messaging.message_id"] = message.event_id
            return attributes
        attributes[semconv.OPERATION_TYPE] = "process"
        attributes[semconv.CONSUMER_GROUP] = group
        attributes[semconv.STEP] = step
        attributes[semconv.ATTEMPT] = attempt
        if self.correlation_id:
            attributes[semconv.CORRELATION_ID] = self.correlation_id
        if message is not None:
            attributes[semconv.DESTINATION] = message.destination
            attributes[semconv.MESSAGE_ID] = message.event_id
            attributes[semconv.EVENT_NAME] = message.event_name
            cause = message.span.attributes.get(semconv.CAUSATION_ID)
            if isinstance(cause, str):
                attributes[semconv.CAUSATION_ID] = cause
        return attributes


def _failure(error: str | None, at_ns: int) -> tuple[StatusCode, str, tuple[SpanEvent, ...]]:
    """Status, status message and exception event of a span that failed with ``error``."""
    if error is None:
        return StatusCode.UNSET, "", ()
    kind, _, text = error.partition(": ")
    exception = {"exception.type": kind, "exception.message": text or kind}
    return StatusCode.ERROR, error, (SpanEvent("exception", at_ns, exception),)


def _marker(span: Span, marker_id: SpanId) -> Span:
    attributes = dict(span.attributes)
    attributes[semconv.MARKER_FOR_SPAN] = span.span_id
    return Span(
        trace_id=span.trace_id,
        span_id=marker_id,
        parent_span_id=span.parent_span_id,
        name=span.name,
        kind=span.kind,
        start_ns=span.start_ns,
        end_ns=span.start_ns,
        service=span.service,
        attributes=attributes,
        events=(SpanEvent(semconv.START_MARKER_EVENT, span.start_ns),),
        links=span.links,
        scope=semconv.START_MARKER_SCOPE,
    )


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
            at_ms=(attempt.start_ns - b.start_ns) / _MS + 1,
            duration_ms=attempt.duration_ns / _MS - 2,
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
) -> Workflow:
    """A large, realistic workflow of about ``spans`` spans for benchmarks.

    Event names map to fixed consumer sets (so a topology can be learned); consumers
    retry with back-off, some drop trace context (islands), some are still in flight,
    and every consumer publishes zero to two follow-up events.
    """
    rng = random.Random(seed)
    b = WorkflowBuilder(correlation_id=f"order_{seed}", seed=seed)
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
                b.step(last, "db.query", at_ms=(last.start_ns - b.start_ns) / _MS + 1,
                       duration_ms=2, kind=SpanKind.CLIENT)  # fmt: skip
            if depth < 4 and len(b) < spans:
                for _ in range(rng.randint(0, 2)):
                    follow_up = names[rng.randrange(len(names))]
                    queue.append((b.publish(last, follow_up, destination="bus"), depth + 1))
    return b.build()
