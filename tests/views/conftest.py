"""Fixtures for the views' tests: the real demo workflow, analysed, and a demo store.

The order flow runs at ``demo_settings.TIME_SCALE`` (why that figure: see there).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from demo_settings import TIME_SCALE

from tracebraid.analysis import Topology, WorkflowAnalysis, analyze, load_topology
from tracebraid.demo import capture_order_flow, topology_file
from tracebraid.model import Span
from tracebraid.views.cli import main


@pytest.fixture(scope="session")
def demo_topology() -> Topology:
    return load_topology(topology_file())


@pytest.fixture(scope="session")
def order_flow_spans() -> list[Span]:
    """The spans of one real order-flow run (SDK, in-memory broker), start markers included."""
    return capture_order_flow(time_scale=TIME_SCALE)


@pytest.fixture(scope="session")
def order_analysis(order_flow_spans: list[Span], demo_topology: Topology) -> WorkflowAnalysis:
    return analyze(order_flow_spans, topology=demo_topology)


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store filled by ``tracebraid demo`` (two orders); its URL."""
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    url = f"sqlite:///{path}"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["demo", "--store", url, "--time-scale", str(TIME_SCALE), "--orders", "2"])
    assert code == 0, out.getvalue()
    assert Path(path).exists()
    return url
