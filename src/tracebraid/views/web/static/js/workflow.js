// The workflow page: what needs attention in business words, then the timeline, the
// graph or the latency chart, and the span panel beside them.

import { h, clear, clock, duration, plural } from "./dom.js";
import { get } from "./api.js";
import { attention, buildModel, findSpan, groupAttention, spanKey } from "./model.js";
import { link, replaceParams } from "./router.js";
import { fullRange, renderTimeline, TIMELINE_LEGEND } from "./timeline.js";
import { countBadges, countsOf } from "./badges.js";
import { descendants, findLanes, laneFacets, laneId, STATUS_FILTERS, visibleLanes } from "./lanes.js";
import { renderMinimap } from "./minimap.js";
import { watchStore } from "./live.js";
import { tidy } from "./labels.js";
import { renderGraph, GRAPH_LEGEND } from "./graph.js";
import { renderLatency, renderSegments, LATENCY_LEGEND } from "./latency.js";
import { renderPanel } from "./panel.js";

const SEGMENT_WORDS = { queue_wait: "queue wait", backoff: "back-off", failed_attempt: "failed attempts" };
const ATTENTION_SHOWN = 6;
const MINIMAP_LANES = 30;
const TABS = [
  ["timeline", "Timeline"],
  ["graph", "Graph"],
  ["latency", "Latency"],
];

/** The view a route asks for: a trace alone, or one run of a workflow (the latest by default). */
export function viewRequest(scope, key, params) {
  if (scope === "trace") return [`/api/workflows/${encodeURIComponent(key)}/view`, { scope }];
  const run = /^[0-9]+$/.test(params.run || "") ? params.run : "latest";
  return [`/api/workflows/${encodeURIComponent(key)}/runs/${run}/view`, {}];
}

function modelOf(view) {
  const model = buildModel(view);
  for (const lane of model.lanes) lane.id = laneId(lane);
  return model;
}

export async function showWorkflow(root, route, scope) {
  const key = route.id;
  clear(root).append(h("p", { class: "loading" }, `Loading ${scope} ${key}…`));
  performance.mark("tracebraid:asked");
  const [path, query] = viewRequest(scope, key, route.params);
  const view = await get(path, query);
  performance.mark("tracebraid:answered");
  const page = new WorkflowPage(root, modelOf(view), route);
  page.render();
  performance.mark("tracebraid:drawn");
  // Work in flight: the page follows new spans without losing zoom, selection or filters.
  watchStore(root, async () => {
    const fresh = await get(path, query);
    page.update(modelOf(fresh));
  });
  return page;
}

/**
 * The banner of a view cut to its first spans (the server's span cap): how many are shown,
 * of how many, and how to narrow it. Counts, badges and attention below cover only these.
 */
export function limitedBanner(limited) {
  if (!limited) return null;
  // The message starts with the counts the heading already says; keep how to narrow it.
  const how = limited.message.split("; ").slice(1).join("; ") || limited.message;
  return h("p", { class: "limited-banner", role: "alert" },
    h("strong", {}, `Partial view: ${limited.shown.toLocaleString("en")} of ${limited.total.toLocaleString("en")} spans.`),
    " Everything on this page is worked out from these spans alone. ",
    how.charAt(0).toUpperCase() + how.slice(1) + ".");
}

class WorkflowPage {
  constructor(root, model, route) {
    this.root = root;
    this.model = model;
    this.tab = TABS.some(([id]) => id === route.params.tab) ? route.params.tab : "timeline";
    this.selected = route.params.span || null;
    this.range = rangeFromParams(model, route.params);
    this.filters = { service: route.params.service || "", step: route.params.step || "", status: route.params.status || "" };
    this.find = route.params.find || "";
    this.collapsed = new Set();
    this.allNotes = false;
    this.onKey = (e) => this.onDocumentKey(e);
  }

  render() {
    this.canvas = h("div", { class: "canvas", onclick: (e) => this.onCanvasClick(e), onkeydown: (e) => this.onCanvasKey(e) });
    this.panel = h("aside", { class: "panel", "aria-label": "span details" });
    this.legend = h("div", { class: "legend", "aria-label": "legend" });
    this.tools = h("div", { class: "lane-tools" });
    this.overview = h("div", { class: "overview" });
    this.body = h("div", { class: "wf-body" }, h("div", { class: "canvas-wrap" }, this.overview, this.canvas), this.panel);
    this.tabs = h("nav", { class: "tabs", role: "tablist", "aria-label": "views of the workflow" }, TABS.map(([id, label]) =>
      h("button", { type: "button", role: "tab", class: "tab", dataset: { tab: id }, "aria-selected": String(id === this.tab), onclick: () => this.switchTab(id) }, label)));
    this.head = this.header();
    clear(this.root).append(
      this.head,
      h("div", { class: "toolbar" }, this.tabs, this.legend),
      this.tools,
      this.body,
      this.notes(),
    );
    this.drawTab();
    this.showSelection(false);
    document.removeEventListener("keydown", window.tracebraidKeys || (() => {}));
    window.tracebraidKeys = this.onKey;
    document.addEventListener("keydown", this.onKey);
    document.body.dataset.ready = "workflow";
  }

  /** New spans arrived: the same page over the fresh analysis, zoom, selection and filters kept. */
  update(model) {
    if (!this.root.isConnected || !this.head.isConnected) return;
    const scroll = [this.canvas.scrollTop, this.canvas.scrollLeft];
    this.model = model;
    const head = this.header();
    this.head.replaceWith(head);
    this.head = head;
    this.drawTab();
    this.showSelection(false);
    [this.canvas.scrollTop, this.canvas.scrollLeft] = scroll;
    document.body.dataset.updated = String(Number(document.body.dataset.updated || 0) + 1);
  }

  header() {
    const { model } = this;
    const w = model.workflow;
    const sm = w.summary;
    const rootSpan = w.roots[0];
    const title = model.key;
    const badges = countBadges(model.view.counts || countsOf(w), { all: true });
    const scopeNote = model.scope === "trace"
      ? h("p", { class: "scope-note" }, "This is one trace on its own. ",
        h("a", { href: link("workflow", sm.correlation_ids[0] || model.key, {}) }, "Open the whole workflow →"),
        w.islands.length ? h("span", { class: "warn-text" }, " It begins at a consumer whose producer is in another trace: broken causality.") : null)
      : null;
    const limited = limitedBanner(model.view.limited);
    const groups = groupAttention(attention(model));
    const shown = this.allNotes ? groups : groups.slice(0, ATTENTION_SHOWN);
    const runs = model.view.runs && model.view.runs.length > 1
      ? h("nav", { class: "runs", "aria-label": "runs of this workflow" },
        h("span", { class: "muted" }, `${model.view.runs.length} separate runs under this correlation ID:`),
        model.view.runs.map((run) => h("a", {
          href: link("workflow", model.key, { run: run.index }),
          "aria-current": String(run.index === model.view.run.index),
        }, `run ${run.index + 1} · ${clock(run.start_ns)}`)))
      : null;
    return h("header", { class: "wf-head" },
      limited,
      h("div", { class: "wf-title" },
        h("span", { class: "kicker" }, model.scope === "trace" ? "trace" : "workflow"),
        h("h1", { title: model.key, class: model.scope === "trace" ? "trace-id" : "" }, title),
        h("span", { class: "wf-meta" },
          rootSpan ? `${rootSpan.name} · ${rootSpan.service} · ` : "",
          `started ${clock(sm.start_ns)} · took ${duration(sm.duration_ns)} · ${plural(sm.span_count, "span")} in ${plural(sm.trace_ids.length, "trace")}`,
          model.view.truncated ? " · truncated: more traces than loaded" : ""),
        h("span", { class: "live", "aria-live": "polite" }, sm.in_flight || sm.pending ? "live: updates as spans arrive" : "")),
      runs,
      h("div", { class: "badges" }, badges),
      this.criticalLine(),
      groups.length
        ? h("ul", { class: "attention", "aria-label": "what needs attention" }, shown.map((item) => h("li", { class: item.level },
          item.lane ? h("a", { href: "#", onclick: (e) => { e.preventDefault(); this.focusLane(item.lane); } }, item.text)
            : item.href ? h("a", { href: item.href }, item.text) : item.text,
          item.since ? h("span", { class: "muted" }, ` (running ${duration(model.nowNs - item.since)})`) : null,
          item.count > 1 ? h("span", { class: "also" }, " · ", h("a", { href: "#", onclick: (e) => { e.preventDefault(); this.filterTo(item); } }, `show these ${item.count} lanes`)) : null)))
        : h("p", { class: "all-good" }, "Nothing needs attention: every branch finished, no retries, no broken links."),
      groups.length > ATTENTION_SHOWN
        ? h("button", { type: "button", class: "secondary small-button attention-more", "aria-expanded": String(this.allNotes), onclick: () => this.toggleNotes() },
          this.allNotes ? "Show fewer" : `Show all ${groups.length} notes`)
        : null,
      scopeNote);
  }

  criticalLine() {
    const path = this.model.workflow.critical_path;
    if (!path.steps.length) return null;
    const stops = [];
    path.steps.forEach((step, i) => {
      if (step.role === "producer") return;
      const name = i === 0 ? step.span.name : tidy(step.step);
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
    const width = Math.max(560, (this.canvas.clientWidth || 960) - 2);
    clear(this.canvas);
    clear(this.legend);
    clear(this.tools);
    clear(this.overview);
    let legend;
    if (this.tab === "graph") {
      this.timeline = null;
      this.graphState = this.graphState || {};
      this.graphView = renderGraph(this.model, { selected: this.selected, view: this.graphState });
      this.canvas.append(this.graphView);
      legend = GRAPH_LEGEND;
    } else if (this.tab === "latency") {
      this.timeline = null;
      this.canvas.append(renderLatency(this.model, { width }), renderSegments(this.model));
      legend = LATENCY_LEGEND;
    } else {
      const lanes = visibleLanes(this.model, this.filters, this.collapsed);
      this.lanes = lanes;
      this.matches = findLanes(lanes, this.find);
      const filtered = Boolean(this.filters.service || this.filters.step || this.filters.status);
      const timeline = renderTimeline(this.model, {
        width, selected: this.selected, range: this.range, onZoom: (range) => this.zoom(range),
        lanes, folds: filtered ? null : descendants(this.model), collapsed: this.collapsed, matches: this.matches,
      });
      this.tools.append(...this.laneTools(lanes).filter(Boolean));
      this.canvas.append(h("div", { class: "sticky-axis" }, timeline.axis), timeline.svg);
      if (this.model.lanes.length >= MINIMAP_LANES) {
        this.minimap = renderMinimap(this.canvas, this.model, lanes, { matches: this.matches, range: this.range });
        this.overview.append(this.minimap.el);
        requestAnimationFrame(() => this.minimap && this.minimap.el.isConnected && this.minimap.draw());
      } else {
        this.minimap = null;
      }
      this.timeline = timeline;
      if (!timeline.complete) {
        // A selected span in a later lane is marked once its lane is drawn.
        timeline.drawRest(() => this.markSelection(), this.canvas);
      }
      legend = TIMELINE_LEGEND;
    }
    this.legend.append(...legend.filter(([cls]) => cls !== "match" || this.find).map(([cls, label]) => h("span", { class: "legend-item" }, h("span", { class: `swatch ${cls}` }), label)));
    if (this.tab === "timeline") this.legend.append(this.zoomControl());
  }

  laneTools(lanes) {
    const facets = laneFacets(this.model);
    const select = (name, label, options) => h("label", {}, `${label} `,
      h("select", { name, "aria-label": `filter lanes by ${label}`, onchange: (e) => this.setFilter(name, e.target.value) },
        options.map(([value, text]) => h("option", { value, selected: this.filters[name] === value }, text))));
    const find = h("input", { type: "search", class: "find", name: "find", value: this.find, placeholder: "find a step, service, event…",
      "aria-label": "find lanes (highlights them; Enter goes to the next)", autocomplete: "off",
      oninput: (e) => this.setFind(e.target.value),
      onkeydown: (e) => { if (e.key === "Enter") { e.preventDefault(); this.nextMatch(); } } });
    const total = this.model.lanes.length;
    const count = h("span", { class: "count", "aria-live": "polite" },
      `${lanes.length === total ? plural(total, "lane") : `${lanes.length} of ${total} lanes`}${this.find ? ` · ${plural(this.matches.size, "match", "matches")}` : ""}`);
    const foldable = !this.filters.service && !this.filters.step && !this.filters.status;
    return [
      select("service", "service", [["", "any service"], ...facets.services.map((v) => [v, v])]),
      select("step", "step", [["", "any step"], ...facets.steps.map((v) => [v, v])]),
      select("status", "status", STATUS_FILTERS),
      find,
      count,
      foldable ? h("button", { type: "button", class: "secondary small-button", onclick: () => this.foldAll(true) }, "Collapse all") : null,
      foldable && this.collapsed.size ? h("button", { type: "button", class: "secondary small-button", onclick: () => this.foldAll(false) }, "Expand all") : null,
    ];
  }

  setFilter(name, value) {
    this.filters = { ...this.filters, [name]: value };
    replaceParams({ [name]: value || null });
    this.drawTab();
    this.showSelection(false);
  }

  /** An attention group's "show these lanes": its step, with its status. */
  filterTo(group) {
    const status = { retried: "retried", lagged: "lagging", "still in flight": "in_flight", "not started": "in_flight", failing: "failed", "is lost": "failed" }[group.kind] || "";
    this.filters = { service: "", step: group.subject, status };
    replaceParams({ service: null, step: group.subject, status: status || null });
    if (this.tab !== "timeline") this.switchTab("timeline");
    else { this.drawTab(); this.showSelection(false); }
  }

  toggleNotes() {
    this.allNotes = !this.allNotes;
    const head = this.header();
    this.head.replaceWith(head);
    this.head = head;
  }

  setFind(text) {
    this.find = text;
    window.clearTimeout(this.findTimer);
    this.findTimer = window.setTimeout(() => {
      replaceParams({ find: text || null });
      // The same set the timeline holds: lanes drawn later are highlighted by it too.
      const found = findLanes(this.lanes || [], text);
      this.matches.clear();
      for (const index of found) this.matches.add(index);
      for (const el of this.canvas.querySelectorAll(".lane")) {
        el.classList.toggle("match", this.matches.has(Number(el.dataset.lane)));
      }
      const count = this.tools.querySelector(".count");
      if (count) {
        const total = this.model.lanes.length;
        count.textContent = `${this.lanes.length === total ? plural(total, "lane") : `${this.lanes.length} of ${total} lanes`}${text ? ` · ${plural(this.matches.size, "match", "matches")}` : ""}`;
      }
      if (this.minimap) {
        this.overview.replaceChildren();
        this.minimap = renderMinimap(this.canvas, this.model, this.lanes, { matches: this.matches, range: this.range });
        this.overview.append(this.minimap.el);
        this.minimap.draw();
      }
    }, 120);
  }

  nextMatch() {
    const rows = (this.lanes || []).filter((lane) => this.matches.has(lane.index));
    if (!rows.length) return;
    this.matchAt = ((this.matchAt ?? -1) + 1) % rows.length;
    const el = this.laneElement(rows[this.matchAt]);
    if (el) {
      el.scrollIntoView({ block: "center" });
      const bar = el.querySelector("[data-span]");
      if (bar) bar.focus({ preventScroll: true });
    }
  }

  fold(id) {
    if (this.collapsed.has(id)) this.collapsed.delete(id);
    else this.collapsed.add(id);
    const scroll = this.canvas.scrollTop;
    this.drawTab();
    this.canvas.scrollTop = scroll;
    const again = this.canvas.querySelector(`[data-fold="${CSS.escape(id)}"]`);
    if (again) again.focus({ preventScroll: true });
  }

  /** Collapse every lane with lanes under it, but the user action's own; or expand all. */
  foldAll(close) {
    this.collapsed = new Set();
    if (close) {
      const counts = descendants(this.model);
      for (const lane of this.model.lanes) if (lane.type === "branch" && counts.get(lane.index)) this.collapsed.add(lane.id);
    }
    this.drawTab();
    this.showSelection(false);
  }

  onDocumentKey(event) {
    if (!this.root.isConnected || !this.head.isConnected) {
      document.removeEventListener("keydown", this.onKey);
      return;
    }
    if (event.key === "Escape" && this.selected) {
      event.preventDefault();
      this.deselect();
    }
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
    const fold = event.target.closest("[data-fold]");
    if (fold) {
      this.fold(fold.dataset.fold);
      return;
    }
    const target = event.target.closest("[data-span]");
    if (target) this.select(target.dataset.span, false);
  }

  onCanvasKey(event) {
    if (["ArrowDown", "ArrowUp", "ArrowLeft", "ArrowRight"].includes(event.key)) {
      this.moveFocus(event);
      return;
    }
    if (event.key !== "Enter" && event.key !== " ") return;
    const fold = event.target.closest("[data-fold]");
    if (fold) {
      event.preventDefault();
      this.fold(fold.dataset.fold);
      return;
    }
    const target = event.target.closest("[data-span]");
    if (target) {
      event.preventDefault();
      this.select(target.dataset.span, false);
    }
  }

  /** The lane element of a visible lane, drawn first if the timeline draws lazily. */
  laneElement(lane) {
    const row = (this.lanes || []).indexOf(lane);
    if (row < 0) return null;
    if (this.timeline) this.timeline.ensure(row);
    return this.canvas.querySelector(`[data-lane="${lane.index}"]`);
  }

  /** The visible lane that holds a span (its attempt, or the user action's root). */
  laneOfSpan(key) {
    for (const lane of this.lanes || []) {
      if (lane.type === "action" ? spanKey(lane.span) === key
        : lane.branch && lane.branch.attempts.some((a) => spanKey(a.span) === key)) return lane;
    }
    return null;
  }

  /** Arrow keys: up and down between lanes, left and right between a lane's bars. */
  moveFocus(event) {
    const current = event.target.closest("[data-span], [data-fold]");
    const lane = event.target.closest("[data-lane]");
    if (!current || !lane) return;
    event.preventDefault();
    let target = null;
    if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      const items = [...lane.querySelectorAll("[data-span][tabindex], [data-fold]")];
      const at = items.indexOf(current);
      target = items[at + (event.key === "ArrowRight" ? 1 : -1)] || null;
    } else {
      // By row, not by element order: a long timeline draws its lanes as they are reached.
      const lanes = this.lanes || [];
      let row = lanes.findIndex((l) => String(l.index) === lane.dataset.lane);
      const stepBy = event.key === "ArrowDown" ? 1 : -1;
      for (row += stepBy; row >= 0 && row < lanes.length && !target; row += stepBy) {
        const el = this.laneElement(lanes[row]);
        target = el ? el.querySelector("[data-span][tabindex]") : null;
      }
    }
    if (target) {
      target.focus({ preventScroll: true });
      target.scrollIntoView({ block: "nearest", inline: "nearest" });
    }
  }

  select(key, scroll) {
    this.selected = key;
    replaceParams({ span: key });
    this.showSelection(scroll);
  }

  focusLane(lane) {
    if (this.tab !== "timeline") this.switchTab("timeline");
    if (!(this.lanes || []).includes(lane)) {
      // Hidden by a filter or under a collapsed branch: show everything again.
      this.filters = { service: "", step: "", status: "" };
      this.collapsed = new Set();
      replaceParams({ service: null, step: null, status: null });
      this.drawTab();
    }
    const attempts = lane.branch ? lane.branch.attempts : [];
    const failed = attempts.find((a) => a.outcome !== "ok");
    const pick = failed || attempts[attempts.length - 1];
    const row = this.laneElement(lane);
    if (pick) this.select(spanKey(pick.span), true);
    if (row) row.scrollIntoView({ block: "center" });
  }

  markSelection() {
    for (const el of this.canvas.querySelectorAll(".selected")) el.classList.remove("selected");
    const span = findSpan(this.model, this.selected);
    if (!span) return null;
    const key = this.selected.includes(":") ? this.selected : spanKey(span);
    // By attribute value: a 10,000-span timeline has as many bars to look through.
    for (const el of this.canvas.querySelectorAll(`[data-span="${CSS.escape(key)}"]`)) el.classList.add("selected");
    return span;
  }

  showSelection(scroll) {
    if (this.timeline && this.timeline.virtual && this.selected) {
      // A link to a span in a lane not drawn yet: draw it, so it can be marked and shown.
      const lane = this.laneOfSpan(this.selected.includes(":") ? this.selected : "");
      if (lane) this.laneElement(lane);
    }
    const span = this.markSelection();
    this.body.classList.toggle("no-selection", !span);
    if (!span) {
      this.placeholder();
      return;
    }
    if (scroll) {
      const el = this.canvas.querySelector(".selected");
      if (el && this.tab === "graph" && this.graphView) this.graphView.centre(el);
      else if (el) el.scrollIntoView({ block: "center", inline: "nearest" });
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
      h("p", { class: "muted small" }, "Click a bar, a node or a row (or Tab to it and press Enter) to see that span's identities, attributes and events. Arrow keys move between lanes; Esc closes the span."),
      h("p", { class: "muted small" }, "Every view has its own URL: copy the address bar into the incident channel."));
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
