"""The package root: one explicit public surface, light to import for services."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tracebraid


def test_every_public_name_resolves() -> None:
    missing = [name for name in tracebraid.__all__ if getattr(tracebraid, name, None) is None]
    assert missing == []


def test_an_unknown_name_is_an_attribute_error_naming_it() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = tracebraid.no_such_thing  # type: ignore[attr-defined]


def test_importing_the_sdk_does_not_load_the_analysis_or_the_stores() -> None:
    probe = (
        "import sys, tracebraid; "
        "print(sorted(m for m in ('tracebraid.analysis', 'tracebraid.store', 'yaml', 'sqlite3') "
        "if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"


def test_lazy_names_are_the_real_functions() -> None:
    from tracebraid.analysis import analyze
    from tracebraid.store import open_store

    assert tracebraid.analyze is analyze
    assert tracebraid.open_store is open_store
