"""The examples in the SDK's docstrings are true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "tracebraid.sdk",
    "tracebraid.sdk._header_values",
    "tracebraid.sdk._incoming",
    "tracebraid.sdk._records",
    "tracebraid.sdk._traceparent",
    "tracebraid.sdk._tracers",
    "tracebraid.sdk.broker._address",
    "tracebraid.sdk.broker._kafka_progress",
    "tracebraid.sdk.broker._kafka_records",
    "tracebraid.sdk.broker._redis_entries",
    "tracebraid.sdk.broker._settle",
    "tracebraid.sdk.broker.base",
    "tracebraid.sdk.broker.memory",
    "tracebraid.sdk.carriers",
    "tracebraid.sdk.cloudevents",
    "tracebraid.sdk.consume",
    "tracebraid.sdk.context",
    "tracebraid.sdk.envelope",
    "tracebraid.sdk.marker",
    "tracebraid.sdk.propagation",
    "tracebraid.sdk.publish",
    "tracebraid.sdk.retry",
    "tracebraid.sdk.step",
    "tracebraid.sdk.stock",
    "tracebraid.propagator",
    "tracebraid.processor",
    "tracebraid.instrument",
    "tracebraid.testing.capture",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0
