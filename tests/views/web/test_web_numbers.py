"""One set of numbers: the search row, the workflow page's document, the workflow JSON
and ``tracebraid show --json`` count a workflow's retries, pending, lagging, failing,
lost, broken links, dead letters and duplicates alike, on the demo, on a workflow whose
event names are markup, and on stock (aio-pika style) traces. The page draws its
header's badges from the same counts (``test_web_console_browser`` checks the text).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from web_data import WebDemo

from tracebraid.collector.app import create_app
from tracebraid.store import SqliteStore
from tracebraid.views.cli import main
from tracebraid.views.web import web_ui
from tracebraid.views.web.runs import workflow_counts


@pytest.mark.parametrize("which", ["plain", "broken", "hostile", "stock_trace"])
async def test_search_view_json_and_cli_count_alike(
    client: httpx.AsyncClient,
    web_demo: WebDemo,
    web_store_path: Path,
    capsys: pytest.CaptureFixture[str],
    which: str,
) -> None:
    key = getattr(web_demo, which)
    rows = []
    cursor = None
    while True:  # every page: the demo store is small
        page = (
            await client.get("/api/workflow-search", params={"cursor": cursor} if cursor else {})
        ).json()
        rows += page["workflows"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    row = next(r for r in rows if r["key"] == key or key in r["trace_ids"])
    view = (await client.get(f"/api/workflows/{row['key']}/runs/latest/view")).json()
    served = (await client.get(f"/api/workflows/{row['key']}")).json()
    assert main(["show", row["key"], "--store", f"sqlite:///{web_store_path}", "--json"]) in (0, 1)
    printed = json.loads(capsys.readouterr().out)
    counts = row["counts"]
    assert view["counts"] == counts
    assert workflow_counts(served) == counts
    assert workflow_counts(printed) == counts
    # And the totals behind them: spans and traces.
    assert view["workflow"]["summary"]["span_count"] == row["span_count"]
    assert printed["summary"]["span_count"] == row["span_count"]
    assert sorted(printed["summary"]["trace_ids"]) == sorted(row["trace_ids"])


CORPUS = Path(__file__).parents[2] / "corpus"


@pytest.fixture()
async def imported(
    request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A store holding one corpus of stock-instrumented traces, imported as a user would."""
    url = f"sqlite:///{tmp_path / 'imported.db'}"
    assert main(["import", str(CORPUS / request.param / "spans.jsonl"), "--store", url]) == 0
    capsys.readouterr()
    with SqliteStore(tmp_path / "imported.db") as store:
        ui = web_ui(store)
        app = create_app(store, extra_routes=ui.routes)
        transport = httpx.ASGITransport(app=ui.wrap(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://tb") as client:
            yield client, url
        await app.state.collector.close()


@pytest.mark.parametrize(
    "imported", ["aio-pika-dead-letter-ttl", "celery-redis", "confluent-kafka"], indirect=True
)
async def test_imported_stock_traces_count_alike(
    imported: tuple[httpx.AsyncClient, str], capsys: pytest.CaptureFixture[str]
) -> None:
    client, url = imported
    page = (await client.get("/api/workflow-search", params={"limit": 200})).json()
    assert page["workflows"], "the corpus imported no workflow"
    for row in page["workflows"]:
        view = (await client.get(f"/api/workflows/{row['key']}/runs/{row['run']}/view")).json()
        assert view["counts"] == row["counts"], row["key"]
        if row["runs"] > 1:
            continue  # the workflow JSON and the CLI read every run of it at once
        served = (await client.get(f"/api/workflows/{row['key']}")).json()
        assert main(["show", row["key"], "--store", url, "--json"]) in (0, 1)
        printed = json.loads(capsys.readouterr().out)
        assert workflow_counts(served) == row["counts"], row["key"]
        assert workflow_counts(printed) == row["counts"], row["key"]
