"""The UI in a real browser: Debian's Chromium, driven by Playwright, against a real
``tracebraid serve`` process over a store holding the demo.

Screenshots of each view go to a temporary folder, or to ``$TRACEBRAID_SCREENSHOTS``
when set (``TRACEBRAID_SCREENSHOTS=docs/screenshots`` refreshes the README's pictures).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from web_data import MARKUP, WebDemo

from tracebraid.store import SqliteStore, fetch_workflow

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 900}
_LISTENING = re.compile(r"listening on (http://\S+)")


def _serve(store: Path, log: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tracebraid", "serve", "--store", f"sqlite:///{store}",
             "--port", "0", *extra],
            stdout=out, stderr=out,
        )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = _LISTENING.search(log.read_text())
        if found:
            return process, found.group(1)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"tracebraid serve did not start: {log.read_text()}")


@pytest.fixture(scope="module")
def base_url(web_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    process, url = _serve(web_store_path, log)
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package to run UI tests")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture()
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert errors == [], f"the page raised: {errors}"


def _ready(page: Page, view: str) -> None:
    page.wait_for_selector(f"body[data-ready='{view}']", timeout=10_000)


@functools.cache
def _screenshots() -> Path:
    """Made on the first screenshot, not when the module is collected."""
    chosen = os.environ.get("TRACEBRAID_SCREENSHOTS")
    folder = Path(chosen) if chosen else Path(tempfile.mkdtemp(prefix="tracebraid-screenshots-"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(_screenshots() / name))


def _api(base_url: str, path: str) -> Any:
    return httpx.get(base_url + path, timeout=10).json()


def test_search_lists_workflows_and_filters_them(
    page: Page, base_url: str, web_demo: WebDemo
) -> None:
    page.goto(base_url + "/#/search")
    _ready(page, "search")
    rows = page.locator(".results-table tbody tr")
    expect(rows.filter(has_text=web_demo.plain)).to_have_count(1)
    expect(rows.filter(has_text=web_demo.broken).first).to_be_visible()
    # One row per workflow: the broken order's island trace is folded into its row.
    expect(rows.filter(has_text=web_demo.broken)).to_have_count(1)
    expect(
        rows.filter(has_text=web_demo.broken).locator("[data-count='broken_links']")
    ).to_be_visible()
    _shot(page, "search.png")
    page.get_by_label("broken causality").check()
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"has_broken=true"))
    _ready(page, "search")
    expect(rows).to_have_count(1)
    expect(rows.filter(has_text=web_demo.broken)).to_have_count(1)


def test_order_timeline_shows_attempts_pending_lag_and_critical_path(
    page: Page, base_url: str, web_demo: WebDemo
) -> None:
    page.goto(f"{base_url}/#/workflow/{web_demo.plain}")
    _ready(page, "workflow")
    lanes = page.locator(".timeline [data-lane]")
    webhook = lanes.filter(has_text="send-warehouse-webhook")
    expect(webhook.locator(".bar.failed")).to_have_count(2)
    expect(webhook.locator(".bar.ok")).to_have_count(1)
    expect(webhook.locator(".backoff")).to_have_count(2)
    loyalty = lanes.filter(has_text="award-loyalty-points")
    expect(loyalty.locator(".bar.in-flight")).to_have_count(1)
    expect(loyalty.locator(".bar-label")).to_contain_text("in flight")
    summary = lanes.filter(has_text="project-order-summary")
    expect(summary.locator(".queue.lagging")).to_have_count(1)
    expect(page.locator(".attention")).to_contain_text("project-order-summary lagged")
    expect(page.locator(".critical-line")).to_contain_text("send-warehouse-webhook (3 attempts)")
    expect(webhook.locator(".bar.critical")).to_have_count(3)
    expect(page.locator(".timeline .edge.critical").first).to_be_visible()
    # The error of a failed attempt, on click, with every identity as its own field.
    webhook.locator(".bar.failed").first.click()
    panel = page.locator(".panel")
    expect(panel.locator(".panel-title")).to_have_text("send-warehouse-webhook")
    expect(panel).to_contain_text("TimeoutError")
    for label in ("trace ID", "span ID", "parent span ID", "correlation ID", "event ID",
                  "causation ID", "attempt", "consumer"):  # fmt: skip
        expect(panel.locator("dt", has_text=re.compile(f"^{label}$"))).to_have_count(1)
    assert "span=" in page.url
    _shot(page, "timeline.png")
    page.get_by_role("tab", name="Graph").click()
    expect(page.locator(".graph .node.critical").first).to_be_visible()
    expect(page.locator(".graph .node.state-in_flight")).to_have_count(1)
    _shot(page, "graph.png")
    page.get_by_role("tab", name="Latency").click()
    expect(page.locator(".latency .latency-row.lagging")).to_have_count(1)
    expect(page.locator(".segments")).to_contain_text("failed attempt")
    _shot(page, "latency.png")


def test_dragging_across_the_time_axis_zooms_and_the_link_keeps_it(
    page: Page, base_url: str, web_demo: WebDemo
) -> None:
    page.goto(f"{base_url}/#/workflow/{web_demo.plain}")
    _ready(page, "workflow")
    timeline = page.locator("svg.timeline")
    expect(timeline).to_have_attribute("data-zoomed", "false")
    webhook = page.locator(".timeline [data-lane]").filter(has_text="send-warehouse-webhook")
    failed = webhook.locator(".bar.failed rect").first
    before = failed.bounding_box()
    area = page.locator(".timeline-axis .zoom-area").bounding_box()
    assert before is not None and area is not None
    # Drag from just before the first failed attempt to just after it.
    y = area["y"] + area["height"] / 2
    page.mouse.move(before["x"] - 4, y)
    page.mouse.down()
    page.mouse.move(before["x"] + before["width"] / 2, y, steps=4)
    page.mouse.move(before["x"] + before["width"] + 4, y, steps=4)
    page.mouse.up()
    expect(timeline).to_have_attribute("data-zoomed", "true")
    expect(page.locator(".zoom-state")).to_contain_text("showing +")
    after = webhook.locator(".bar.failed rect").first.bounding_box()
    assert after is not None and after["width"] > 3 * before["width"], (before, after)
    assert re.search(r"from=[0-9.]+&to=[0-9.]+", page.url), page.url
    _shot(page, "timeline-zoomed.png")
    # The address reopens the same stretch of time; "Show all" goes back to the whole.
    page.goto(page.url.replace("#", "?reload#"))
    _ready(page, "workflow")
    expect(page.locator("svg.timeline")).to_have_attribute("data-zoomed", "true")
    page.get_by_role("button", name="Show all").click()
    expect(page.locator("svg.timeline")).to_have_attribute("data-zoomed", "false")
    assert "from=" not in page.url


def test_a_pasted_link_reopens_the_same_view_and_span(
    page: Page, base_url: str, web_demo: WebDemo
) -> None:
    workflow = _api(base_url, f"/api/workflows/{web_demo.plain}")
    webhook = next(b for b in workflow["branches"] if b["step"] == "send-warehouse-webhook")
    second = webhook["attempts"][1]["span"]
    key = f"{second['trace_id']}:{second['span_id']}"
    page.goto(f"{base_url}/#/workflow/{web_demo.plain}?tab=latency&span={key}")
    _ready(page, "workflow")
    expect(page.get_by_role("tab", name="Latency")).to_have_attribute("aria-selected", "true")
    expect(page.locator(".panel dd").filter(has_text=second["span_id"])).to_have_count(1)
    expect(page.locator(".panel")).to_contain_text("TimeoutError")


def test_stitched_edge_is_a_propagation_break_that_leads_to_the_other_trace(
    page: Page, base_url: str, web_demo: WebDemo
) -> None:
    workflow = _api(base_url, f"/api/workflows/{web_demo.broken}")
    origin = workflow["roots"][0]["trace_id"]
    page.goto(f"{base_url}/#/workflow/{web_demo.broken}")
    _ready(page, "workflow")
    edge = page.locator(".timeline .edge.stitched")
    expect(edge).to_have_count(1)
    expect(edge.locator(".break-label")).to_contain_text("propagation break")
    expect(page.locator(".attention")).to_contain_text("Propagation break")
    _shot(page, "propagation-break.png")
    edge.locator("a.break-link").click()
    page.wait_for_url(re.compile(r"#/trace/[0-9a-f]{32}"))
    _ready(page, "workflow")
    island = page.url.split("#/trace/")[1].split("?")[0]
    assert island != origin
    stitched = next(b for b in workflow["branches"] if b["stitched"])
    assert island == stitched["attempts"][0]["span"]["trace_id"]
    expect(page.locator(".kicker")).to_have_text("trace")
    expect(page.locator(".scope-note")).to_contain_text("Open the whole workflow")
    expect(page.locator(".timeline")).to_contain_text("project-order-summary")
    _shot(page, "island-trace.png")


def test_lint_page_links_findings_to_their_workflow(page: Page, base_url: str) -> None:
    page.goto(base_url + "/#/lint?since=7d")
    _ready(page, "lint")
    rule = page.locator("section.rule").filter(has_text="TB101")
    expect(rule).to_contain_text("payment")
    _shot(page, "lint.png")
    rule.locator("a.finding-link").first.click()
    page.wait_for_url(re.compile(r"#/workflow/"))
    _ready(page, "workflow")
    expect(page.locator(".panel-title")).not_to_have_text("Span details")


def test_markup_in_span_data_renders_as_text_and_never_runs(
    page: Page, base_url: str, web_demo: WebDemo
) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(base_url + "/#/search")
    _ready(page, "search")
    expect(page.locator(".results-table td").filter(has_text=MARKUP).first).to_be_visible()
    page.goto(f"{base_url}/#/workflow/{web_demo.hostile}")
    _ready(page, "workflow")
    page.locator(".timeline .bar.action").click()
    expect(page.locator(".panel-title")).to_have_text(MARKUP)
    expect(page.locator(".panel .kv th", has_text=MARKUP)).to_be_visible()
    expect(page.locator(".panel")).to_contain_text("<b onmouseover=alert(5)>x</b>")
    page.locator(".timeline .bar.failed").first.click()
    expect(page.locator(".panel")).to_contain_text(f"TimeoutError: {MARKUP}")
    page.get_by_role("tab", name="Graph").click()
    expect(page.locator(".graph")).to_contain_text("<svg onload=alert(3)>")
    page.wait_for_timeout(200)
    assert dialogs == []
    assert page.evaluate("window.__xss") is None
    assert page.locator("img[src='x']").count() == 0


def test_a_token_is_asked_for_once_then_sent_with_every_call(
    browser: Browser, web_store_path: Path, tmp_path: Path, web_demo: WebDemo
) -> None:
    process, url = _serve(web_store_path, tmp_path / "serve.log", "--token", "s3cret")
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.goto(url + "/#/search")
        _ready(page, "error")
        expect(page.locator(".token-form")).to_contain_text("needs a token")
        page.get_by_label("token").fill("s3cret")
        page.get_by_role("button", name="Use this token").click()
        _ready(page, "search")
        expect(page.get_by_text(web_demo.plain).first).to_be_visible()
        # A fresh browser can take it from the URL once; it leaves the address bar.
        fresh = browser.new_context(viewport=VIEWPORT).new_page()
        fresh.goto(f"{url}/?token=s3cret#/workflow/{web_demo.plain}")
        _ready(fresh, "workflow")
        assert "token" not in fresh.url
        fresh.context.close()
    finally:
        context.close()
        process.terminate()
        process.wait(timeout=10)


def test_a_view_past_the_span_cap_says_so_in_a_banner(
    page: Page,
    base_url: str,
    web_store_path: Path,
    web_demo: WebDemo,
    tmp_path: Path,
) -> None:
    # The same store served twice: with the default cap the demo order is whole; a serve
    # whose cap is under the order's span count shows its beginning and says so.
    page.goto(f"{base_url}/#/workflow/{web_demo.plain}")
    _ready(page, "workflow")
    expect(page.locator(".limited-banner")).to_have_count(0)
    process, url = _serve(web_store_path, tmp_path / "serve.log", "--max-view-spans", "12")
    try:
        with SqliteStore(web_store_path) as store:
            total = len(fetch_workflow(store, web_demo.plain).spans)
        assert total > 12
        page.goto(f"{url}/#/workflow/{web_demo.plain}")
        _ready(page, "workflow")
        banner = page.get_by_role("alert")
        expect(banner).to_have_class("limited-banner")
        expect(banner).to_contain_text(f"Partial view: 12 of {total:,} spans.")
        expect(banner).to_contain_text(
            "To see the rest, narrow it: open one of its traces (scope=trace) or a branch"
        )
        # the banner leads the page, above the title
        assert page.locator(".wf-head > *").first.get_attribute("class") == "limited-banner"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_view_cap_below_one_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tracebraid", "serve", "--port", "0", "--max-view-spans", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "--max-view-spans must be at least 1, not 0" in result.stderr
    assert not (tmp_path / "tracebraid.db").exists()  # refused before opening the store
