"""The examples in the analysis docstrings run, so they cannot drift from the code."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import tracebraid.analysis

MODULES = [
    "tracebraid.analysis",
    *(
        f"tracebraid.analysis.{m.name}"
        for m in pkgutil.iter_modules(tracebraid.analysis.__path__)
        if not m.ispkg  # subpackages (lint) test their own examples
    ),
    "tracebraid.demo.capture",
    "tracebraid.testing",
    "tracebraid.testing.workflows",
    "tracebraid.testing._builder",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0, f"{name} has no example"
