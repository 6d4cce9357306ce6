"""The docstring examples of the web UI's and the search's modules run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "tracebraid.views.web.records",
    "tracebraid.views.web.openapi",
    "tracebraid.store.search",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0, f"{name} has no example"
