"""Fixtures: the seed's order workflow (tracebraid-shaped and stock-OpenTelemetry-shaped)
and its analysis, built by the public ``tracebraid.testing.workflows`` builder.

When the SDK-run demo lands, its spans can join ``order_flow`` as another param:
every test here reads the workflow through its event names and business steps.
"""

from __future__ import annotations

import pytest

from tracebraid.analysis import WorkflowAnalysis, analyze
from tracebraid.testing.workflows import Workflow, order_flow


@pytest.fixture(scope="session")
def flow() -> Workflow:
    """The seed's order workflow as tracebraid's SDK writes it."""
    return order_flow()


@pytest.fixture(scope="session")
def stock_flow() -> Workflow:
    """The same workflow as stock OpenTelemetry messaging instrumentation writes it."""
    return order_flow(stock=True)


@pytest.fixture(scope="session")
def analysis(flow: Workflow) -> WorkflowAnalysis:
    return analyze(flow.spans, now_ns=flow.end_ns)
