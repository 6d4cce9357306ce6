"""The pytest plugin (``pytest11`` entry point ``tracebraid``): capture spans, assert causality.

Installed with tracebraid, it gives every test suite two fixtures:

- ``causal_capture``: a ``SpanCapture`` of everything the test records through
  tracebraid's SDK, in memory (``tracebraid.testing.capture_spans``);
- ``tracebraid_conventions``: the project's conventions, from the ini option
  ``tracebraid_conventions = path/to/trace-conventions.yaml`` (the seed's when unset).

Use them with the assertions of ``tracebraid.testing``::

    from tracebraid.testing import assert_no_findings, assert_one_workflow

    async def test_checkout_keeps_causality(causal_capture, tracebraid_conventions):
        await place_order_and_drain_queues()
        assert_one_workflow(causal_capture)
        assert_no_findings(causal_capture, at_or_above="warning",
                           conventions=tracebraid_conventions)

Nothing of tracebraid is imported until a fixture is used, so the plugin costs a
suite that does not use it nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tracebraid.analysis.lint import Conventions
    from tracebraid.testing.capture import SpanCapture

__all__ = ["CONVENTIONS_INI", "causal_capture", "pytest_addoption", "tracebraid_conventions"]

CONVENTIONS_INI = "tracebraid_conventions"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the ``tracebraid_conventions`` ini option."""
    parser.addini(
        CONVENTIONS_INI,
        "tracebraid conventions YAML for the tracebraid_conventions fixture (relative to "
        "the ini file's directory)",
        default="",
    )


@pytest.fixture
def causal_capture() -> Iterator[SpanCapture]:
    """The spans this test records through tracebraid's SDK, captured in memory."""
    from tracebraid.testing.capture import capture_spans

    with capture_spans(service="test") as captured:
        yield captured


@pytest.fixture(scope="session")
def tracebraid_conventions(pytestconfig: pytest.Config) -> Conventions:
    """The conventions named by the ``tracebraid_conventions`` ini option, else the seed's."""
    from tracebraid.analysis.lint import DEFAULT_CONVENTIONS, load_conventions

    value = str(pytestconfig.getini(CONVENTIONS_INI) or "")
    if not value:
        return DEFAULT_CONVENTIONS
    path = Path(value)
    if not path.is_absolute():
        base = pytestconfig.inipath.parent if pytestconfig.inipath else pytestconfig.rootpath
        path = base / path
    return load_conventions(path)
