"""The console's API (``tracebraid.views.web.console_api``): workflow-first search,
runs, the fleet documents and the ETag a live page polls, against the demo store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_web_api import _checked, _spec
from web_data import RUN_GAP_MS, WebDemo, twice_spans

from tracebraid.collector.app import create_app
from tracebraid.store import SqliteStore
from tracebraid.views.web import web_ui


async def _json(client: httpx.AsyncClient, url: str) -> Any:
    response = await client.get(url)
    assert response.status_code == 200, response.text
    return response.json()


async def test_search_has_one_row_per_workflow_with_its_traces_folded_in(
    client: httpx.AsyncClient, web_demo: WebDemo
) -> None:
    spec = await _spec(client)
    found = await _checked(client, spec, "/api/workflow-search", "/api/workflow-search")
    keys = [row["key"] for row in found["workflows"]]
    assert keys.count(web_demo.broken) == 1, keys
    broken = next(r for r in found["workflows"] if r["key"] == web_demo.broken)
    # The order's main trace and its island, one row: and the island counted once.
    assert len(broken["trace_ids"]) >= 2
    assert broken["counts"]["broken_links"] >= 1


async def test_one_correlation_id_far_apart_is_two_runs_each_opened_on_its_own(
    client: httpx.AsyncClient, web_demo: WebDemo
) -> None:
    found = await _json(client, f"/api/workflow-search?correlation_id={web_demo.twice}")
    rows = sorted(found["workflows"], key=lambda r: r["run"])
    assert [(r["run"], r["runs"]) for r in rows] == [(0, 2), (1, 2)]
    assert [r["root_name"] for r in rows] == ["POST /orders", "POST /cancel"]
    # Each run took milliseconds, not the 33 minutes between them.
    assert all(r["duration_ns"] < 1e9 for r in rows)
    assert rows[1]["start_ns"] - rows[0]["start_ns"] >= RUN_GAP_MS * 1e6
    assert [r["counts"]["retries"] for r in rows] == [0, 1]
    spec = await _spec(client)
    latest = await _checked(
        client, spec, "/api/workflows/{key}/runs/{run}/view",
        f"/api/workflows/{web_demo.twice}/runs/latest/view",
    )  # fmt: skip
    assert latest["run"]["index"] == 1 and len(latest["runs"]) == 2
    assert latest["workflow"]["roots"][0]["name"] == "POST /cancel"
    first = await _json(client, f"/api/workflows/{web_demo.twice}/runs/0/view")
    assert first["workflow"]["roots"][0]["name"] == "POST /orders"
    assert first["workflow"]["summary"]["duration_ns"] < 1e9


@pytest.mark.parametrize(
    ("run", "status", "says"),
    [("7", 404, "has 2 run(s)"), ("first", 400, "latest or a run number")],
)
async def test_a_run_that_is_not_there_is_named(
    client: httpx.AsyncClient, web_demo: WebDemo, run: str, status: int, says: str
) -> None:
    response = await client.get(f"/api/workflows/{web_demo.twice}/runs/{run}/view")
    assert response.status_code == status
    assert says in response.json()["error"]


async def test_consumers_lagging_first_and_destinations_from_the_store(
    client: httpx.AsyncClient,
) -> None:
    spec = await _spec(client)
    doc = await _checked(client, spec, "/api/consumers", "/api/consumers?since=7d&windows=6")
    first = doc["consumers"][0]
    assert first["step"] == "project-order-summary" and first["lagging"] >= 1
    assert first["p95_ns"] >= first["p50_ns"] > 0
    assert doc["pushed_down"] is True
    assert "orders" in {d["destination"] for d in doc["destinations"]}
    assert len(doc["series"]) == 6
    # The windows split the whole window: their deliveries add up to the whole's.
    for dest in doc["destinations"]:
        per_window = sum(
            d["deliveries"] for w in doc["series"] for d in w["destinations"]
            if d["destination"] == dest["destination"]
        )  # fmt: skip
        assert per_window == dest["deliveries"]


async def test_retry_series_windows_add_up_to_the_totals(client: httpx.AsyncClient) -> None:
    spec = await _spec(client)
    doc = await _checked(
        client, spec, "/api/retries/series", "/api/retries/series?since=7d&windows=12"
    )
    totals = {c["consumer"]: c["retries"] for c in doc["totals"]}
    # The webhook's two retries in each of the two demo orders (named as the store names it).
    assert max(totals.values()) >= 4
    for consumer, retries in totals.items():
        assert retries == sum(
            c["retries"] for w in doc["series"] for c in w["consumers"] if c["consumer"] == consumer
        )


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("/api/consumers?windows=0", "windows must be between 1 and 48"),
        ("/api/retries/series?windows=x", "windows must be a whole number"),
        ("/api/consumers?since=soon", "since"),
    ],
)
async def test_bad_fleet_parameters_are_named(
    client: httpx.AsyncClient, url: str, says: str
) -> None:
    response = await client.get(url)
    assert response.status_code == 400
    assert says in response.json()["error"]


@pytest.fixture()
async def fresh(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, SqliteStore]]:
    with SqliteStore(tmp_path / "live.db") as store:
        ui = web_ui(store)
        app = create_app(store, extra_routes=ui.routes)
        transport = httpx.ASGITransport(app=ui.wrap(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://tb") as client:
            yield client, store
        await app.state.collector.close()


async def test_changes_answers_304_until_a_span_arrives(
    fresh: tuple[httpx.AsyncClient, SqliteStore],
) -> None:
    client, store = fresh
    first = await client.get("/api/changes")
    assert first.status_code == 200 and first.json()["span_count"] == 0
    tag = first.headers["ETag"]
    again = await client.get("/api/changes", headers={"If-None-Match": tag})
    assert again.status_code == 304
    await asyncio.to_thread(store.write, twice_spans(10**18))
    moved = await client.get("/api/changes", headers={"If-None-Match": tag})
    assert moved.status_code == 200 and moved.headers["ETag"] != tag
    assert moved.json()["span_count"] > 0


async def test_a_run_view_keeps_only_the_start_markers_of_work_still_in_flight(
    client: httpx.AsyncClient, web_demo: WebDemo
) -> None:
    view = await _json(client, f"/api/workflows/{web_demo.plain}/runs/latest/view")
    spans = view["spans"]["spans"]
    present = {(s["trace_id"], s["span_id"]) for s in spans}
    markers = [s for s in spans if s["start_marker"]]
    # The loyalty step is in flight: its marker is all there is of it.
    assert [m["identity"]["step"] for m in markers] == ["award-loyalty-points"]
    assert all((m["trace_id"], m["marker_for"]) not in present for m in markers)


async def test_a_run_view_leaves_out_the_markers_of_finished_work(
    fresh: tuple[httpx.AsyncClient, SqliteStore],
) -> None:
    client, store = fresh
    await asyncio.to_thread(store.write, twice_spans(10**18))
    view = await _json(client, "/api/workflows/order_twice/runs/latest/view")
    everything = await _json(client, "/api/workflows/order_twice/spans")
    assert sum(s["start_marker"] for s in everything["spans"]) > 0
    assert [s for s in view["spans"]["spans"] if s["start_marker"]] == []
    assert view["workflow"]["summary"]["retries"] == 1
