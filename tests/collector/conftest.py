"""Fixtures for the collector tests: real ``tracebraid serve`` processes on fresh stores."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from collector_serve import ServeProcess


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    """Start ``tracebraid serve`` processes on fresh stores; all stopped at teardown."""
    started: list[ServeProcess] = []

    def start(*extra: str, token: str | None = None, store: Path | None = None) -> ServeProcess:
        db = store or tmp_path / f"serve{len(started)}.db"
        process = ServeProcess(f"sqlite:///{db}", *extra, token=token)
        started.append(process)
        process.start()
        return process

    yield start
    for process in started:
        process.stop()
