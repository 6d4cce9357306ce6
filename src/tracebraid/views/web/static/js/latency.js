// Where the time went: per branch, queue wait + processing + failed attempts + back-off
// as one stacked bar (longest first), and the critical path's segments ranked.

import { h, s, cut, duration } from "./dom.js";
import { spanKey } from "./model.js";

const LABEL_W = 300;
const ROW_H = 30;
const PARTS = [
  ["queue_wait_ns", "queue", "queue wait"],
  ["processing_ns", "ok", "processing"],
  ["failed_attempts_ns", "lat-failed", "failed attempts"],
  ["backoff_ns", "backoff-fill", "back-off"],
];
const SEGMENT_NAMES = {
  processing: "processing",
  queue_wait: "queue wait",
  backoff: "back-off",
  failed_attempt: "failed attempt",
};

export function renderLatency(model, { width }) {
  const rows = [...model.view.latency.branches].sort((a, b) => b.total_ns - a.total_ns);
  const steps = new Map(model.lanes.filter((l) => l.type === "branch").map((l) => [`${l.node.event_id}\u0000${l.node.consumer}`, l]));
  const plotW = Math.max(300, width - LABEL_W - 190);
  const max = Math.max(1, ...rows.map((r) => r.total_ns));
  const height = 30 + rows.length * ROW_H;
  const svg = s("svg", { class: "latency", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "latency per branch" });
  svg.appendChild(s("text", { x: 12, y: 18, class: "axis-title" }, "branch (longest first)"));
  svg.appendChild(s("text", { x: LABEL_W, y: 18, class: "axis-title" }, `0 … ${duration(max)}`));
  rows.forEach((row, i) => {
    const y = 28 + i * ROW_H;
    const lane = steps.get(`${row.event_id}\u0000${row.consumer}`);
    const name = lane ? lane.title : row.consumer;
    const g = s("g", { class: `latency-row${row.lagging ? " lagging" : ""}`, dataset: lane && lane.branch && lane.branch.attempts.length ? { span: spanKey(lane.branch.attempts[0].span) } : {} });
    g.appendChild(s("rect", { x: 0, y, width, height: ROW_H, class: i % 2 ? "lane-bg odd" : "lane-bg" }));
    // Estimated widths (bold 13.5 px, 11.5 px) keep the label clear of the bars.
    const room = LABEL_W - 24;
    const shown = cut(name, Math.floor(room / 7.9));
    const subChars = Math.floor((room - shown.length * 7.9) / 6.2) - 3;
    const label = s("text", { x: 12, y: y + 19, class: "lane-title" }, shown);
    if (subChars >= 6) {
      label.appendChild(s("tspan", { class: "lane-sub" }, " · " + cut(row.event_name || "event", subChars)));
    }
    g.appendChild(label);
    let x = LABEL_W;
    const tip = [`${name} on ${row.event_name || row.event_id}: ${duration(row.total_ns)}`];
    for (const [field, cls, label] of PARTS) {
      const value = row[field];
      if (value === null || value <= 0) continue;
      const w = (value / max) * plotW;
      g.appendChild(s("rect", { x, y: y + 6, width: Math.max(1, w), height: ROW_H - 12, class: `part ${cls}` }));
      x += w;
      tip.push(`${label} ${duration(value)}`);
    }
    const flags = [row.lagging ? "lagging" : null, row.clock_skewed ? "clock skew" : null].filter(Boolean).join(", ");
    const state = lane ? lane.node.state : "succeeded";
    const total = row.total_ns > 0 ? duration(row.total_ns) : state.replace("_", " ");
    g.appendChild(s("text", { x: x + 8, y: y + 19, class: "bar-after" }, total + (flags ? ` · ${flags}` : "")));
    g.appendChild(s("title", {}, tip.join("\n")));
    svg.appendChild(g);
  });
  return svg;
}

export function renderSegments(model) {
  const path = model.workflow.critical_path;
  const ranked = path.ranked.slice(0, 10).map((i) => path.segments[i]);
  const rows = ranked.map((segment, i) =>
    h("tr", { dataset: { span: spanKey(segment.span) }, class: "clickable" },
      h("td", {}, String(i + 1)),
      h("td", {}, h("span", { class: `swatch ${segment.kind}` }), " ", SEGMENT_NAMES[segment.kind] || segment.kind),
      h("td", {}, segment.span.name, segment.attempt ? h("span", { class: "muted" }, ` attempt ${segment.attempt}`) : null),
      h("td", { class: "muted" }, segment.span.service),
      h("td", { class: "num" }, duration(segment.duration_ns)),
      h("td", { class: "num" }, path.duration_ns ? `${Math.round((100 * segment.duration_ns) / path.duration_ns)} %` : "–")));
  const totals = path.totals.map((t) => `${SEGMENT_NAMES[t.kind] || t.kind} ${duration(t.duration_ns)}`).join(" · ");
  return h("section", { class: "segments" },
    h("h3", {}, "Critical path segments, longest first"),
    h("p", { class: "muted" }, totals),
    h("table", { class: "grid-table" },
      h("thead", {}, h("tr", {}, ["#", "segment", "span", "service", "time", "share"].map((c) => h("th", {}, c)))),
      h("tbody", {}, rows)));
}

export const LATENCY_LEGEND = PARTS.map(([, cls, label]) => [cls, label]);
