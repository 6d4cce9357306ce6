"""One chDB engine for the whole test process, a fresh database per test.

chDB runs one embedded engine per process, at one directory, so every ClickHouse
test shares this directory and isolates itself by database name instead.
"""

from __future__ import annotations

import atexit
import itertools
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from tracebraid.store.clickhouse import ChdbBackend, ClickHouseStore, migrate, open_clickhouse
from tracebraid.store.clickhouse.schema import TableNames

__all__ = ["ENGINE_PATH", "chdb_store", "engine", "fresh_database"]

ENGINE_PATH = tempfile.mkdtemp(prefix="tracebraid-chdb-")
_numbers = itertools.count()
_keeper: ChdbBackend | None = None


def engine() -> ChdbBackend:
    """The process's engine, opened on first use and kept open until exit."""
    global _keeper
    if _keeper is None:
        _keeper = ChdbBackend.open(ENGINE_PATH)
        atexit.register(_shutdown)
    return _keeper


def _shutdown() -> None:
    if _keeper is not None:
        _keeper.close()
    shutil.rmtree(ENGINE_PATH, ignore_errors=True)


def fresh_database(prefix: str = "t") -> str:
    """A database name not used before in this process."""
    return f"{prefix}_{next(_numbers)}"


@contextmanager
def chdb_store(
    *, migrated: bool, database: str | None = None, http_port: int | None = None
) -> Iterator[ClickHouseStore]:
    """A store in a new database: the exporter's tables, and tracebraid's if ``migrated``.

    With ``http_port`` the store talks to the engine through clickhouse-connect.
    """
    name = database or fresh_database()
    backend = engine()
    backend.command(f"CREATE DATABASE IF NOT EXISTS `{name}`")
    if migrated:
        migrate(backend, TableNames(name))
    if http_port is None:
        store = open_clickhouse(f"chdb://{ENGINE_PATH}?database={name}")
    else:  # the same engine through clickhouse-connect (tests/store/clickhouse_http.py)
        store = open_clickhouse(f"clickhouse://127.0.0.1:{http_port}/{name}")
    try:
        yield store
    finally:
        store.close()
        backend.command(f"DROP DATABASE IF EXISTS `{name}`")
