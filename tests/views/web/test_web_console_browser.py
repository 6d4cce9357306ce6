"""The operator's console in a real browser: every view at 1440 and 800 px, light and
dark, checked by axe-core (from the npm registry, pinned in ``package.json`` beside
this file, injected into the page: the UI never serves it); the fleet pages, runs,
keyboard use, stock labels; a 2,000-span workflow's filters, find, collapse, minimap,
sticky axis and graph pan and zoom; and pages that follow spans as they arrive.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import test_web_browser as shared
from playwright.sync_api import Browser, Page, expect
from web_data import WebDemo

from tracebraid.store import SqliteStore
from tracebraid.testing.workflows import Try, WorkflowBuilder, synthetic

pytestmark = pytest.mark.browser

# The browser and a fresh page per test, as the UI's other browser tests have them.
browser = shared.browser
page = shared.page
_ready, _serve, _shot = shared._ready, shared._serve, shared._shot

HERE = Path(__file__).parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = {"1440": {"width": 1440, "height": 900}, "800": {"width": 800, "height": 900}}


@pytest.fixture(scope="module")
def axe_script() -> Path:
    """axe-core from the npm registry, installed once beside this file."""
    if not AXE.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is missing: it installs axe-core for the accessibility checks")
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--silent"], cwd=HERE, check=True
        )
    return AXE


@pytest.fixture(scope="module")
def console_url(web_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("console") / "serve.log"
    process, url = _serve(web_store_path, log)
    yield url
    process.terminate()
    process.wait(timeout=10)


def _serious(page: Page, axe: Path) -> list[str]:
    page.add_script_tag(path=str(axe))
    found: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
             .filter((v) => v.impact === "serious" || v.impact === "critical")
             .map((v) => ({id: v.id, impact: v.impact,
                           nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" "))}))"""
    )
    return [f"{v['impact']} {v['id']}: {v['nodes']}" for v in found]


def _fits(page: Page) -> None:
    """Nothing makes the page itself scroll sideways (wide tables scroll in their box)."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page is {overflow} px wider than the window"


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", ["1440", "800"])
def test_every_view_fits_and_passes_axe(
    browser: Browser,
    console_url: str,
    web_demo: WebDemo,
    axe_script: Path,
    width: str,
    scheme: str,
) -> None:
    context = browser.new_context(
        viewport=WIDTHS[width],
        color_scheme=scheme,
        bypass_csp=True,  # type: ignore[arg-type]
    )
    page = context.new_page()
    views = [
        ("search", "#/search"),
        ("workflow", f"#/workflow/{web_demo.plain}"),
        ("workflow", f"#/workflow/{web_demo.plain}?tab=graph"),
        ("workflow", f"#/workflow/{web_demo.plain}?tab=latency"),
        ("workflow", f"#/workflow/{web_demo.twice}"),
        ("pending", "#/pending?since=7d"),
        ("retries", "#/retries?since=7d"),
        ("consumers", "#/consumers?since=7d"),
        ("lint", "#/lint?since=7d"),
    ]
    problems: dict[str, list[str]] = {}
    try:
        for ready, path in views:
            page.goto(f"{console_url}/{path}")
            _ready(page, ready)
            _fits(page)
            found = _serious(page, axe_script)
            if found:
                problems[path] = found
        # The page background follows the scheme.
        background = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
        dark = sum(int(c) for c in re.findall(r"\d+", background)[:3]) < 150
        assert dark == (scheme == "dark"), background
        if width == "800" and scheme == "dark":
            page.goto(f"{console_url}/#/workflow/{web_demo.plain}")
            _ready(page, "workflow")
            _shot(page, "timeline-dark-800.png")
    finally:
        context.close()
    assert problems == {}, problems


def test_keyboard_moves_between_lanes_opens_and_closes_the_panel(
    page: Page,
    console_url: str,
    web_demo: WebDemo,
) -> None:
    page.goto(f"{console_url}/#/workflow/{web_demo.plain}")
    _ready(page, "workflow")
    first = page.locator(".timeline .bar[tabindex]").first
    first.focus()
    page.keyboard.press("ArrowDown")
    lane_of = "document.activeElement.closest('[data-lane]').dataset.lane"
    assert int(page.evaluate(lane_of)) > 0
    # A keyboard focus is visible: the focus ring's colour on the bar.
    assert page.evaluate("document.activeElement.matches(':focus-visible')")
    ring = page.evaluate("getComputedStyle(document.activeElement.querySelector('rect')).stroke")
    focus = page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--focus')")
    assert ring.replace(" ", "") == _rgb(focus.strip()), (ring, focus)
    page.keyboard.press("ArrowUp")
    assert int(page.evaluate(lane_of)) == 0
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.locator(".panel .panel-title")).not_to_have_text("Span details")
    assert "span=" in page.url
    page.keyboard.press("Escape")
    expect(page.locator(".panel .panel-title")).to_have_text("Span details")
    assert "span=" not in page.url


def _rgb(hex_colour: str) -> str:
    value = hex_colour.lstrip("#")
    return "rgb({},{},{})".format(*(int(value[i : i + 2], 16) for i in (0, 2, 4)))


def test_critical_path_and_lagging_have_their_own_colours(
    page: Page,
    console_url: str,
    web_demo: WebDemo,
) -> None:
    page.goto(f"{console_url}/#/workflow/{web_demo.plain}")
    _ready(page, "workflow")
    lagging = page.locator(".queue.lagging rect").first.evaluate("e => getComputedStyle(e).stroke")
    critical = page.locator(".bar.critical rect").first.evaluate("e => getComputedStyle(e).stroke")
    assert lagging != critical
    legend = page.locator(".legend")
    expect(legend).to_contain_text("critical path")
    expect(legend).to_contain_text("lagging consumer")


def test_the_header_counts_are_the_search_rows(
    page: Page,
    console_url: str,
    web_demo: WebDemo,
) -> None:
    page.goto(f"{console_url}/#/search")
    _ready(page, "search")
    row = page.locator(".results-table tbody tr").filter(has_text=web_demo.plain)
    in_search = {
        b.get_attribute("data-count"): b.inner_text() for b in row.locator("[data-count]").all()
    }
    row.locator("a.wf-link").click()
    _ready(page, "workflow")
    in_header = {
        b.get_attribute("data-count"): b.inner_text()
        for b in page.locator(".wf-head .badges [data-count]").all()
    }
    assert in_search and all(in_header[k] == v for k, v in in_search.items()), (
        in_search, in_header,
    )  # fmt: skip
    assert in_search["retries"] == "↻ 2 retries"


def test_two_runs_under_one_correlation_id_open_one_at_a_time(
    page: Page,
    console_url: str,
    web_demo: WebDemo,
) -> None:
    page.goto(f"{console_url}/#/search?correlation_id={web_demo.twice}")
    _ready(page, "search")
    rows = page.locator(".results-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="run 1 of 2")).to_have_count(1)
    rows.filter(has_text="run 1 of 2").locator("a.wf-link").click()
    _ready(page, "workflow")
    assert "run=0" in page.url
    expect(page.locator(".wf-meta")).to_contain_text("POST /orders")
    runs = page.locator("nav.runs a")
    expect(runs).to_have_count(2)
    expect(page.locator("nav.runs a[aria-current='true']")).to_contain_text("run 1")
    runs.nth(1).click()
    _ready(page, "workflow")
    expect(page.locator(".wf-meta")).to_contain_text("POST /cancel")
    # Each run drawn over its own milliseconds, not over the 33 minutes between them.
    expect(page.locator(".wf-meta")).not_to_contain_text("min")


def test_pending_page_filters_live_in_the_address(
    page: Page,
    console_url: str,
    web_demo: WebDemo,
) -> None:
    page.goto(f"{console_url}/#/pending?since=7d")
    _ready(page, "pending")
    table = page.locator(".pending-table tbody tr")
    expect(table.filter(has_text="loyalty")).not_to_have_count(0)
    _shot(page, "pending.png")
    page.get_by_label("Show").select_option("in_flight")
    page.wait_for_url(re.compile(r"state=in_flight"))
    _ready(page, "pending")
    for state in table.evaluate_all("rows => rows.map((r) => r.dataset.state)"):
        assert state == "in_flight"
    page.get_by_label("Consumer").fill("no-such-consumer")
    page.get_by_label("Consumer").press("Enter")
    page.get_by_label("Consumer").blur()
    page.wait_for_url(re.compile(r"consumer=no-such-consumer"))
    _ready(page, "pending")
    expect(page.locator(".all-good")).to_be_visible()


def test_retries_and_consumers_pages(
    page: Page,
    console_url: str,
    web_demo: WebDemo,
) -> None:
    page.goto(f"{console_url}/#/retries?since=7d")
    _ready(page, "retries")
    webhook = page.locator(".retries-table tbody tr").filter(has_text="send-warehouse-webhook")
    expect(webhook).to_contain_text("TimeoutError")
    expect(webhook.locator("svg.spark rect.bar-retries")).not_to_have_count(0)
    _shot(page, "retries.png")
    page.goto(f"{console_url}/#/consumers?since=7d")
    _ready(page, "consumers")
    first = page.locator(".consumers-table tbody tr").first
    expect(first).to_have_class(re.compile("lagging-row"))
    expect(first).to_contain_text("project-order-summary")
    expect(page.locator("svg.waits rect")).not_to_have_count(0)
    _shot(page, "consumers.png")


def test_stock_labels_read_like_the_business(
    page: Page,
    console_url: str,
    web_demo: WebDemo,
) -> None:
    page.goto(f"{console_url}/#/workflow/{web_demo.stock_trace}")
    _ready(page, "workflow")
    titles = page.locator(".timeline .lane-title").all_text_contents()
    assert any("orders → order.placed receive · inventory" in t for t in titles), titles
    assert any("orders → order.placed receive · shipping" in t for t in titles), titles
    page.get_by_role("tab", name="Graph").click()
    graph = page.locator(".graph")
    expect(graph).to_contain_text("message to webhooks → webhooks receive")
    expect(graph).to_contain_text("unnamed event")
    # The event is named by its exchange (the vocabulary reads aio-pika's
    # "exchange,routing_key" destination as the exchange it was published to).
    expect(graph.locator(".node-title")).to_contain_text(["orders", "webhooks"])
    expect(graph).not_to_contain_text("webhooks,,")


# -- a 2,000-span workflow, and spans that arrive while the page is open ------------------


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, str]]:
    folder = tmp_path_factory.mktemp("big")
    path = folder / "big.db"
    workflow = synthetic(2000, seed=3, start_ns=time.time_ns() - 120_000_000_000)
    with SqliteStore(path) as store:
        store.write(list(workflow.spans))
    process, url = _serve(path, folder / "serve.log")
    yield url, path, workflow.correlation_id
    process.terminate()
    process.wait(timeout=10)


def test_a_big_workflow_stays_readable(page: Page, big: tuple[str, Path, str]) -> None:
    url, _, key = big
    page.goto(f"{url}/#/workflow/{key}")
    _ready(page, "workflow")
    # Attention notes: grouped by step and capped, the rest one click away.
    notes = page.locator(".attention li")
    shown = notes.count()
    assert 0 < shown <= 6
    more = page.locator(".attention-more")
    expect(more).to_contain_text("Show all")
    more.click()
    assert notes.count() > shown
    # The overview strip and the sticky time axis.
    expect(page.locator("canvas.minimap")).to_be_visible()
    canvas = page.locator(".canvas")
    canvas.evaluate("c => { c.scrollTop = 3000; }")
    page.wait_for_timeout(100)
    axis = page.locator(".sticky-axis").bounding_box()
    box = canvas.bounding_box()
    assert axis is not None and box is not None and abs(axis["y"] - box["y"]) < 3
    # Filters: only the failed lanes; the address keeps it.
    lanes = page.locator(".timeline [data-lane]")
    total = int(page.locator("svg.timeline").get_attribute("data-lanes") or 0)
    page.get_by_label("filter lanes by status").select_option("retried")
    assert "status=retried" in page.url
    failed = int(page.locator("svg.timeline").get_attribute("data-lanes") or 0)
    assert 0 < failed < total
    page.get_by_label("filter lanes by status").select_option("")
    # Find highlights the lanes that match, and counts them.
    page.get_by_label(re.compile("find lanes")).fill("consumer-1-0")
    expect(page.locator(".lane-tools .count")).to_contain_text("matches")
    expect(page.locator(".timeline .lane.match").first).to_be_visible()
    page.get_by_label(re.compile("find lanes")).press("Enter")
    focused = page.evaluate("document.activeElement.closest('.lane')?.classList.contains('match')")
    assert focused
    # Collapsing a branch hides the lanes under it.
    fold = page.locator(".timeline [data-fold]").first
    fold.click()
    expect(page.locator("svg.timeline")).not_to_have_attribute("data-lanes", str(total))
    page.get_by_role("button", name="Collapse all").click()
    collapsed = int(page.locator("svg.timeline").get_attribute("data-lanes") or 0)
    assert collapsed < total
    page.get_by_role("button", name="Expand all").click()
    expect(page.locator("svg.timeline")).to_have_attribute("data-lanes", str(total))
    assert lanes.count() > 0
    page.get_by_role("button", name="Show fewer").click()
    page.get_by_label("filter lanes by status").select_option("retried")
    page.evaluate("window.scrollTo(0, 0)")
    _shot(page, "big-workflow.png")


def test_labels_above_bars_never_overlap(page: Page, big: tuple[str, Path, str]) -> None:
    url, _, key = big
    page.goto(f"{url}/#/workflow/{key}")
    _ready(page, "workflow")
    overlaps = page.evaluate(
        """() => {
          const found = [];
          for (const lane of document.querySelectorAll(".timeline .lane")) {
            const boxes = [...lane.querySelectorAll(".backoff-label, .queue-label")]
              .map((t) => t.getBBox());
            for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
              const a = boxes[i], b = boxes[j];
              const apart = a.x >= b.x + b.width || b.x >= a.x + a.width
                || a.y >= b.y + b.height || b.y >= a.y + a.height;
              if (!apart) found.push(lane.dataset.lane);
            }
          }
          return found;
        }"""
    )
    assert overlaps == []


def test_the_graph_pans_and_zooms(page: Page, big: tuple[str, Path, str]) -> None:
    url, _, key = big
    page.goto(f"{url}/#/workflow/{key}?tab=graph")
    _ready(page, "workflow")
    graph = page.locator("svg.graph")
    before = float(graph.get_attribute("data-zoom") or 0)
    page.get_by_role("button", name="zoom in").click()
    after = float(graph.get_attribute("data-zoom") or 0)
    assert after > before
    view = graph.get_attribute("viewBox")
    box = page.locator(".graph-viewport").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 30, box["y"] + 200)
    page.mouse.down()
    page.mouse.move(box["x"] + 200, box["y"] + 60, steps=5)
    page.mouse.up()
    assert graph.get_attribute("viewBox") != view
    page.mouse.move(box["x"] + 300, box["y"] + 200)
    page.mouse.wheel(0, 400)
    assert float(graph.get_attribute("data-zoom") or 0) < after


def _live_workflow(start_ns: int) -> list[list[Any]]:
    """An order whose loyalty step is still in flight, then two branches arriving later."""
    b = WorkflowBuilder(correlation_id="order_live", start_ns=start_ns, seed=90, first_event=90_000)
    placed = b.publish(
        b.action("POST /orders", service="checkout-api", duration_ms=5), "order.placed",
        destination="orders",
    )  # fmt: skip
    b.consume(placed, "reserve-inventory", service="inventory")
    b.consume(placed, "award-loyalty-points", service="loyalty", in_flight=True)
    batches = [list(b.build().spans)]
    retried = [Try(5, error="E", backoff_ms=5), Try(5)]
    b.consume(placed, "audit-order", service="audit", tries=retried)
    batches.append([s for s in b.build().spans if s not in batches[0]])
    b.consume(placed, "notify-customer", service="notify")
    batches.append([s for s in b.build().spans if s not in batches[0] + batches[1]])
    return batches


def test_an_open_workflow_and_the_pending_page_follow_new_spans(
    browser: Browser,
    big: tuple[str, Path, str],
) -> None:
    url, path, _ = big
    first, later, last = _live_workflow(time.time_ns() - 2_000_000_000)
    with SqliteStore(path) as store:
        store.write(first)
    context = browser.new_context(viewport=WIDTHS["1440"])
    try:
        page = context.new_page()
        page.goto(f"{url}/?poll=150#/workflow/order_live")
        _ready(page, "workflow")
        lanes = page.locator(".timeline [data-lane]")
        expect(lanes).to_have_count(3)
        page.locator(".timeline .bar.in-flight").click()
        selected = page.url.split("span=")[1]
        pending = context.new_page()
        pending.goto(f"{url}/?poll=150#/pending?since=1h")
        _ready(pending, "pending")
        expect(pending.locator(".pending-table")).to_contain_text("order_live")
        with SqliteStore(path) as store:
            store.write(later)
        expect(lanes).to_have_count(4, timeout=5000)
        expect(lanes.filter(has_text="audit-order")).to_have_count(1)
        # Selection kept, no reload.
        assert selected in page.url
        expect(page.locator(".timeline .bar.selected")).to_have_count(1)
        expect(page.locator(".panel .panel-title")).to_contain_text("award-loyalty-points")
        assert int(page.evaluate("document.body.dataset.updated")) >= 1
        # The graph keeps its pan and zoom through the next update.
        page.get_by_role("tab", name="Graph").click()
        page.get_by_role("button", name="zoom in").click()
        graph = page.locator("svg.graph")
        zoom = graph.get_attribute("data-zoom")
        nodes = page.locator(".graph .node.branch")
        expect(nodes).to_have_count(3)
        with SqliteStore(path) as store:
            store.write(last)
        expect(nodes).to_have_count(4, timeout=5000)
        assert page.locator("svg.graph").get_attribute("data-zoom") == zoom
    finally:
        context.close()


def test_no_dead_ends_an_unknown_page_and_an_empty_lint_window(
    page: Page, console_url: str
) -> None:
    page.goto(f"{console_url}/#/nope")
    _ready(page, "error")
    expect(page.locator(".error-box")).to_contain_text("There is no page #/nope")
    expect(page.locator(".error-box")).to_contain_text("#/pending")
    page.goto(f"{console_url}/#/lint?since=1ms")
    _ready(page, "lint")
    expect(page.locator(".all-good")).to_have_count(0)
    expect(page.locator(".empty")).to_contain_text("nothing to lint")


def test_a_long_timeline_draws_the_lanes_scrolled_to(
    page: Page, big: tuple[str, Path, str]
) -> None:
    url, _, key = big
    page.goto(f"{url}/#/workflow/{key}")
    _ready(page, "workflow")
    total = int(page.locator("svg.timeline").get_attribute("data-lanes") or 0)
    lanes = page.locator(".timeline [data-lane]")
    drawn = lanes.count()
    assert 0 < drawn < total, (drawn, total)
    page.locator(".canvas").evaluate("c => { c.scrollTop = c.scrollHeight; }")
    expect(lanes).not_to_have_count(drawn)
    # The last lane is drawn where it belongs: at the bottom of the timeline.
    last = page.locator(".timeline .lane-bg").evaluate_all(
        "rects => Math.max(...rects.map((r) => Number(r.getAttribute('y'))))"
    )
    assert last == (total - 1) * 48
    # The keyboard walks into lanes not drawn yet.
    page.locator(".canvas").evaluate("c => { c.scrollTop = 0; }")
    page.locator(".timeline .bar[tabindex]").first.focus()
    for _ in range(45):
        page.keyboard.press("ArrowDown")
    row = page.evaluate("document.activeElement.closest('[data-lane]').dataset.lane")
    assert int(row) >= 40
