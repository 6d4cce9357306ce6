"""The seed's order workflow: six small services on one broker, each its own OpenTelemetry service.

::

    checkout-api   POST /orders ─▶ order.placed (orders)
    ├─▶ authorize-payment (payment) ─▶ payment.authorized (payments)
    │   ├─▶ project-order-summary (summary)  lags: each delivery held back 800 ms
    │   └─▶ award-loyalty-points (loyalty)   stalls 30 s: in flight when the demo reports
    └─▶ reserve-inventory (inventory) ─▶ inventory.reserved (inventory)
        └─▶ send-warehouse-webhook (warehouse)
              call-warehouse-api times out twice (500 ms each), back-off 200 ms then 400 ms,
              and succeeds on the third attempt

Every delay is a field of ``Timings``; ``Timings().scaled(0.05)`` runs the same
shape twenty times faster for tests. Nothing here knows which broker carries the
messages: the flow takes any ``tracebraid.sdk.broker.Broker``.

Example::

    flow = OrderFlow(broker, providers)  # providers: service name -> TracerProvider
    await flow.start()
    placed = await flow.place_order(441)
    await flow.settled([placed.correlation_id])
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

from opentelemetry.trace import SpanKind, TracerProvider

from tracebraid.errors import ConfigurationError, TracebraidError
from tracebraid.model import CorrelationId, EventId, TraceId
from tracebraid.sdk.broker.base import Broker, RetryPolicy
from tracebraid.sdk.broker.bus import EventBus, Processed, Received
from tracebraid.sdk.context import Outcome, correlation
from tracebraid.sdk.step import step

__all__ = [
    "CHECKOUT",
    "SERVICES",
    "SETTLED_STEPS",
    "STALLED_STEP",
    "FlowStalledError",
    "Mistake",
    "OrderFlow",
    "PlacedOrder",
    "Timings",
    "WarehouseApi",
    "topology_file",
]

CHECKOUT = "checkout-api"
SERVICES = (CHECKOUT, "payment", "inventory", "summary", "loyalty", "warehouse")
"""The flow's services: each gets its own TracerProvider with this ``service.name``."""

# Destinations (before the flow's namespace prefix) and the one event name each carries.
ORDERS, PAYMENTS, INVENTORY = "orders", "payments", "inventory"

SETTLED_STEPS = (
    "authorize-payment",
    "reserve-inventory",
    "project-order-summary",
    "send-warehouse-webhook",
)
"""The branches that finish for every order; the flow is settled when all have succeeded."""
STALLED_STEP = "award-loyalty-points"
"""The branch deliberately left in flight: it has started when the flow settles, never ended."""

_TRACER_SCOPE = "tracebraid.demo"


def topology_file() -> Path:
    """The flow's topology (expected consumers per event, with deadlines) for the analysis."""
    return Path(__file__).with_name("topology.yaml")


class FlowStalledError(TracebraidError):
    """The order flow did not settle in time; the message names the branches still missing."""


@dataclass(frozen=True, slots=True)
class Timings:
    """Every delay of the flow, in seconds (the seed's story at ``scaled(1.0)``).

    ``loyalty_stall`` is how long the stalled branch stays in flight; ``scaled`` leaves
    it alone, as it only has to outlast the run (and the SDK's start-marker delay).
    """

    checkout: float = 0.012
    payment: float = 0.045
    inventory: float = 0.030
    summary: float = 0.020
    summary_lag: float = 0.8
    warehouse_call: float = 0.080
    warehouse_timeout: float = 0.5
    warehouse_backoff: tuple[float, ...] = (0.2, 0.4)
    loyalty_stall: float = 30.0

    def scaled(self, factor: float) -> Timings:
        """Every delay multiplied by ``factor`` (0.05 runs the flow twenty times faster)."""
        if factor <= 0:
            raise ConfigurationError(f"time scale must be above 0, got {factor}")
        changes: dict[str, object] = {}
        for spec in fields(self):
            if spec.name == "loyalty_stall":
                continue
            value = getattr(self, spec.name)
            if isinstance(value, tuple):
                changes[spec.name] = tuple(v * factor for v in value)
            else:
                changes[spec.name] = value * factor
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    """One order the checkout accepted: its workflow, the trace it began, its first event."""

    number: int
    correlation_id: CorrelationId
    trace_id: TraceId
    event_id: EventId


class WarehouseApi:
    """The warehouse's HTTP API as the webhook sees it: the first ``hangs`` calls per order hang.

    A hung call never answers; the caller's timeout ends it, as a real one would.
    """

    def __init__(self, latency: float, *, hangs: int = 2) -> None:
        self.latency = latency
        self.hangs = hangs
        self._calls: Counter[str] = Counter()

    async def notify(self, order_id: str) -> None:
        """Tell the warehouse to ship ``order_id``."""
        self._calls[order_id] += 1
        if self._calls[order_id] <= self.hangs:
            await asyncio.Event().wait()  # no answer, ever
        await asyncio.sleep(self.latency)


Mistake = Callable[["OrderFlow"], None]
"""Plants one of the seed's common mistakes by changing one service of a flow before it
starts (the hook ``tracebraid demo --with-mistakes`` uses; the mistakes themselves
belong to the conventions lint)."""


class OrderFlow:
    """The order workflow's services over ``broker``, with ``providers[service]`` for each.

    ``namespace`` prefixes every destination, so runs on a shared real broker do not
    meet; ``concurrency`` bounds the deliveries each consumer processes at once.
    """

    def __init__(
        self,
        broker: Broker,
        providers: Mapping[str, TracerProvider],
        *,
        timings: Timings = Timings(),
        concurrency: int = 1,
        namespace: str = "",
        mistakes: Sequence[Mistake] = (),
    ) -> None:
        missing = [service for service in SERVICES if service not in providers]
        if missing:
            raise ConfigurationError(f"OrderFlow needs a TracerProvider for {missing}")
        self.broker = broker
        self.providers = dict(providers)
        self.timings = timings
        self.concurrency = concurrency
        self.namespace = namespace
        self.mistakes = tuple(mistakes)
        self.warehouse_api = WarehouseApi(timings.warehouse_call)
        self.buses = {
            service: EventBus(
                broker,
                tracer_provider=providers[service],
                observers=[self._observe],
                start_markers=True,
            )
            for service in SERVICES
        }
        self._done: dict[str, set[str]] = {}
        self._changed = asyncio.Event()

    def destination(self, name: str) -> str:
        """The broker destination for ``name`` (``orders``, ``payments``, ``inventory``)."""
        return self.namespace + name

    async def start(self) -> None:
        """Plant any mistakes, then subscribe every consumer (before any order is placed)."""
        for plant in self.mistakes:
            plant(self)
        t, n = self.timings, self.concurrency
        payment, inventory = self.buses["payment"], self.buses["inventory"]
        # Side by side: a Kafka consumer's group join takes seconds, and the five are
        # independent of each other.
        await asyncio.gather(
            payment.subscribe(
                self.destination(ORDERS),
                self.authorize_payment,
                group="authorize-payment",
                concurrency=n,
            ),
            inventory.subscribe(
                self.destination(ORDERS),
                self.reserve_inventory,
                group="reserve-inventory",
                concurrency=n,
            ),
            self.buses["summary"].subscribe(
                self.destination(PAYMENTS),
                self.project_order_summary,
                group="project-order-summary",
                concurrency=n,
                delay=t.summary_lag,
            ),
            self.buses["loyalty"].subscribe(
                self.destination(PAYMENTS),
                self.award_loyalty_points,
                group=STALLED_STEP,
                # Each stalled delivery holds a slot; enough slots that every order's starts.
                concurrency=max(n, 1),
            ),
            self.buses["warehouse"].subscribe(
                self.destination(INVENTORY),
                self.send_warehouse_webhook,
                group="send-warehouse-webhook",
                retry=RetryPolicy(max_attempts=3, backoff=t.warehouse_backoff),
                concurrency=n,
            ),
        )

    # -- checkout-api: the user action --

    async def place_order(self, number: int) -> PlacedOrder:
        """``POST /orders`` on checkout-api: a SERVER span that publishes ``order.placed``."""
        order_id = f"order_{number}"
        self._done.setdefault(order_id, set())
        tracer = self.providers[CHECKOUT].get_tracer(_TRACER_SCOPE)
        body = {"order_id": order_id, "items": [{"sku": "sku-42", "quantity": 2}], "total": "84.00"}
        with (
            correlation(order_id) as correlation_id,
            tracer.start_as_current_span(
                "POST /orders",
                kind=SpanKind.SERVER,
                attributes={
                    "http.request.method": "POST",
                    "http.route": "/orders",
                    "url.path": "/orders",
                    "tracebraid.step": "place-order",
                },
            ) as span,
        ):
            await asyncio.sleep(self.timings.checkout)
            message = await self.buses[CHECKOUT].publish(
                "order.placed", _encode(body), destination=self.destination(ORDERS)
            )
            span.set_attribute("http.response.status_code", 201)
        assert message.event_id is not None
        return PlacedOrder(
            number=number,
            correlation_id=correlation_id,
            trace_id=TraceId(format(span.get_span_context().trace_id, "032x")),
            event_id=message.event_id,
        )

    # -- the consumers, one per business step --

    async def authorize_payment(self, received: Received) -> None:
        """payment: authorize the card, then announce ``payment.authorized``."""
        order = _decode(received)
        await asyncio.sleep(self.timings.payment)
        await self.buses["payment"].publish(
            "payment.authorized",
            _encode({"order_id": order["order_id"], "amount": order.get("total")}),
            destination=self.destination(PAYMENTS),
        )

    async def reserve_inventory(self, received: Received) -> None:
        """inventory: reserve the items, then announce ``inventory.reserved``."""
        order = _decode(received)
        await asyncio.sleep(self.timings.inventory)
        await self.buses["inventory"].publish(
            "inventory.reserved",
            _encode({"order_id": order["order_id"], "items": order.get("items", [])}),
            destination=self.destination(INVENTORY),
        )

    async def project_order_summary(self, received: Received) -> None:
        """summary: update the customer's order summary (its deliveries lag behind)."""
        _decode(received)
        await asyncio.sleep(self.timings.summary)

    async def award_loyalty_points(self, received: Received) -> None:
        """loyalty: stalls on a slow points ledger, so the demo reports it in flight."""
        order = _decode(received)
        self._mark(str(order["order_id"]), STALLED_STEP)
        await asyncio.sleep(self.timings.loyalty_stall)

    async def send_warehouse_webhook(self, received: Received) -> None:
        """warehouse: call the warehouse API; a timeout fails the attempt, the broker retries."""
        order = _decode(received)
        async with step("call-warehouse-api", tracer_provider=self.providers["warehouse"]):
            async with asyncio.timeout(self.timings.warehouse_timeout):
                await self.warehouse_api.notify(str(order["order_id"]))

    # -- knowing when the flow has settled, on any broker --

    async def settled(self, correlation_ids: Collection[str]) -> None:
        """Wait until every order's ``SETTLED_STEPS`` succeeded and its ``STALLED_STEP`` began."""
        expected = {*SETTLED_STEPS, STALLED_STEP}
        while any(not expected <= self._done.get(c, set()) for c in correlation_ids):
            self._changed.clear()
            await self._changed.wait()

    def missing(self, correlation_ids: Collection[str]) -> dict[str, list[str]]:
        """Per order, the branches that have not settled yet (for error messages)."""
        expected = (*SETTLED_STEPS, STALLED_STEP)
        return {
            c: [s for s in expected if s not in self._done.get(c, set())]
            for c in correlation_ids
            if not {*expected} <= self._done.get(c, set())
        }

    def _observe(self, processed: Processed) -> None:
        if processed.outcome is not Outcome.OK:
            return
        try:
            body = json.loads(processed.delivery.payload)
        except ValueError:  # a planted mistake may change payloads; observers never raise
            return
        order_id = body.get("order_id") if isinstance(body, dict) else None
        if isinstance(order_id, str):
            self._mark(order_id, processed.step)

    def _mark(self, order_id: str, step_name: str) -> None:
        self._done.setdefault(order_id, set()).add(step_name)
        self._changed.set()


def _encode(body: Mapping[str, object]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _decode(received: Received) -> dict[str, object]:
    body = json.loads(received.payload)
    if not isinstance(body, dict) or not isinstance(body.get("order_id"), str):
        raise ValueError(f"not an order message: {received.payload[:80]!r}")
    return body
