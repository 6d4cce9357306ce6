"""The examples in the store's docstrings run, so they cannot drift from the code.

The modules are found by walking the package, not listed: a new module's examples
are run without anyone remembering to add it here.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import tracebraid.store

MODULES = [
    "tracebraid.store",
    *(m.name for m in pkgutil.walk_packages(tracebraid.store.__path__, "tracebraid.store.")),
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_the_walk_reaches_every_level() -> None:
    expected = {
        "tracebraid.store.base",
        "tracebraid.store.sqlite",
        "tracebraid.store.clickhouse.store",
    }
    assert expected <= set(MODULES)
