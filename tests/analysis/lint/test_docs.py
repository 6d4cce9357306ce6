"""The examples in the lint's docstrings run, so they cannot drift from the code."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import tracebraid.analysis.lint
import tracebraid.analysis.lint.rules

MODULES = [
    "tracebraid.analysis.lint",
    *(
        f"tracebraid.analysis.lint.{m.name}"
        for m in pkgutil.iter_modules(tracebraid.analysis.lint.__path__)
        if not m.ispkg
    ),
    "tracebraid.analysis.lint.rules",
    *(
        f"tracebraid.analysis.lint.rules.{m.name}"
        for m in pkgutil.iter_modules(tracebraid.analysis.lint.rules.__path__)
        if not m.name.startswith("_")
    ),
    "tracebraid.testing.assertions",
    "tracebraid.demo.mistakes",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0, f"{name} has no example"
