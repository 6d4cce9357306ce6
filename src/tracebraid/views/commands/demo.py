"""``tracebraid demo``: run the seed's order flow and print its causal tree.

Six services on the in-process broker: an order fans out to authorize-payment and
reserve-inventory; the warehouse webhook times out twice before it succeeds; the
order summary lags behind its sibling; award-loyalty-points is still in flight.
Every span goes into the store, and the tree is read back from there, exactly as
``tracebraid show`` would read it.

Example::

    $ tracebraid demo
    $ tracebraid demo --orders 20 --time-scale 0.1 --store sqlite:///demo.db
    $ ./scripts/tracebraid list    # from the repository: the same default store
    $ tracebraid demo --json | jq .workflow.summary
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from rich.console import Group
from rich.text import Text

from tracebraid.analysis import load_topology
from tracebraid.demo import DemoRun, run_order_flow, topology_file
from tracebraid.demo.mistakes import MISTAKES
from tracebraid.errors import ConfigurationError
from tracebraid.sdk.broker import Broker, open_broker
from tracebraid.store import SpanStore, open_store
from tracebraid.store.exporter import StoreSpanExporter
from tracebraid.views.commands._options import (
    EXIT_OK,
    add_command,
    add_ids,
    add_json,
    add_store,
    guarded,
    positive_int,
    print_json,
    program,
    show,
    store_url,
)
from tracebraid.views.documents import demo_document, workflow_document
from tracebraid.views.schema import DemoOrderJson
from tracebraid.views.source import LoadedWorkflow, default_store, load
from tracebraid.views.tree import render_tree

__all__ = ["BROKERS", "register", "run"]

BROKERS = ("memory", "rabbitmq", "redis", "nats", "kafka")
_EXPORT_DELAY_MS = 50


def register(subparsers: Any) -> None:
    """Add the ``demo`` sub-command."""
    add_command(
        subparsers,
        "demo",
        run,
        __doc__,
        help="run the order-flow demo into a store and print its causal tree",
        options=(
            add_store,
            _add_flow,
            add_ids,
            add_json,
        ),
    )


def _add_flow(parser: argparse.ArgumentParser) -> None:
    """How the demo runs: how many orders, how fast, on which broker, with which mistakes."""
    parser.add_argument(
        "--orders", type=positive_int, default=1, metavar="N", help="orders to place at once (1)"
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="F",
        help="multiply every delay of the flow (0.1 runs it ten times faster)",
    )
    parser.add_argument(
        "--broker",
        choices=BROKERS,
        default="memory",
        help="where the messages go: the in-process broker (default) or a real one",
    )
    parser.add_argument("--broker-url", metavar="URL", help="the real broker's address")
    parser.add_argument(
        "--with-mistakes",
        action="store_true",
        help="plant each of the seed's common mistakes once (then: tracebraid lint)",
    )


def _broker(name: str, url: str | None) -> Broker:
    # temporary: a demo run on a shared server removes its queues and streams when it ends,
    # stalled loyalty messages included.
    return open_broker(name, url, temporary=True)


async def _run_flow(args: argparse.Namespace, store: SpanStore) -> DemoRun:
    processor: SpanProcessor = BatchSpanProcessor(
        StoreSpanExporter(store), schedule_delay_millis=_EXPORT_DELAY_MS
    )
    # Runs on a shared real broker get their own destinations, so they never meet.
    namespace = "" if args.broker == "memory" else f"tracebraid-demo-{time.time_ns()}."
    try:
        async with _broker(args.broker, args.broker_url) as broker:
            return await run_order_flow(
                broker,
                processor,
                orders=args.orders,
                time_scale=args.time_scale,
                namespace=namespace,
                mistakes=MISTAKES if args.with_mistakes else (),
            )
    finally:
        processor.shutdown()  # flushes what is queued, then stops the export thread


def _hints(url: str, loaded: LoadedWorkflow, others: int) -> Text:
    analysis = loaded.analysis
    store = "" if url == default_store() else f" --store {url}"
    cli = program()
    webhook = next((b for b in analysis.branches if b.retries), None)
    event = webhook.event_id if webhook is not None else analysis.branches[0].event_id
    lines = [
        "",
        f"stored in {url}"
        + (f" with {others} more order(s): {cli} pending{store}" if others else ""),
        "ask more:",
        f"  {cli} list{store}",
        f"  {cli} show {loaded.key}{store} --ids",
        f"  {cli} why {event}{store}",
        f"  {cli} latency {loaded.key}{store}",
        f"  {cli} retries{store}",
        f"  {cli} pending{store}",
        f"  {cli} export {loaded.key} --mermaid{store}",
    ]
    return Text("\n".join(lines), style="dim")


def _options_are_valid(args: argparse.Namespace) -> None:
    if args.orders < 1:
        raise ConfigurationError(f"--orders must be at least 1, got {args.orders}")
    if args.time_scale <= 0:
        raise ConfigurationError(f"--time-scale must be above 0, got {args.time_scale}")


@guarded("demo")
def run(args: argparse.Namespace) -> int:
    """Run the flow, read the first order's workflow back from the store, print its tree."""
    _options_are_valid(args)
    url = store_url(args)
    topology = load_topology(topology_file())
    store = open_store(url)
    try:
        flow = asyncio.run(_run_flow(args, store))
        first = flow.orders[0]
        loaded = load(
            first.correlation_id, store, url=url, topology=topology, now_ns=time.time_ns()
        )
    finally:
        store.close()
    if args.json:
        orders: list[DemoOrderJson] = [
            {"correlation_id": o.correlation_id, "trace_id": o.trace_id, "event_id": o.event_id}
            for o in flow.orders
        ]
        workflow = workflow_document(loaded.analysis, key=loaded.key)
        print_json(demo_document(workflow, store=url, orders=orders))
        return EXIT_OK
    broker = "the in-process broker" if args.broker == "memory" else args.broker
    count = len(flow.orders)
    intro = Text(
        f"ran {count} order{'s' if count > 1 else ''} through the order flow on {broker}; "
        "the tree below is read back from the store",
        style="dim",
    )
    show(Group(intro, Text(""), render_tree(loaded.analysis, ids=args.ids)))
    show(_hints(url, loaded, count - 1))
    sys.stdout.flush()
    return EXIT_OK
