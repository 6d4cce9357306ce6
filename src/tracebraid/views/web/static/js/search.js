// The search page: recent traces newest first, filtered by what operators ask
// ("which orders retried in the last hour on payment?"), one row per trace with its
// workflow's business name first.

import { h, clear, ago, clock, duration, plural, shortId } from "./dom.js";
import { get } from "./api.js";
import { link } from "./router.js";

const TEXT_FILTERS = [
  ["correlation_id", "Correlation ID", "order_441"],
  ["event_id", "Event ID", "evt_8821"],
  ["service", "Service", "payment"],
  ["event_name", "Event name", "payment.authorized"],
];
const FLAGS = [
  ["has_retries", "retried"],
  ["has_pending", "in flight"],
  ["has_failed", "failed"],
  ["has_broken", "broken causality"],
];
const SINCE = [["", "any time"], ["15m", "last 15 min"], ["1h", "last hour"], ["6h", "last 6 h"], ["24h", "last 24 h"], ["7d", "last 7 days"]];
const FILTER_NAMES = [...TEXT_FILTERS.map(([n]) => n), ...FLAGS.map(([n]) => n), "min_duration_ms", "max_duration_ms", "since"];

let facets = null;

export async function showSearch(root, route) {
  const params = route.params;
  const form = searchForm(params);
  const results = h("div", { class: "results" }, h("p", { class: "loading" }, "Searching…"));
  clear(root).append(h("h1", { class: "page-title" }, "Workflows and traces"), form, results);
  loadFacets(form);
  const query = {};
  for (const name of [...FILTER_NAMES, "cursor"]) if (params[name]) query[name] = params[name];
  const doc = await get("/api/search", { ...query, limit: 50 });
  clear(results).append(resultTable(doc, params));
  document.body.dataset.ready = "search";
}

function searchForm(params) {
  const input = (name, label, placeholder) =>
    h("label", { class: "field" }, h("span", {}, label),
      h("input", { name, value: params[name] || "", placeholder, list: name === "service" || name === "event_name" ? `${name}-list` : null, autocomplete: "off" }));
  const flag = (name, label) =>
    h("label", { class: "check" }, h("input", { type: "checkbox", name, checked: params[name] === "true" }), label);
  const since = h("select", { name: "since" }, SINCE.map(([value, label]) => h("option", { value, selected: params.since === value }, label)));
  const form = h("form", { class: "search-form", onsubmit: (e) => { e.preventDefault(); submit(form); } },
    h("div", { class: "row" }, TEXT_FILTERS.map(([n, l, p]) => input(n, l, p))),
    h("div", { class: "row" },
      h("fieldset", { class: "flags" }, h("legend", {}, "only traces that"), FLAGS.map(([n, l]) => flag(n, l))),
      input("min_duration_ms", "Took at least (ms)", "500"),
      input("max_duration_ms", "At most (ms)", ""),
      h("label", { class: "field" }, h("span", {}, "Started"), since),
      h("div", { class: "buttons" },
        h("button", { type: "submit", class: "primary" }, "Search"),
        h("a", { href: link("search", "", {}), class: "button secondary" }, "Clear"))),
    h("datalist", { id: "service-list" }), h("datalist", { id: "event_name-list" }));
  return form;
}

function submit(form) {
  const params = {};
  for (const [name] of TEXT_FILTERS) params[name] = form.elements[name].value.trim();
  for (const [name] of FLAGS) if (form.elements[name].checked) params[name] = "true";
  params.min_duration_ms = form.elements.min_duration_ms.value.trim();
  params.max_duration_ms = form.elements.max_duration_ms.value.trim();
  params.since = form.elements.since.value;
  window.location.hash = link("search", "", params);
}

async function loadFacets(form) {
  try {
    facets = facets || (await get("/api/facets"));
  } catch (_) {
    return; // suggestions are a convenience
  }
  for (const [id, values] of [["service-list", facets.services], ["event_name-list", facets.event_names]]) {
    const list = form.querySelector(`#${id}`);
    if (list) list.append(...values.map((value) => h("option", { value })));
  }
}

function signals(row) {
  const out = [];
  if (row.broken) out.push(h("span", { class: "badge bad" }, "⚡ broken causality"));
  // Failed branches, as the workflow page counts them: an error span retried to success is not one.
  if (row.failed) out.push(h("span", { class: "badge bad" }, `✗ ${row.failed} failed`));
  if (row.retries) out.push(h("span", { class: "badge warn" }, `↻ ${plural(row.retries, "retry", "retries")}`));
  if (row.in_flight) out.push(h("span", { class: "badge warn" }, `◔ ${row.in_flight} in flight`));
  if (row.duplicates) out.push(h("span", { class: "badge warn" }, `⧉ ${plural(row.duplicates, "duplicate")}`));
  if (!out.length) out.push(h("span", { class: "badge ok" }, "✓ clean"));
  return out;
}

function resultTable(doc, params) {
  if (!doc.traces.length) {
    const filtered = FILTER_NAMES.some((n) => params[n]);
    return h("p", { class: "empty" }, filtered
      ? "No trace matches these filters. Clear some, or widen the time range."
      : "The store holds no traces yet. Point an OpenTelemetry exporter at this collector (OTLP/HTTP, /v1/traces), or run `tracebraid demo` into the same store.");
  }
  const rows = doc.traces.map((row) => {
    const workflow = row.correlation_ids.length ? row.correlation_ids[0] : null;
    const target = workflow ? link("workflow", workflow, {}) : link("workflow", row.trace_id, {});
    return h("tr", {},
      h("td", { title: clock(row.start_ns) }, ago(row.start_ns)),
      h("td", {}, h("a", { href: target, class: "wf-link" }, workflow || `trace ${shortId(row.trace_id)}`),
        row.correlation_ids.length > 1 ? h("span", { class: "muted" }, ` +${row.correlation_ids.length - 1}`) : null,
        h("div", { class: "muted small" }, h("a", { href: link("trace", row.trace_id, {}), class: "muted" }, `trace ${shortId(row.trace_id)}`))),
      h("td", {}, row.root_name, h("div", { class: "muted small" }, row.root_service)),
      h("td", { class: "num" }, duration(row.duration_ns)),
      h("td", { class: "num" }, String(row.span_count)),
      h("td", { title: row.services.join(", ") }, `${row.services.length} `, h("span", { class: "muted small" }, row.services.slice(0, 4).join(", ") + (row.services.length > 4 ? "…" : ""))),
      h("td", { class: "signals" }, signals(row)));
  });
  const pager = h("div", { class: "pager" },
    params.cursor ? h("a", { href: link("search", "", { ...params, cursor: null }), class: "button secondary" }, "← Newest") : null,
    doc.next_cursor ? h("a", { href: link("search", "", { ...params, cursor: doc.next_cursor }), class: "button secondary", rel: "next" }, "Older →") : h("span", { class: "muted" }, "end of results"));
  return h("div", {},
    h("table", { class: "grid-table results-table" },
      h("thead", {}, h("tr", {}, ["Started", "Workflow", "User action", "Took", "Spans", "Services", "Signals"].map((c) => h("th", {}, c)))),
      h("tbody", {}, rows)),
    pager);
}
