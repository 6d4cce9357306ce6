// The lint page: the seed's common mistakes found in recent traces, grouped by rule,
// filterable by service; each finding links to a workflow that shows it.

import { h, clear, plural } from "./dom.js";
import { get } from "./api.js";
import { link } from "./router.js";

const WINDOWS = [["1h", "last hour"], ["24h", "last 24 h"], ["7d", "last 7 days"]];

export async function showLint(root, route) {
  const params = route.params;
  const since = params.since || "24h";
  clear(root).append(h("h1", { class: "page-title" }, "Lint: propagation and conventions"), h("p", { class: "loading" }, "Linting…"));
  const doc = await get("/api/lint", { since });
  const services = [...new Set(doc.findings.flatMap((f) => [f.service]))].sort();
  const service = params.service || "";
  const findings = doc.findings.filter((f) => !service || f.service === service || f.services.includes(service));
  const byRule = new Map();
  for (const finding of findings) {
    if (!byRule.has(finding.rule)) byRule.set(finding.rule, []);
    byRule.get(finding.rule).push(finding);
  }
  const filters = h("form", { class: "lint-filters", onsubmit: (e) => e.preventDefault() },
    h("label", { class: "field" }, h("span", {}, "Service"),
      h("select", { name: "service", onchange: (e) => { window.location.hash = link("lint", "", { since, service: e.target.value }); } },
        h("option", { value: "" }, "all services"),
        services.map((name) => h("option", { value: name, selected: name === service }, name)))),
    h("label", { class: "field" }, h("span", {}, "Traces started"),
      h("select", { name: "since", onchange: (e) => { window.location.hash = link("lint", "", { since: e.target.value, service }); } },
        WINDOWS.map(([value, label]) => h("option", { value, selected: value === since }, label)))));
  const counts = doc.counts;
  const summary = h("p", { class: "lint-summary" },
    `${plural(doc.workflows, "workflow")}, ${plural(doc.traces, "trace")}, ${plural(doc.spans, "span")} linted: `,
    h("span", { class: `badge ${counts.error ? "bad" : "quiet"}` }, plural(counts.error, "error")), " ",
    h("span", { class: `badge ${counts.warning ? "warn" : "quiet"}` }, plural(counts.warning, "warning")), " ",
    h("span", { class: "badge quiet" }, `${counts.info} info`));
  const groups = [...byRule.entries()].map(([rule, items]) =>
    h("section", { class: "rule" },
      h("h2", {}, h("span", { class: `sev ${items[0].severity}` }, items[0].severity), ` ${rule} `, h("span", { class: "rule-name" }, items[0].name)),
      h("p", { class: "muted" }, items[0].why),
      h("div", { class: "table-wrap" }, h("table", { class: "grid-table" },
        h("thead", {}, h("tr", {}, ["service", "step", "what was found", "times", "fix", "see it"].map((c) => h("th", {}, c)))),
        h("tbody", {}, items.map((f) => h("tr", {},
          h("td", { class: "nowrap" }, f.service),
          h("td", { class: "nowrap" }, f.step),
          h("td", {}, f.message),
          h("td", { class: "num" }, String(f.count)),
          h("td", { class: "fix" }, f.fix),
          h("td", {}, examples(f)))))))));
  const coverage = doc.coverage.length
    ? h("section", { class: "rule" }, h("h2", {}, "Propagation coverage per service"),
      h("div", { class: "table-wrap" }, h("table", { class: "grid-table" },
        h("thead", {}, h("tr", {}, ["service", "sent (kept context)", "received (kept context)", "coverage"].map((c) => h("th", {}, c)))),
        h("tbody", {}, doc.coverage.map((c) => h("tr", {},
          h("td", {}, c.service),
          h("td", { class: "num" }, `${c.sent} (${c.sent_intact})`),
          h("td", { class: "num" }, `${c.received} (${c.received_intact})`),
          h("td", { class: "num" }, c.ratio === null ? "–" : `${Math.round(c.ratio * 100)} %`)))))))
    : null;
  const perService = new Map();
  for (const f of doc.findings) perService.set(f.service, (perService.get(f.service) || 0) + 1);
  const chips = h("p", { class: "service-chips" }, "By service: ",
    [...perService].sort((a, b) => b[1] - a[1]).map(([name, n]) =>
      h("a", { href: link("lint", "", { since, service: name }), class: `badge ${name === service ? "warn" : "quiet"}` }, `${name} ${n}`)));
  clear(root).append(
    h("h1", { class: "page-title" }, "Lint: propagation and conventions"),
    filters, summary, perService.size ? chips : "",
    h("div", {}, groups.length ? groups : doc.workflows
      ? h("p", { class: "all-good" }, "No findings: every delivery kept its context and every convention holds.")
      : h("p", { class: "empty" }, "No workflow started in this window, so there was nothing to lint. Choose a longer window, or send spans to this collector.")),
    coverage || "");
  document.body.dataset.ready = "lint";
}

function examples(finding) {
  const seen = new Set();
  const out = [];
  for (const span of finding.spans) {
    if (seen.has(span.trace_id)) continue;
    seen.add(span.trace_id);
    out.push(h("a", { href: link("workflow", span.trace_id, { span: `${span.trace_id}:${span.span_id}` }), class: "finding-link" }, `open ${span.name}`));
  }
  return out.length ? out : h("span", { class: "muted" }, "–");
}
