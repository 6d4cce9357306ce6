"""Fixtures for the web UI's tests: a store holding the real demo, a broken-propagation
demo, and a workflow whose names are markup; the app as ``tracebraid serve`` builds it.

The demo runs at ``demo_settings.TIME_SCALE``, as the other views tests (why: see there).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from web_data import (
    HOSTILE_CORRELATION,
    TWICE_CORRELATION,
    WebDemo,
    hostile_spans,
    record_demo,
    stock_spans,
    twice_spans,
)

from tracebraid.collector.app import create_app
from tracebraid.store import SqliteStore
from tracebraid.views.web import web_ui


@pytest.fixture(scope="session")
def web_demo() -> WebDemo:
    plain, broken, spans = asyncio.run(record_demo())
    hour_ago = time.time_ns() - 3_600_000_000_000
    hostile = hostile_spans(hour_ago)
    twice = twice_spans(hour_ago - 7_200_000_000_000)
    stock = stock_spans(hour_ago - 600_000_000_000)
    return WebDemo(
        tuple(spans + hostile + twice + stock),
        plain,
        broken,
        HOSTILE_CORRELATION,
        TWICE_CORRELATION,
        stock[0].trace_id,
    )


@pytest.fixture(scope="session")
def web_store_path(tmp_path_factory: pytest.TempPathFactory, web_demo: WebDemo) -> Path:
    path = tmp_path_factory.mktemp("web") / "web.db"
    with SqliteStore(path) as store:
        store.write(list(web_demo.spans))
    return path


@pytest.fixture()
def web_store(web_store_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(web_store_path) as store:
        yield store


async def _client(store: SqliteStore, token: str | None) -> AsyncIterator[httpx.AsyncClient]:
    ui = web_ui(store)
    app = create_app(store, token=token, extra_routes=ui.routes)
    transport = httpx.ASGITransport(app=ui.wrap(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://tracebraid") as client:
        yield client
    await app.state.collector.close()


@pytest.fixture()
async def client(web_store: SqliteStore) -> AsyncIterator[httpx.AsyncClient]:
    """The whole app, as ``tracebraid serve`` mounts it, without a token."""
    async for c in _client(web_store, None):
        yield c


@pytest.fixture()
async def guarded_client(web_store: SqliteStore) -> AsyncIterator[httpx.AsyncClient]:
    """The same app with ``--token s3cret``."""
    async for c in _client(web_store, "s3cret"):
        yield c
