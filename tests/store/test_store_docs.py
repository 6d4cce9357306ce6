"""The examples in the store's docstrings run, so they cannot drift from the code.

The modules are found by walking the package, not listed: a new module's examples
are run without anyone remembering to add it here.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import subprocess
import sys

import pytest

import tracebraid.store

MODULES = [
    "tracebraid.store",
    *(m.name for m in pkgutil.walk_packages(tracebraid.store.__path__, "tracebraid.store.")),
]
# chDB runs one engine per process and the ClickHouse tests keep theirs open, so the
# examples that open an in-memory chDB of their own run in a fresh interpreter.
OWN_PROCESS = {
    "tracebraid.store.clickhouse",
    "tracebraid.store.clickhouse.backends",
    "tracebraid.store.clickhouse.migrate",
    "tracebraid.store.clickhouse.store",
}
_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
_ELSEWHERE = f"""
import doctest, importlib, sys
result = doctest.testmod(importlib.import_module(sys.argv[1]), optionflags={_FLAGS})
sys.exit(1 if result.failed or not result.attempted else 0)
"""


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    if name in OWN_PROCESS:
        done = subprocess.run(
            [sys.executable, "-c", _ELSEWHERE, name], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return
    result = doctest.testmod(importlib.import_module(name), optionflags=_FLAGS)
    assert result.failed == 0


def test_the_walk_reaches_every_level() -> None:
    expected = {"tracebraid.store.base", "tracebraid.store.sqlite", *OWN_PROCESS}
    assert expected <= set(MODULES)
