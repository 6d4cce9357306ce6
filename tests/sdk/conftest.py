from __future__ import annotations

from collections.abc import Iterator

import pytest

from tracebraid.testing import SpanCapture, capture_spans


@pytest.fixture
def captured() -> Iterator[SpanCapture]:
    """tracebraid's spans for the test, through the real OpenTelemetry SDK, in memory."""
    with capture_spans(service="orders-test") as capture:
        yield capture
