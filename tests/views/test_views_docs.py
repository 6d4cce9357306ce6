"""The examples in the views' docstrings run, so they cannot drift from the code."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "tracebraid.views",
    "tracebraid.views.documents",
    "tracebraid.views.layout",
    "tracebraid.views.mermaid",
    "tracebraid.views.notes",
    "tracebraid.views.recent",
    "tracebraid.views.schema",
    "tracebraid.views.serialize",
    "tracebraid.views.units",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0, f"{name} has no example"
