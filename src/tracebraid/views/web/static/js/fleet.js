// The fleet pages: what is stuck now (Pending), what is retrying (Retries), which
// consumer lags (Consumers). Each is a deep link: its filters are the address's
// parameters. Pending updates itself as spans arrive (live.js).

import { h, s, clear, duration, plural } from "./dom.js";
import { get } from "./api.js";
import { link } from "./router.js";
import { watchStore } from "./live.js";
import { consumerLabel, destinationLabel, tidy } from "./labels.js";

const SINCE = [["15m", "last 15 min"], ["1h", "last hour"], ["6h", "last 6 h"], ["24h", "last 24 h"], ["7d", "last 7 days"]];
const PENDING_STATES = [
  ["", "everything unfinished"],
  ["in_flight", "in flight"],
  ["overdue", "overdue (lost)"],
  ["not_started", "published, not consumed"],
  ["failing", "failing"],
];

function filterBar(page, params, fields) {
  const go = (changes) => { window.location.hash = link(page, "", { ...params, ...changes }); };
  return h("form", { class: "filter-bar", role: "search", "aria-label": `${page} filters`, onsubmit: (e) => e.preventDefault() },
    fields.map((field) => {
      if (field.options) {
        return h("label", { class: "field" }, h("span", {}, field.label),
          h("select", { name: field.name, onchange: (e) => go({ [field.name]: e.target.value }) },
            field.options.map(([value, label]) => h("option", { value, selected: (params[field.name] || field.default || "") === value }, label))));
      }
      return h("label", { class: "field" }, h("span", {}, field.label),
        h("input", { name: field.name, value: params[field.name] || "", placeholder: field.placeholder || "", autocomplete: "off",
          onchange: (e) => go({ [field.name]: e.target.value.trim() }) }));
    }));
}

/** A box that scrolls sideways on a narrow screen; focusable, so the keyboard can scroll it. */
function scroller(label, child) {
  return h("div", { class: "table-wrap", tabindex: 0, role: "region", "aria-label": label }, child);
}

function total(n, label, level = "") {
  return h("div", { class: `total ${n ? level : ""}` }, h("strong", {}, String(n)), h("span", {}, label));
}

function stateOf(item) {
  if (item.state === "lost") return ["overdue", "⚠ overdue (lost)"];
  if (item.reason === "in_flight") return ["in_flight", "◔ in flight"];
  if (item.reason === "failing") return ["failing", "✗ failing"];
  return ["not_started", "◌ published, not consumed"];
}

// -- Pending now -------------------------------------------------------------------

export async function showPending(root, route) {
  const params = route.params;
  const since = params.since || "1h";
  clear(root).append(h("h1", { class: "page-title" }, "Pending now"), h("p", { class: "loading" }, "Looking at recent workflows…"));
  const draw = (doc) => {
    const state = params.state || "";
    const consumer = (params.consumer || "").toLowerCase();
    const rows = [];
    for (const w of doc.workflows) {
      for (const item of w.pending) {
        const [key] = stateOf(item);
        if (state && key !== state) continue;
        if (consumer && !item.consumer.toLowerCase().includes(consumer)) continue;
        rows.push({ w, item, key });
      }
    }
    // The most urgent first: overdue, then failing, then the oldest.
    const rank = { overdue: 0, failing: 1, in_flight: 2, not_started: 3 };
    rows.sort((a, b) => rank[a.key] - rank[b.key] || (a.item.published_ns || 0) - (b.item.published_ns || 0));
    const t = doc.totals;
    const table = rows.length
      ? scroller("unfinished branches", h("table", { class: "grid-table pending-table" },
        h("caption", { class: "muted small", style: null }, `${plural(rows.length, "branch", "branches")} unfinished`),
        h("thead", {}, h("tr", {}, ["state", "workflow", "consumer", "event", "age", "deadline", "attempts", "last error"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, rows.map(({ w, item, key }) => h("tr", { dataset: { state: key } },
          h("td", {}, h("span", { class: `state-word ${key}` }, stateOf(item)[1])),
          h("td", {}, h("a", { href: link("workflow", w.key, {}) }, w.key)),
          h("td", {}, consumerLabel(item.consumer)),
          h("td", {}, item.event_name || h("span", { class: "muted" }, item.event_id)),
          h("td", { class: "num" }, item.published_ns ? duration(doc.now_ns - item.published_ns) : "–"),
          h("td", { class: "num" }, item.deadline_ns === null ? "none"
            : item.overdue_ns > 0 ? `${duration(item.overdue_ns)} late` : `in ${duration(item.deadline_ns - doc.now_ns)}`),
          h("td", { class: "num" }, String(item.attempts)),
          h("td", {}, item.last_error || h("span", { class: "muted" }, "–")))))))
      : h("p", { class: "all-good" }, doc.workflows.length || !t.in_flight
        ? "Nothing unfinished matches: every expected branch of the recent workflows is done."
        : "Nothing unfinished.");
    clear(root).append(
      h("h1", { class: "page-title" }, "Pending now"),
      h("p", { class: "page-intro" }, "Branches of recent workflows that have not succeeded: in flight, overdue, published but not consumed, or failing. Updates as spans arrive."),
      filterBar("pending", params, [
        { name: "state", label: "Show", options: PENDING_STATES },
        { name: "consumer", label: "Consumer", placeholder: "warehouse" },
        { name: "since", label: "Workflows started", options: SINCE, default: "1h" },
      ]),
      h("div", { class: "fleet-totals" },
        total(t.in_flight, "in flight", "flight"), total(t.pending, "pending", "warn"), total(t.lost, "overdue (lost)", "bad"),
        h("span", { class: "muted small live", "aria-live": "polite" }, `live · as of ${new Date(doc.now_ns / 1e6).toLocaleTimeString()}`)),
      table);
    document.body.dataset.ready = "pending";
  };
  const load = () => get("/api/pending", { since, limit: params.limit || 200 });
  draw(await load());
  watchStore(root, async () => draw(await load()));
}

// -- Retries -----------------------------------------------------------------------

function sparkline(series, consumer) {
  const values = series.map((w) => {
    const row = w.consumers.find((c) => c.consumer === consumer);
    return row ? row.retries : 0;
  });
  const max = Math.max(1, ...values);
  const W = 120;
  const H = 26;
  const bw = W / Math.max(1, values.length);
  const svg = s("svg", { class: "spark", width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `retries over time: ${values.join(", ")}` });
  svg.appendChild(s("line", { x1: 0, x2: W, y1: H - 0.5, y2: H - 0.5, class: "axis-line" }));
  values.forEach((v, i) => {
    if (!v) return;
    const bh = Math.max(2, (v / max) * (H - 3));
    svg.appendChild(s("rect", { x: i * bw + 1, y: H - bh, width: Math.max(1, bw - 2), height: bh, class: "bar-retries" },
      s("title", {}, `${v} retries`)));
  });
  return svg;
}

export async function showRetries(root, route) {
  const params = route.params;
  const since = params.since || "24h";
  clear(root).append(h("h1", { class: "page-title" }, "Retries"), h("p", { class: "loading" }, "Counting…"));
  const [doc, series] = await Promise.all([
    get("/api/retries", { since, limit: params.limit || 200 }),
    get("/api/retries/series", { since, windows: 12 }),
  ]);
  const consumer = (params.consumer || "").toLowerCase();
  const consumers = doc.consumers.filter((c) => !consumer || c.consumer.toLowerCase().includes(consumer) || c.step.toLowerCase().includes(consumer));
  const fleet = new Map(series.totals.map((c) => [c.consumer, c]));
  // The store names a consumer by its group attribute, else its service: a service
  // stands for a consumer only when no other consumer runs in it.
  const perService = new Map();
  for (const c of doc.consumers) perService.set(c.service, (perService.get(c.service) || 0) + 1);
  const rows = consumers.map((c) => {
    const pushed = fleet.get(c.consumer) || fleet.get(c.step)
      || (perService.get(c.service) === 1 ? fleet.get(c.service) : null) || null;
    const errors = Object.entries(c.errors).map(([k, n]) => `${k} ×${n}`).join(", ");
    return h("tr", { class: c.retries ? "" : "quiet-row" },
      h("td", {}, h("strong", {}, tidy(c.step)), h("div", { class: "muted small" }, `${consumerLabel(c.consumer)} · ${c.service}`)),
      h("td", { class: "num" }, String(c.branches)),
      h("td", { class: "num" }, String(c.retried_branches)),
      h("td", { class: "num" }, String(c.retries)),
      h("td", {}, errors || h("span", { class: "muted" }, "–")),
      h("td", { class: "num" }, String(c.dead_letters)),
      h("td", { class: "num" }, String(c.duplicates)),
      h("td", { class: "num" }, String(c.failing)),
      h("td", { class: "num" }, pushed ? `${pushed.attempts} / ${pushed.deliveries}` : "–"),
      h("td", {}, series.series.length ? sparkline(series.series, pushed ? pushed.consumer : c.consumer) : h("span", { class: "muted" }, "–")));
  });
  const retried = doc.workflows.filter((w) => w.total_retries || w.dead_letters.length || w.duplicate_publishes.length);
  clear(root).append(
    h("h1", { class: "page-title" }, "Retries"),
    h("p", { class: "page-intro" }, "By consumer and step: attempts, the errors that caused them, dead letters and duplicate deliveries. The counts per consumer are from the analysis of recent workflows; attempts / deliveries and the time series come from the store's own aggregates over the whole window."),
    filterBar("retries", params, [
      { name: "consumer", label: "Consumer or step", placeholder: "warehouse" },
      { name: "since", label: "Window", options: SINCE, default: "24h" },
    ]),
    h("div", { class: "legend", "aria-label": "legend" },
      h("span", { class: "legend-item" }, h("span", { class: "swatch retries" }), `retries per window (${series.series.length} windows over the last ${since})`)),
    consumers.length
      ? scroller("retries per consumer", h("table", { class: "grid-table retries-table" },
        h("thead", {}, h("tr", {}, ["consumer step", "deliveries", "retried", "retries", "error types", "dead letters", "duplicates", "failing", "attempts / deliveries (store)", "over time"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, rows)))
      : h("p", { class: "empty" }, "No consumer matches."),
    retried.length ? h("section", { class: "chart-card" }, h("h2", {}, "Workflows that retried"),
      h("ul", {}, retried.slice(0, 50).map((w) => h("li", {},
        h("a", { href: link("workflow", w.key, {}) }, w.key), " ",
        h("span", { class: "muted" }, [
          w.total_retries ? plural(w.total_retries, "retry", "retries") : null,
          w.dead_letters.length ? plural(w.dead_letters.length, "dead letter") : null,
          w.duplicate_publishes.length ? plural(w.duplicate_publishes.length, "duplicate publish", "duplicate publishes") : null,
        ].filter(Boolean).join(" · ")))))) : null);
  document.body.dataset.ready = "retries";
}

// -- Consumers ---------------------------------------------------------------------

function waitChart(doc) {
  const dests = doc.destinations.slice(0, 8).map((d) => d.destination);
  if (!dests.length) return h("p", { class: "muted" }, doc.pushed_down ? "No deliveries in this window." : "This store computes no aggregates.");
  const W = Math.max(360, Math.min(900, 60 * doc.series.length + 180));
  const ROW = 46;
  const plotX = 170;
  const plotW = W - plotX - 10;
  const bw = plotW / Math.max(1, doc.series.length);
  const svg = s("svg", { class: "waits", width: W, height: dests.length * ROW + 20, viewBox: `0 0 ${W} ${dests.length * ROW + 20}`, role: "img", "aria-label": "queue wait per destination over time" });
  dests.forEach((dest, r) => {
    const y = r * ROW + 4;
    const cells = doc.series.map((w) => w.destinations.find((d) => d.destination === dest) || null);
    const max = Math.max(1, ...cells.map((c) => (c ? c.p99_ns : 0)));
    svg.appendChild(s("text", { x: 0, y: y + ROW / 2 }, destinationLabel(dest) || "(no destination)"));
    svg.appendChild(s("text", { x: 0, y: y + ROW / 2 + 13 }, `p99 up to ${duration(max)}`));
    cells.forEach((c, i) => {
      if (!c) return;
      const x = plotX + i * bw;
      for (const [field, cls, frac] of [["p99_ns", "p99", 1], ["p90_ns", "p95", 0.66], ["p50_ns", "p50", 0.33]]) {
        const bh = Math.max(1, (c[field] / max) * (ROW - 10));
        svg.appendChild(s("rect", { x: x + 2 + (1 - frac) * (bw - 4) / 2, y: y + ROW - 6 - bh, width: Math.max(2, (bw - 4) * frac), height: bh, class: cls },
          s("title", {}, `${dest}: ${field.replace("_ns", "")} ${duration(c[field])} (${c.deliveries} deliveries)`)));
      }
    });
  });
  return svg;
}

export async function showConsumers(root, route) {
  const params = route.params;
  const since = params.since || "24h";
  clear(root).append(h("h1", { class: "page-title" }, "Consumers"), h("p", { class: "loading" }, "Measuring…"));
  const doc = await get("/api/consumers", { since, windows: 12, limit: params.limit || 200 });
  const filter = (params.consumer || "").toLowerCase();
  const groups = doc.consumers.filter((c) => !filter || c.consumer.toLowerCase().includes(filter) || c.step.toLowerCase().includes(filter));
  const rows = groups.map((c) => h("tr", { class: c.lagging ? "lagging-row" : "" },
    h("td", {}, h("strong", {}, consumerLabel(c.consumer)), h("div", { class: "muted small" }, `${tidy(c.step)} · ${c.service}`)),
    h("td", {}, c.lagging ? h("span", { class: "badge lag" }, `◷ lagging ×${c.lagging}${c.worst_ratio ? ` (up to ${c.worst_ratio}×)` : ""}`) : h("span", { class: "muted" }, "–")),
    h("td", { class: "num" }, String(c.deliveries)),
    h("td", { class: "num" }, duration(c.p50_ns)),
    h("td", { class: "num" }, duration(c.p95_ns)),
    h("td", { class: "num" }, duration(c.p99_ns)),
    h("td", { class: "num" }, duration(c.max_ns))));
  const dests = doc.destinations.map((d) => h("tr", {},
    h("td", {}, destinationLabel(d.destination) || "(none)"), h("td", { class: "num" }, String(d.deliveries)),
    h("td", { class: "num" }, duration(d.p50_ns)), h("td", { class: "num" }, duration(d.p90_ns)),
    h("td", { class: "num" }, duration(d.p99_ns)), h("td", { class: "num" }, duration(d.max_ns))));
  clear(root).append(
    h("h1", { class: "page-title" }, "Consumers"),
    h("p", { class: "page-intro" }, `Queue wait (published → first attempt) per consumer group over the ${plural(doc.workflows, "recent workflow")} analysed, lagging ones first; a delivery lags when it waited far longer than its siblings took the same event. Below, every destination's wait over time, from the store's own aggregates.`),
    filterBar("consumers", params, [
      { name: "consumer", label: "Consumer or step", placeholder: "summary" },
      { name: "since", label: "Window", options: SINCE, default: "24h" },
    ]),
    groups.length
      ? scroller("queue wait per consumer group", h("table", { class: "grid-table consumers-table" },
        h("thead", {}, h("tr", {}, ["consumer group", "lag", "deliveries", "wait p50", "p95", "p99", "max"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, rows)))
      : h("p", { class: "empty" }, "No consumer took an event in this window."),
    h("section", { class: "chart-card" },
      h("h2", {}, "Queue wait per destination over time"),
      h("div", { class: "legend" },
        ["p50", "p95", "p99"].map((cls, i) => h("span", { class: "legend-item" }, h("span", { class: `swatch ${cls}` }), ["p50", "p90", "p99"][i]))),
      scroller("queue wait over time", waitChart(doc)),
      dests.length ? scroller("queue wait per destination", h("table", { class: "grid-table" },
        h("thead", {}, h("tr", {}, ["destination", "deliveries", "p50", "p90", "p99", "max"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, dests))) : null));
  document.body.dataset.ready = "consumers";
}

