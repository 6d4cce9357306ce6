"""One set of numbers: the search row, the workflow page's document, the workflow JSON
and ``tracebraid show --json`` count a workflow's retries, pending, lagging, failing,
lost, broken links, dead letters and duplicates alike, on the demo, on a workflow whose
event names are markup, and on stock (aio-pika style) traces. The page draws its
header's badges from the same counts (``test_web_console_browser`` checks the text).
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from web_data import WebDemo

from tracebraid.views.cli import main
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
