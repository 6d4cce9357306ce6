"""Every input error is a 4xx with a message, never a 500: query parameters out of range,
missing static files, keys holding ``/``, the bearer scheme in any case."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tracebraid.collector.app import create_app
from tracebraid.store import SqliteStore
from tracebraid.testing.workflows import WorkflowBuilder
from tracebraid.views.web import web_ui

pytestmark = pytest.mark.asyncio

SLASHED = "order/441"


@pytest.fixture
async def small_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    b = WorkflowBuilder(correlation_id=SLASHED, start_ns=time.time_ns() - 10**12, seed=3)
    post = b.action("POST /orders", service="api", duration_ms=5)
    b.consume(b.publish(post, "order.placed", destination="orders"), "reserve", service="stock")
    with SqliteStore(tmp_path / "spans.db") as store:
        store.write(list(b.build().spans))
        ui = web_ui(store)
        app = create_app(store, token="s3cret", extra_routes=ui.routes)
        transport = httpx.ASGITransport(app=ui.wrap(app), raise_app_exceptions=False)
        headers = {"Authorization": "Bearer s3cret"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1", headers=headers
        ) as client:
            yield client
        await app.state.collector.close()


@pytest.mark.parametrize(
    "query",
    [
        "min_duration_ms=nan",
        "max_duration_ms=inf",
        "min_duration_ms=1e300",
        "max_duration_ms=-1",
        "limit=nan",
        "limit=1e300",
        "limit=0",
        "limit=" + "9" * 5000,
        "cursor=99999999999999999999999999:abc",
        "cursor=" + "1" * 5000 + ":a",
        "cursor=x",
        "since=" + "9" * 400 + "x",
        "has_errors=maybe",
    ],
)
async def test_bad_search_parameters_are_400_with_a_message(
    small_client: httpx.AsyncClient, query: str
) -> None:
    response = await small_client.get(f"/api/search?{query}")
    assert response.status_code == 400, response.text[:300]
    name = query.split("=")[0]
    assert name in response.json()["error"]


async def test_since_longer_ago_than_1970_means_every_trace(
    small_client: httpx.AsyncClient,
) -> None:
    response = await small_client.get("/api/search?since=99999999999d")
    assert response.status_code == 200, response.text
    assert len(response.json()["traces"]) == 1


@pytest.mark.parametrize(
    "path",
    [
        "/api/store/recent?before_ns=" + "9" * 30,
        "/api/store/recent?before_ns=-5",
        "/api/store/recent?limit=" + "9" * 5000,
        "/api/pending?limit=nan",
        "/api/retries?since=inf",
        "/api/lint?since=1e300",
    ],
)
async def test_other_endpoints_range_check_too(small_client: httpx.AsyncClient, path: str) -> None:
    response = await small_client.get(path)
    assert response.status_code == 400, response.text[:300]
    assert response.json()["error"]


@pytest.mark.parametrize("path", ["/ui/static/nothing.js", "/ui/static/js/none/deeper.css"])
async def test_a_missing_static_file_is_404(small_client: httpx.AsyncClient, path: str) -> None:
    response = await small_client.get(path)
    assert response.status_code == 404
    assert "no such file" in response.text


async def test_a_key_holding_a_slash_is_routed(small_client: httpx.AsyncClient) -> None:
    search = (await small_client.get("/api/search")).json()
    assert search["traces"][0]["correlation_ids"] == [SLASHED]
    for suffix in ("", "/view", "/spans", "/latency", "/mermaid"):
        response = await small_client.get(f"/api/workflows/order%2F441{suffix}")
        assert response.status_code == 200, (suffix, response.text[:200])


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
async def test_the_bearer_scheme_is_case_insensitive(
    small_client: httpx.AsyncClient, scheme: str
) -> None:
    headers = {"Authorization": f"{scheme} s3cret"}
    assert (await small_client.get("/healthz", headers=headers)).status_code == 200
    headers = {"Authorization": f"{scheme} wrong"}
    assert (await small_client.get("/healthz", headers=headers)).status_code == 401


async def test_openapi_gives_the_bounds_of_limit(small_client: httpx.AsyncClient) -> None:
    spec = (await small_client.get("/api/openapi.json")).json()
    params = spec["paths"]["/api/search"]["get"]["parameters"]
    limit = next(p for p in params if p["name"] == "limit")
    assert limit["schema"]["minimum"] == 1
    assert limit["schema"]["maximum"] >= 50


async def test_an_unreadable_store_is_503_with_retry_after(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "gone.db")
    ui = web_ui(store)
    app = create_app(store, extra_routes=ui.routes)
    transport = httpx.ASGITransport(app=ui.wrap(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        store.close()  # every read now fails as a store that went away does
        response = await client.get("/api/store/count")
    await app.state.collector.close()
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "2"
