// The causal timeline: time across, one lane per branch in causal order, delivery
// edges from the publishing lane to the consuming one with the queue wait shaded,
// every attempt its own bar, open bars for work still pending, stitched edges dashed
// and labelled as propagation breaks, the critical path in orange. Dragging across the
// time axis zooms into that stretch of time (`range`); lanes and edges are clipped to it.

import { s, cut, cutMiddle, duration, shortId } from "./dom.js";
import { destinationLabel } from "./labels.js";
import { innerSpans, spanKey, errorType } from "./model.js";
import { link } from "./router.js";

const RIGHT_PAD = 96;
const AXIS_H = 34;
const LANE_H = 48;
const BAR_Y = 9;
const BAR_H = 20;
const INNER_LANES_LIMIT = 300;
const FIRST_LANES = 40;
const CHUNK_LANES = 8;
const DRAW_ALL_LANES = 400;
const NEAR_LANES = 30;
const SLICE_MS = 12;

const STATE_ICON = {
  succeeded: "✓",
  failed: "✗",
  dead_lettered: "☠",
  in_flight: "◔",
  unknown: "?",
  pending: "◌",
  lost: "⚠",
};

/** The whole workflow's time span as drawn unzoomed: [startNs, endNs]. */
export function fullRange(model) {
  const t0 = model.startNs;
  const spanNs = Math.max(1, model.endNs - t0);
  const nowInside = model.nowNs - model.endNs <= spanNs * 0.5;
  const tEnd = (nowInside ? Math.max(model.endNs, model.nowNs) : model.endNs) + spanNs * 0.03;
  return { fromNs: t0, toNs: tEnd, nowInside };
}

/** The width of the label column for a canvas `width` px wide. */
export function labelWidth(width) {
  return width >= 1100 ? 300 : width >= 800 ? 220 : 170;
}

/**
 * The timeline of `lanes` (the visible ones, in order): `axis` is its time axis, drawn
 * apart so it stays on screen while the lanes scroll under it; `svg` the lanes.
 */
export function renderTimeline(model, { width, selected, range = null, onZoom = null, lanes = model.lanes, folds = null, collapsed = new Set(), matches = new Set() }) {
  const labelW = labelWidth(width);
  const plotW = Math.max(240, width - labelW - RIGHT_PAD);
  const full = fullRange(model);
  const { nowInside } = full;
  const from = range ? range.fromNs : full.fromNs;
  const to = range ? Math.max(range.toNs, from + 1) : full.toNs;
  const x = (t) => labelW + ((t - from) / (to - from)) * plotW;
  const openEnd = nowInside ? x(model.nowNs) : labelW + plotW + 14;
  const rows = new Map(lanes.map((lane, i) => [lane.index, i]));
  const height = lanes.length * LANE_H + 8;
  const laneY = (lane) => rows.get(lane.index) * LANE_H;
  const svg = s("svg", {
    class: "timeline",
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: "group",
    "aria-label": `causal timeline: ${lanes.length} lanes; arrow keys move between lanes and bars`,
    dataset: { zoomed: String(Boolean(range)), lanes: lanes.length },
  });
  svg.appendChild(defs(labelW, plotW, height));
  const ctx = { model, x, openEnd, laneY, selected, nowInside, labelW, plotW, rows, folds, collapsed, matches, inner: lanes.length <= INNER_LANES_LIMIT };

  const lanesGroup = s("g", { class: "lanes" });
  const edgesGroup = s("g", { class: "edges", "clip-path": "url(#timeline-plot)" });
  svg.appendChild(grid(ctx, from, to, height));
  svg.append(lanesGroup, edgesGroup);
  const axisSvg = axis(ctx, from, to, width);
  if (onZoom) axisSvg.appendChild(brush(axisSvg, { from, to, labelW, plotW, onZoom }));
  const edgesOf = new Map();
  for (const edge of model.edges) {
    if (!rows.has(edge.to.index)) continue;
    if (!edgesOf.has(edge.to.index)) edgesOf.set(edge.to.index, []);
    edgesOf.get(edge.to.index).push(edge);
  }
  const drawnRows = new Set();
  const draw = (a, b) => {
    const laneFrag = document.createDocumentFragment();
    const edgeFrag = document.createDocumentFragment();
    for (let row = Math.max(0, a); row < Math.min(b, lanes.length); row++) {
      if (drawnRows.has(row)) continue;
      drawnRows.add(row);
      const lane = lanes[row];
      laneFrag.appendChild(drawLane(ctx, lane, width));
      for (const edge of edgesOf.get(lane.index) || []) {
        const drawn = drawEdge(ctx, edge);
        if (drawn) edgeFrag.appendChild(drawn);
      }
    }
    lanesGroup.appendChild(laneFrag);
    edgesGroup.appendChild(edgeFrag);
  };
  const total = lanes.length;
  // The first screenful is drawn now. A workflow of a few hundred lanes draws the rest
  // in ~12 ms slices between frames (clicks are answered between them); a larger one
  // draws only the lanes scrolled near, as they come into view, so the page never
  // holds tens of thousands of elements it does not show.
  draw(0, FIRST_LANES);
  const virtual = total > DRAW_ALL_LANES;
  let onDrawn = () => {};
  /** Draw the rows around `row` (and the screenful it is in). */
  const ensure = (row) => {
    const before = drawnRows.size;
    draw(row - NEAR_LANES, row + NEAR_LANES);
    if (drawnRows.size !== before) onDrawn();
  };
  return {
    svg,
    axis: axisSvg,
    complete: total <= FIRST_LANES,
    virtual,
    ensure,
    /** The rows drawn so far (a virtual timeline draws them as they come into view). */
    drawnRows,
    drawRest(done, scroller) {
      onDrawn = done;
      if (virtual) {
        let queued = false;
        const follow = () => {
          queued = false;
          if (!svg.isConnected) return;
          // How far down the lanes the scroller's top edge is, in px.
          const top = scroller.getBoundingClientRect().top - svg.getBoundingClientRect().top;
          const first = Math.floor(top / LANE_H);
          const seen = Math.ceil(scroller.clientHeight / LANE_H);
          const before = drawnRows.size;
          draw(first - seen, first + 2 * seen);
          if (drawnRows.size !== before) done();
        };
        scroller.addEventListener("scroll", () => {
          if (!queued) {
            queued = true;
            requestAnimationFrame(follow);
          }
        });
        return;
      }
      let next = FIRST_LANES;
      const step = () => {
        if (!svg.isConnected) return;
        if (next >= total) {
          done();
          return;
        }
        const until = performance.now() + SLICE_MS;
        do {
          draw(next, next + CHUNK_LANES);
          next += CHUNK_LANES;
        } while (next < total && performance.now() < until);
        setTimeout(step, 0);
      };
      setTimeout(step, 0);
    },
  };
}

/** Drag across the time axis to choose a stretch of time; onZoom gets it in ns. */
function brush(svg, { from, to, labelW, plotW, onZoom }) {
  const LABEL_W = labelW;
  const height = AXIS_H;
  const g = s("g", { class: "zoom-brush" });
  const area = s("rect", { x: LABEL_W, y: 0, width: plotW, height: AXIS_H, class: "zoom-area" });
  area.appendChild(s("title", {}, "drag across the time axis to zoom into that stretch of time"));
  const chosen = s("rect", { x: 0, y: 0, width: 0, height, class: "zoom-selection", visibility: "hidden" });
  g.append(area, chosen);
  const svgX = (event) => {
    const point = svg.createSVGPoint();
    point.x = event.clientX;
    point.y = event.clientY;
    const local = point.matrixTransform(svg.getScreenCTM().inverse()).x;
    return Math.min(LABEL_W + plotW, Math.max(LABEL_W, local));
  };
  const timeAt = (px) => from + ((px - LABEL_W) / plotW) * (to - from);
  area.addEventListener("mousedown", (down) => {
    down.preventDefault();
    const start = svgX(down);
    const move = (event) => {
      const now = svgX(event);
      chosen.setAttribute("x", Math.min(start, now));
      chosen.setAttribute("width", Math.abs(now - start));
      chosen.setAttribute("visibility", "visible");
    };
    const up = (event) => {
      window.removeEventListener("mousemove", move);
      window.removeEventListener("mouseup", up);
      chosen.setAttribute("visibility", "hidden");
      const end = svgX(event);
      // A click is not a zoom: at least a few pixels of time must be chosen.
      if (Math.abs(end - start) >= 4) {
        onZoom({ fromNs: timeAt(Math.min(start, end)), toNs: timeAt(Math.max(start, end)) });
      }
    };
    window.addEventListener("mousemove", move);
    window.addEventListener("mouseup", up);
  });
  return g;
}

function defs(LABEL_W, plotW, height) {
  const arrow = (id, cls) =>
    s("marker", { id, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: "userSpaceOnUse", orient: "auto-start-reverse" },
      s("path", { d: "M 0 0 L 10 5 L 0 10 z", class: cls }));
  return s("defs", {},
    // Bars, edges and waits of a zoomed timeline end at the plot's edges, not over the labels.
    s("clipPath", { id: "timeline-plot" },
      s("rect", { x: LABEL_W, y: 0, width: plotW + RIGHT_PAD, height })),
    arrow("arrow", "arrowhead"),
    arrow("arrow-critical", "arrowhead critical"),
    arrow("arrow-stitched", "arrowhead stitched"),
    s("pattern", { id: "hatch-failed", patternUnits: "userSpaceOnUse", width: 8, height: 8, patternTransform: "rotate(45)" },
      s("rect", { width: 8, height: 8, class: "hatch-bg-failed" }),
      s("line", { x1: 0, y1: 0, x2: 0, y2: 8, class: "hatch-line-failed" })),
    s("pattern", { id: "stripes-flight", patternUnits: "userSpaceOnUse", width: 10, height: 10, patternTransform: "rotate(45)" },
      s("rect", { width: 10, height: 10, class: "stripe-bg-flight" }),
      s("line", { x1: 0, y1: 0, x2: 0, y2: 10, class: "stripe-line-flight" })),
    s("linearGradient", { id: "fade-open", x1: "0", x2: "1", y1: "0", y2: "0" },
      s("stop", { offset: "0%", class: "fade-start" }),
      s("stop", { offset: "100%", class: "fade-end" })));
}

function niceStep(rangeNs, target = 8) {
  const raw = rangeNs / target;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 2.5, 5, 10]) if (raw <= m * power) return m * power;
  return 10 * power;
}

function ticks(from, to, t0) {
  const step = niceStep(to - from);
  const out = [];
  for (let t = Math.ceil((from - t0) / step) * step; t0 + t <= to; t += step) out.push(t);
  return out;
}

function grid(ctx, from, to, height) {
  const g = s("g", { class: "grid-lines" });
  for (const t of ticks(from, to, ctx.model.startNs)) {
    const px = ctx.x(ctx.model.startNs + t);
    g.appendChild(s("line", { x1: px, x2: px, y1: 0, y2: height, class: "grid" }));
  }
  const { model } = ctx;
  if (ctx.nowInside && model.nowNs >= from && model.nowNs <= to) {
    const px = ctx.x(model.nowNs);
    g.appendChild(s("line", { x1: px, x2: px, y1: 0, y2: height, class: "now-line" }));
  }
  return g;
}

function axis(ctx, from, to, width) {
  const { model, x, labelW, plotW, nowInside } = ctx;
  const t0 = model.startNs;
  const svg = s("svg", { class: "timeline-axis", width, height: AXIS_H, viewBox: `0 0 ${width} ${AXIS_H}`, role: "group", "aria-label": "time axis: drag across it to zoom" });
  const g = s("g", { class: "axis" });
  svg.appendChild(g);
  g.appendChild(s("rect", { x: 0, y: 0, width, height: AXIS_H, class: "axis-bg" }));
  g.appendChild(s("text", { x: 12, y: 22, class: "axis-title" }, labelW >= 260 ? "step · service · event taken" : "step · service"));
  // Ticks count from the workflow's start, zoomed or not, so a time reads the same;
  // a tick label that would run into the one before it is left out.
  let lastEnd = -Infinity;
  for (const t of ticks(from, to, t0)) {
    const px = x(t0 + t);
    g.appendChild(s("line", { x1: px, x2: px, y1: AXIS_H - 6, y2: AXIS_H, class: "grid" }));
    const text = t === 0 ? "0" : "+" + duration(t);
    const half = (text.length * 6.6) / 2;
    if (px - half > lastEnd + 6 && px - half >= labelW - 4) {
      g.appendChild(s("text", { x: px, y: 20, class: "tick", "text-anchor": "middle" }, text));
      lastEnd = px + half;
    }
  }
  if (nowInside && model.nowNs >= from && model.nowNs <= to) {
    const px = x(model.nowNs);
    g.appendChild(s("line", { x1: px, x2: px, y1: AXIS_H - 10, y2: AXIS_H, class: "now-line" }));
    g.appendChild(s("text", { x: px + 4, y: AXIS_H - 2, class: "now-label" }, "now"));
  } else if (!nowInside) {
    const px = labelW + plotW + RIGHT_PAD - 6;
    g.appendChild(s("text", { x: px, y: 14, class: "now-label", "text-anchor": "end" }, "now"));
    g.appendChild(s("text", { x: px, y: 28, class: "now-label", "text-anchor": "end" }, `+${duration(model.nowNs - model.endNs)}`));
  }
  return svg;
}

function drawLane(ctx, lane, width) {
  const y = ctx.laneY(lane);
  const match = ctx.matches.has(lane.index);
  const g = s("g", { class: `lane lane-${lane.type}${lane.critical ? " on-critical" : ""}${match ? " match" : ""}`, dataset: { lane: lane.index } });
  g.appendChild(s("rect", { x: 0, y, width, height: LANE_H, class: ctx.rows.get(lane.index) % 2 ? "lane-bg odd" : "lane-bg" }));
  if (lane.critical) g.appendChild(s("rect", { x: 0, y, width: 5, height: LANE_H, class: "critical-strip" }));
  drawLabel(ctx, g, lane, y);
  // Labels above the bars (queue wait, back-off) take room left to right; one that
  // would overlap another is left to the hover title.
  ctx.taken = [];
  const plot = s("g", { "clip-path": "url(#timeline-plot)" });
  g.appendChild(plot);
  if (lane.type === "action") drawAction(ctx, plot, lane, y);
  else drawBranch(ctx, plot, lane, y);
  return g;
}

function drawLabel(ctx, g, lane, y) {
  const LABEL_W = ctx.labelW;
  const indent = 14 + Math.min(lane.depth, ctx.labelW >= 260 ? 6 : 3) * 12 + (ctx.folds ? 8 : 0);
  const chars = Math.floor((LABEL_W - indent - 12) / 7.6);
  const hidden = ctx.folds ? ctx.folds.get(lane.index) || 0 : 0;
  if (hidden) {
    const closed = ctx.collapsed.has(lane.id);
    const fold = s("g", { class: "fold", dataset: { fold: lane.id }, role: "button", tabindex: 0,
      "aria-expanded": String(!closed), "aria-label": `${closed ? "expand" : "collapse"} ${lane.title}: ${hidden} lanes under it` },
      s("rect", { x: indent - 16, y: y + 8, width: 16, height: 16 }),
      s("text", { x: indent - 14, y: y + 20 }, closed ? "▸" : "▾"),
      s("title", {}, `${closed ? "show" : "hide"} the ${hidden} lanes under ${lane.title}`));
    g.appendChild(fold);
  }
  let icon = "▶";
  let state = "action";
  let sub = lane.service || "";
  if (lane.type === "branch") {
    state = lane.node.state;
    icon = STATE_ICON[state] || "•";
    const attempts = lane.branch ? lane.branch.attempts.length : 0;
    sub = [lane.service, lane.event.event_name || destinationLabel(lane.event.destination) || shortId(lane.event.event_id),
      attempts > 1 ? `${attempts} attempts` : null].filter(Boolean).join(" · ");
  }
  const title = s("text", { x: indent, y: y + 20, class: "lane-title" },
    s("tspan", { class: `state-icon state-${state}` }, icon + " "),
    cutMiddle(lane.title, chars));
  title.appendChild(s("title", {}, `${lane.title}\n${sub}`));
  g.appendChild(title);
  const subChars = Math.floor((LABEL_W - indent - 22) / 6.0);
  g.appendChild(s("text", { x: indent + 16, y: y + 37, class: "lane-sub" }, cut(sub, subChars)));
  if (ctx.collapsed.has(lane.id) && hidden) {
    g.appendChild(s("text", { x: LABEL_W - 8, y: y + 37, class: "lane-sub", "text-anchor": "end" }, `+${hidden}`));
  }
}

/** Room for a label from x0 to x1 above the bars of the lane being drawn: taken if free. */
function claim(ctx, x0, x1) {
  if (x0 < ctx.labelW - 2) return false;
  for (const [a, b] of ctx.taken) if (x0 < b + 4 && x1 > a - 4) return false;
  ctx.taken.push([x0, x1]);
  return true;
}

/** The first of the candidate labels that fits in `room` pixels, or null. */
function fitting(candidates, room, charW) {
  for (const text of [].concat(candidates || [])) {
    if (text && text.length * charW <= room) return text;
  }
  return null;
}

function bar(ctx, { x0, x1, y, cls, span, tip, label, critical }) {
  const w = Math.max(3, x1 - x0);
  const key = span ? spanKey(span) : null;
  const g = s("g", {
    class: `bar ${cls}${critical ? " critical" : ""}${key && key === ctx.selected ? " selected" : ""}`,
    dataset: key ? { span: key } : {},
    tabindex: key ? 0 : null,
    role: key ? "button" : null,
  });
  g.appendChild(s("rect", { x: x0, y: y + BAR_Y, width: w, height: BAR_H, rx: 3 }));
  const fits = fitting(label, w - 10, 6.9);
  if (fits) g.appendChild(s("text", { x: x0 + 6, y: y + BAR_Y + 14, class: "bar-label" }, fits));
  g.appendChild(s("title", {}, tip));
  return g;
}

function drawAction(ctx, g, lane, y) {
  const root = lane.root;
  const x0 = ctx.x(root.start_ns);
  const x1 = ctx.x(root.start_ns + root.duration_ns);
  g.appendChild(bar(ctx, {
    x0, x1, y, cls: "action", span: root.span, critical: lane.critical,
    tip: `${root.span.name} (${root.span.service})\n${duration(root.duration_ns)} · the user action`,
    label: [`${root.span.name} ${duration(root.duration_ns)}`],
  }));
  // Zoomed past the action's end, its duration would hang cut off at the plot's edge.
  if (x1 >= ctx.labelW) {
    const rest = s("text", { x: Math.max(x1, x0 + 3) + 6, y: y + BAR_Y + 14, class: "bar-after" }, duration(root.duration_ns));
    g.appendChild(rest);
  }
}

function drawBranch(ctx, g, lane, y) {
  const { x } = ctx;
  const attempts = lane.branch ? lane.branch.attempts : [];
  const published = lane.event.published_ns;
  const first = attempts.length ? attempts[0].start_ns : null;
  if (published !== null && first !== null && first > published) {
    const wait = first - published;
    const lag = lane.lagging;
    const x0 = x(published);
    const x1 = x(first);
    const band = s("g", { class: `queue${lag ? " lagging" : ""}` });
    band.appendChild(s("rect", { x: x0, y: y + BAR_Y + 4, width: Math.max(1, x1 - x0), height: BAR_H - 8 }));
    const text = lag ? `lagging · waited ${duration(wait)}` : `waited ${duration(wait)}`;
    const textW = text.length * 6.4;
    if (x1 - x0 > textW + 8 && claim(ctx, x0 + 5, x0 + 5 + textW)) {
      band.appendChild(s("text", { x: x0 + 5, y: y + BAR_Y - 1, class: "queue-label" }, text));
    } else if (lag && claim(ctx, x1 + 4, x1 + 4 + textW)) {
      band.appendChild(s("text", { x: x1 + 4, y: y + BAR_Y - 1, class: "queue-label" }, text));
    }
    band.appendChild(s("title", {}, `queue wait ${duration(wait)} (published → first attempt started)` +
      (lag ? `\nlagging: typical ${duration(lag.baseline_ns)}${lag.ratio ? `, ${lag.ratio}×` : ""}` : "")));
    g.appendChild(band);
  }
  // Back-offs first, then the bars over them: a bar drawn wider than its time (3 px at
  // least) must not sit under the next back-off's line.
  attempts.forEach((attempt, i) => {
    if (i > 0 && attempts[i - 1].end_ns !== null && attempt.start_ns > attempts[i - 1].end_ns) {
      const x0 = x(attempts[i - 1].end_ns);
      const x1 = x(attempt.start_ns);
      const back = s("g", { class: "backoff" });
      back.appendChild(s("line", { x1: x0, x2: x1, y1: y + BAR_Y + BAR_H / 2, y2: y + BAR_Y + BAR_H / 2 }));
      const gap = attempt.start_ns - attempts[i - 1].end_ns;
      const text = fitting([`back-off ${duration(gap)}`, duration(gap)], x1 - x0 + 16, 6.3);
      const half = text ? (text.length * 6.3) / 2 : 0;
      if (text && claim(ctx, (x0 + x1) / 2 - half, (x0 + x1) / 2 + half)) {
        back.appendChild(s("text", { x: (x0 + x1) / 2, y: y + BAR_Y - 1, class: "backoff-label", "text-anchor": "middle" }, text));
      }
      back.appendChild(s("title", {}, `back-off ${duration(gap)} before attempt ${attempt.number}`));
      g.appendChild(back);
    }
  });
  attempts.forEach((attempt) => {
    g.appendChild(attemptBar(ctx, lane, attempt, y, attempts.length));
    if (ctx.inner && attempt.end_ns !== null) drawInner(ctx, g, attempt, y);
  });
  if (!attempts.length) {
    const state = lane.node.state;
    const x0 = published !== null ? x(published) : ctx.x(ctx.model.startNs);
    const p = lane.pending;
    const text = state === "lost" ? "lost: never done" : "not started";
    const gEl = s("g", { class: `bar open ${state}` });
    gEl.appendChild(s("rect", { x: x0, y: y + BAR_Y, width: Math.max(6, ctx.openEnd - x0), height: BAR_H, rx: 3 }));
    gEl.appendChild(s("text", { x: x0 + 6, y: y + BAR_Y + 14, class: "bar-label dark" }, text));
    gEl.appendChild(s("title", {}, `${lane.title}: ${text}` + (p ? `\nexpected by ${p.expected_by}; reason ${p.reason.replaceAll("_", " ")}` : "")));
    g.appendChild(gEl);
  }
}

function attemptBar(ctx, lane, attempt, y, count) {
  const { x } = ctx;
  const x0 = x(attempt.start_ns);
  const open = attempt.end_ns === null;
  const x1 = open ? ctx.openEnd : x(attempt.end_ns);
  const unknown = attempt.outcome === "unknown";
  const failed = attempt.outcome !== "ok" && attempt.outcome !== "in_flight" && !unknown;
  const cls = open ? "in-flight" : failed ? "failed" : unknown ? "unknown" : "ok";
  const number = count > 1 ? `#${attempt.number} ` : "";
  let label;
  let tip;
  if (open) {
    const running = ctx.model.nowNs - attempt.start_ns;
    label = [`${number}in flight ${duration(running)}`, "in flight"];
    tip = `${lane.title} attempt ${attempt.number}: in flight for ${duration(running)} (started, not finished)`;
  } else if (unknown) {
    label = [`${number}? ${duration(attempt.duration_ns)}`, `${number}?`, "?"];
    tip = `${lane.title} attempt ${attempt.number}: delivered; outcome unknown (the span ends before the handler runs)`;
  } else if (failed) {
    const error = errorType(attempt.error);
    label = [`${number}✗ ${error} ${duration(attempt.duration_ns)}`, `${number}✗ ${error}`, `${number}✗`, "✗"];
    tip = `${lane.title} attempt ${attempt.number} failed (${attempt.outcome.replace("_", " ")}) after ${duration(attempt.duration_ns)}\n${attempt.error || "no error recorded"}`;
  } else {
    label = [`${number}✓ ${duration(attempt.duration_ns)}`, `${number}✓`, "✓"];
    tip = `${lane.title} attempt ${attempt.number} succeeded in ${duration(attempt.duration_ns)}`;
  }
  const critical = ctx.model.critical.has(spanKey(attempt.span));
  const g = bar(ctx, { x0, x1, y, cls, span: attempt.span, tip: tip + "\nclick for the span", label, critical });
  if (open) {
    g.appendChild(s("path", { d: `M ${x1} ${y + BAR_Y - 2} l 8 ${BAR_H / 2 + 2} l -8 ${BAR_H / 2 + 2}`, class: "open-end" }));
  }
  return g;
}

function drawInner(ctx, g, attempt, y) {
  const span = ctx.model.byKey.get(spanKey(attempt.span));
  if (!span || span.start_marker) return;
  for (const inner of innerSpans(ctx.model, span, 6)) {
    const x0 = ctx.x(inner.start_ns);
    const x1 = ctx.x(inner.end_ns);
    const cls = inner.status === "error" ? "inner failed" : "inner";
    const el = s("g", { class: cls, dataset: { span: spanKey(inner) } },
      s("rect", { x: x0, y: y + BAR_Y + BAR_H + 3, width: Math.max(2, x1 - x0), height: 5, rx: 1 }),
      s("title", {}, `${inner.name} (${inner.service}) ${duration(inner.duration_ns)}` +
        (inner.identity.error ? `\n${inner.identity.error}` : "")));
    g.appendChild(el);
  }
}

function drawEdge(ctx, edge) {
  const { x, laneY } = ctx;
  if (edge.startNs === null) return null;
  const child = edge.to;
  const yTo = laneY(child) + BAR_Y + BAR_H / 2;
  const xFrom = x(edge.startNs);
  const xTo = edge.endNs !== null ? x(edge.endNs) : xFrom + 10;
  const cls = `edge${edge.stitched ? " stitched" : ""}${edge.critical ? " critical" : ""}`;
  const marker = edge.stitched ? "arrow-stitched" : edge.critical ? "arrow-critical" : "arrow";
  const g = s("g", { class: cls });
  let d;
  if (edge.from && ctx.rows.has(edge.from.index)) {
    const yFrom = laneY(edge.from) + BAR_Y + BAR_H;
    d = `M ${xFrom} ${yFrom} L ${xFrom} ${yTo} L ${Math.max(xTo - 1, xFrom + 4)} ${yTo}`;
  } else {
    d = `M ${xFrom - 18} ${yTo} L ${Math.max(xTo - 1, xFrom + 4)} ${yTo}`;
  }
  g.appendChild(s("path", { d, "marker-end": `url(#${marker})` }));
  const event = edge.event;
  const what = `${event.event_name || "event"} ${shortId(event.event_id)} delivered to ${child.title}`;
  if (edge.stitched) {
    const trace = consumerTrace(child);
    const label = s("a", { href: trace ? link("trace", trace, {}) : "#", class: "break-link", dataset: { trace: trace || "" } },
      s("text", { x: xFrom + 6, y: laneY(child) + LANE_H - 3, class: "break-label" },
        `⚡ propagation break: trace context lost${trace ? ` · open trace ${shortId(trace)}` : ""}`),
      s("title", {}, `${what}\nstitched by event ID: the consumer started a new trace${trace ? ` (${trace})` : ""}`));
    g.appendChild(label);
  } else {
    g.appendChild(s("title", {}, what));
  }
  return g;
}

function consumerTrace(lane) {
  const attempts = lane.branch ? lane.branch.attempts : [];
  return attempts.length ? attempts[0].span.trace_id : null;
}

export const TIMELINE_LEGEND = [
  ["match", "matches the find box"],
  ["ok", "attempt succeeded"],
  ["failed", "attempt failed (hover: error)"],
  ["unknown", "delivered, outcome unknown"],
  ["in-flight", "in flight, open to now"],
  ["open", "expected, not started"],
  ["queue", "queue wait"],
  ["lagging", "lagging consumer's wait"],
  ["backoff", "retry back-off"],
  ["critical", "critical path"],
  ["stitched", "propagation break (stitched)"],
];
