// The workflow page: what needs attention in business words, then the timeline, the
// graph or the latency chart, and the span panel beside them.

import { h, clear, clock, duration, plural } from "./dom.js";
import { get } from "./api.js";
import { attention, buildModel, findSpan, spanKey } from "./model.js";
import { link, replaceParams } from "./router.js";
import { fullRange, renderTimeline, TIMELINE_LEGEND } from "./timeline.js";
import { renderGraph, GRAPH_LEGEND } from "./graph.js";
import { renderLatency, renderSegments, LATENCY_LEGEND } from "./latency.js";
import { renderPanel } from "./panel.js";

const SEGMENT_WORDS = { queue_wait: "queue wait", backoff: "back-off", failed_attempt: "failed attempts" };
const TABS = [
  ["timeline", "Timeline"],
  ["graph", "Graph"],
  ["latency", "Latency"],
];

export async function showWorkflow(root, route, scope) {
  const key = route.id;
  clear(root).append(h("p", { class: "loading" }, `Loading ${scope} ${key}…`));
  performance.mark("tracebraid:asked");
  const view = await get(`/api/workflows/${encodeURIComponent(key)}/view`, scope === "trace" ? { scope } : {});
  performance.mark("tracebraid:answered");
  const model = buildModel(view);
  const page = new WorkflowPage(root, model, route);
  page.render();
  performance.mark("tracebraid:drawn");
  return page;
}

class WorkflowPage {
  constructor(root, model, route) {
    this.root = root;
    this.model = model;
    this.tab = TABS.some(([id]) => id === route.params.tab) ? route.params.tab : "timeline";
    this.selected = route.params.span || null;
    this.range = rangeFromParams(model, route.params);
  }

  render() {
    const { model } = this;
    this.canvas = h("div", { class: "canvas", onclick: (e) => this.onCanvasClick(e), onkeydown: (e) => this.onCanvasKey(e) });
    this.panel = h("aside", { class: "panel", "aria-label": "span details" });
    this.legend = h("div", { class: "legend" });
    this.tabs = h("nav", { class: "tabs", role: "tablist" }, TABS.map(([id, label]) =>
      h("button", { type: "button", role: "tab", class: "tab", dataset: { tab: id }, "aria-selected": String(id === this.tab), onclick: () => this.switchTab(id) }, label)));
    clear(this.root).append(
      this.header(),
      h("div", { class: "toolbar" }, this.tabs, this.legend),
      h("div", { class: "wf-body" }, this.canvas, this.panel),
      this.notes(),
    );
    this.drawTab();
    this.showSelection(false);
    document.body.dataset.ready = "workflow";
  }

  header() {
    const { model } = this;
    const w = model.workflow;
    const sm = w.summary;
    const rootSpan = w.roots[0];
    const title = model.key;
    const flags = [
      [sm.retries, "retry", "retries", "warn"],
      [sm.pending + sm.in_flight > 0 ? Math.max(sm.pending, sm.in_flight) : 0, "pending", "pending", "warn"],
      [sm.lost, "lost", "lost", "bad"],
      [w.lagging.length, "lagging consumer", "lagging consumers", "warn"],
      [Math.max(sm.broken_links, w.islands.length), "broken link", "broken links", "bad"],
      [sm.dead_letters, "dead letter", "dead letters", "bad"],
      [sm.duplicates, "duplicate", "duplicates", "warn"],
    ];
    const badges = flags.map(([n, one, many, level]) =>
      h("span", { class: `badge ${n ? level : "quiet"}` }, `${n} ${n === 1 ? one : many}`));
    const scopeNote = model.scope === "trace"
      ? h("p", { class: "scope-note" }, "This is one trace on its own. ",
        h("a", { href: link("workflow", sm.correlation_ids[0] || model.key, {}) }, "Open the whole workflow →"),
        w.islands.length ? h("span", { class: "warn-text" }, " It begins at a consumer whose producer is in another trace: broken causality.") : null)
      : null;
    const items = attention(model);
    return h("header", { class: "wf-head" },
      h("div", { class: "wf-title" },
        h("span", { class: "kicker" }, model.scope === "trace" ? "trace" : "workflow"),
        h("h1", { title: model.key, class: model.scope === "trace" ? "trace-id" : "" }, title),
        h("span", { class: "wf-meta" },
          rootSpan ? `${rootSpan.name} · ${rootSpan.service} · ` : "",
          `started ${clock(sm.start_ns)} · took ${duration(sm.duration_ns)} · ${plural(sm.span_count, "span")} in ${plural(sm.trace_ids.length, "trace")}`,
          model.view.truncated ? " · truncated: more traces than loaded" : "")),
      h("div", { class: "badges" }, badges),
      this.criticalLine(),
      items.length
        ? h("ul", { class: "attention" }, items.map((item) => h("li", { class: item.level },
          item.lane ? h("a", { href: "#", onclick: (e) => { e.preventDefault(); this.focusLane(item.lane); } }, item.text)
            : item.href ? h("a", { href: item.href }, item.text) : item.text,
          item.since ? h("span", { class: "muted" }, ` (running ${duration(model.nowNs - item.since)})`) : null)))
        : h("p", { class: "all-good" }, "Nothing needs attention: every branch finished, no retries, no broken links."),
      scopeNote);
  }

  criticalLine() {
    const path = this.model.workflow.critical_path;
    if (!path.steps.length) return null;
    const stops = [];
    path.steps.forEach((step, i) => {
      if (step.role === "producer") return;
      const name = i === 0 ? step.span.name : step.step;
      const last = stops[stops.length - 1];
      if (last && last.name === name && step.via === "retry") last.attempts += 1;
      else stops.push({ name, attempts: 1, span: step.span });
    });
    const totals = path.totals.filter((t) => t.kind !== "processing" && t.duration_ns > 0)
      .map((t) => `${SEGMENT_WORDS[t.kind] || t.kind} ${duration(t.duration_ns)}`);
    const chain = [];
    stops.forEach((stop, i) => {
      if (i) chain.push(h("span", { class: "arrow" }, " → "));
      chain.push(h("a", { href: "#", onclick: (e) => { e.preventDefault(); this.select(spanKey(stop.span), true); } },
        stop.name + (stop.attempts > 1 ? ` (${stop.attempts} attempts)` : "")));
    });
    return h("p", { class: "critical-line" },
      h("span", { class: "critical-chip" }, "critical path"), " ",
      chain,
      h("span", { class: "muted" }, ` — ${duration(path.duration_ns)} of ${duration(path.workflow_duration_ns)}${totals.length ? "; " + totals.join(", ") : ""}`));
  }

  notes() {
    const limits = this.model.workflow.limitations;
    if (!limits.length) return h("div");
    return h("section", { class: "notes" }, h("h3", {}, "What these spans cannot tell"),
      h("ul", {}, limits.map((l) => h("li", {}, l.message, l.count > 1 ? h("span", { class: "muted" }, ` (×${l.count})`) : null))));
  }

  switchTab(id) {
    this.tab = id;
    replaceParams({ tab: id === "timeline" ? null : id });
    this.drawTab();
    this.showSelection(false);
  }

  drawTab() {
    for (const button of this.tabs.querySelectorAll("button")) {
      button.setAttribute("aria-selected", String(button.dataset.tab === this.tab));
    }
    const width = Math.max(900, this.canvas.clientWidth || 960);
    clear(this.canvas);
    clear(this.legend);
    let legend;
    if (this.tab === "graph") {
      this.canvas.append(renderGraph(this.model, { selected: this.selected }));
      legend = GRAPH_LEGEND;
    } else if (this.tab === "latency") {
      this.canvas.append(renderLatency(this.model, { width }), renderSegments(this.model));
      legend = LATENCY_LEGEND;
    } else {
      const timeline = renderTimeline(this.model, {
        width, selected: this.selected, range: this.range, onZoom: (range) => this.zoom(range),
      });
      this.canvas.append(timeline.svg);
      if (!timeline.complete) {
        // A selected span in a later lane is marked once its lane is drawn.
        timeline.drawRest(() => this.markSelection());
      }
      legend = TIMELINE_LEGEND;
    }
    this.legend.append(...legend.map(([cls, label]) => h("span", { class: "legend-item" }, h("span", { class: `swatch ${cls}` }), label)));
    if (this.tab === "timeline") this.legend.append(this.zoomControl());
  }

  zoomControl() {
    if (!this.range) {
      return h("span", { class: "zoom-hint muted" }, "drag across the time axis to zoom");
    }
    const t0 = this.model.startNs;
    return h("span", { class: "zoom-state" },
      `showing +${duration(this.range.fromNs - t0)} to +${duration(this.range.toNs - t0)} `,
      h("button", { type: "button", class: "zoom-reset", onclick: () => this.zoom(null) }, "Show all"));
  }

  /** Zoom the timeline to a stretch of time (null: all of it); the URL keeps it. */
  zoom(range) {
    this.range = range;
    const t0 = this.model.startNs;
    const ms = (ns) => ((ns - t0) / 1e6).toFixed(3);
    replaceParams(range ? { from: ms(range.fromNs), to: ms(range.toNs) } : { from: null, to: null });
    this.drawTab();
    this.showSelection(false);
  }

  onCanvasClick(event) {
    const anchor = event.target.closest("a");
    if (anchor) return; // links (stitched edges) navigate by themselves
    const target = event.target.closest("[data-span]");
    if (target) this.select(target.dataset.span, false);
  }

  onCanvasKey(event) {
    if (event.key !== "Enter" && event.key !== " ") return;
    const target = event.target.closest("[data-span]");
    if (target) {
      event.preventDefault();
      this.select(target.dataset.span, false);
    }
  }

  select(key, scroll) {
    this.selected = key;
    replaceParams({ span: key });
    this.showSelection(scroll);
  }

  focusLane(lane) {
    if (this.tab !== "timeline") this.switchTab("timeline");
    const attempts = lane.branch ? lane.branch.attempts : [];
    const failed = attempts.find((a) => a.outcome !== "ok");
    const pick = failed || attempts[attempts.length - 1];
    if (pick) this.select(spanKey(pick.span), true);
    const row = this.canvas.querySelector(`[data-lane="${lane.index}"]`);
    if (row) row.scrollIntoView({ block: "center" });
  }

  markSelection() {
    for (const el of this.canvas.querySelectorAll(".selected")) el.classList.remove("selected");
    const span = findSpan(this.model, this.selected);
    if (!span) return null;
    const key = this.selected.includes(":") ? this.selected : spanKey(span);
    for (const el of this.canvas.querySelectorAll("[data-span]")) {
      if (el.dataset.span === key) el.classList.add("selected");
    }
    return span;
  }

  showSelection(scroll) {
    const span = this.markSelection();
    if (!span) {
      this.placeholder();
      return;
    }
    if (scroll) {
      const el = this.canvas.querySelector(".selected");
      if (el) el.scrollIntoView({ block: "center", inline: "nearest" });
    }
    renderPanel(this.panel, this.model, span, { onClose: () => this.deselect() });
  }

  deselect() {
    this.selected = null;
    replaceParams({ span: null });
    this.showSelection(false);
  }

  placeholder() {
    delete this.panel.dataset.span;
    clear(this.panel).append(
      h("h2", { class: "panel-title" }, "Span details"),
      h("p", { class: "muted" }, "Click a bar, a node or a row to see that span: its trace, span and parent IDs, correlation, event and causation IDs, attempt and consumer, its attributes and events."),
      h("p", { class: "muted" }, "Every view has its own URL: copy the address bar into the incident channel."));
  }
}


/** The zoom a pasted link asks for (?from=&to=, ms after the workflow's start), if sane. */
function rangeFromParams(model, params) {
  const from = Number.parseFloat(params.from);
  const to = Number.parseFloat(params.to);
  if (!Number.isFinite(from) || !Number.isFinite(to) || to <= from) return null;
  const full = fullRange(model);
  const fromNs = Math.max(full.fromNs, model.startNs + from * 1e6);
  const toNs = Math.min(full.toNs, model.startNs + to * 1e6);
  return toNs > fromNs ? { fromNs, toNs } : null;
}
