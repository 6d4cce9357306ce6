"""The seed's order workflow, runnable on any broker: the demo and the real-SDK test fixture."""

from tracebraid.demo.capture import capture_order_flow, record_order_flow
from tracebraid.demo.order_flow import (
    SERVICES,
    SETTLED_STEPS,
    STALLED_STEP,
    FlowStalledError,
    Mistake,
    OrderFlow,
    PlacedOrder,
    Timings,
    topology_file,
)
from tracebraid.demo.runner import DemoRun, run_order_flow

__all__ = [
    "SERVICES",
    "SETTLED_STEPS",
    "STALLED_STEP",
    "DemoRun",
    "FlowStalledError",
    "Mistake",
    "OrderFlow",
    "PlacedOrder",
    "Timings",
    "capture_order_flow",
    "record_order_flow",
    "run_order_flow",
    "topology_file",
]
