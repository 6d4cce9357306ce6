// The workflow as the seed's flowchart: the user action, each business event, each
// consumer step (fan-out: one event, many steps; follow-up events under the step
// that published them). A layered tree layout, drawn top-down while it fits, left to
// right when the fan-out is wide.

import { h, s, cutMiddle, duration } from "./dom.js";
import { consumerLabel, destinationLabel } from "./labels.js";
import { spanKey } from "./model.js";

const NODE_W = 212;
const NODE_H = 54;
const GAP = 26;
const LEVEL = 96;
const STATE_TEXT = {
  succeeded: "done",
  failed: "failing",
  dead_lettered: "dead-lettered",
  in_flight: "in flight",
  unknown: "outcome unknown",
  pending: "not started",
  lost: "lost",
};

function buildTree(model) {
  const nodes = [];
  const edges = [];
  const lanes = new Map(model.lanes.filter((l) => l.type === "branch").map((l) => [l.node, l]));
  const add = (node, parent, edge) => {
    node.id = nodes.length;
    node.children = [];
    nodes.push(node);
    if (parent) {
      parent.children.push(node);
      edges.push({ from: parent, to: node, ...edge });
    }
    return node;
  };
  const visitEvent = (event, parent, depth) => {
    const ev = add({ kind: "event", depth, event, critical: event.on_critical_path }, parent, { critical: event.on_critical_path && (!parent || parent.critical) });
    for (const branch of event.branches) {
      const lane = lanes.get(branch) || null;
      const node = add({ kind: "branch", depth: depth + 1, branch, lane, critical: branch.on_critical_path }, ev,
        { stitched: branch.stitched, critical: branch.on_critical_path && event.on_critical_path });
      for (const next of branch.events) visitEvent(next, node, depth + 2);
    }
  };
  const w = model.workflow;
  for (const root of w.tree.roots) {
    const node = add({ kind: "action", depth: 0, root, critical: root.on_critical_path }, null, {});
    for (const event of root.events) visitEvent(event, node, 1);
  }
  for (const event of w.tree.orphans) visitEvent(event, null, 1);
  return { nodes, edges };
}

export function renderGraph(model, { selected, view = {} }) {
  const { nodes, edges } = buildTree(model);
  const roots = new Set(nodes);
  for (const e of edges) roots.delete(e.to);
  let slot = 0;
  const place = (node) => {
    if (!node.children.length) node.slot = slot++;
    else {
      node.children.forEach(place);
      node.slot = (node.children[0].slot + node.children[node.children.length - 1].slot) / 2;
    }
  };
  for (const root of roots) place(root);
  const depth = Math.max(0, ...nodes.map((n) => n.depth)) + 1;
  const across = slot > 7;
  const pos = (node) => across
    ? { x: 20 + node.depth * (NODE_W + 70), y: 20 + node.slot * (NODE_H + 18) }
    : { x: 20 + node.slot * (NODE_W + GAP), y: 20 + node.depth * LEVEL };
  const width = across ? 40 + depth * (NODE_W + 70) : 40 + Math.max(1, slot) * (NODE_W + GAP);
  const height = across ? 40 + Math.max(1, slot) * (NODE_H + 18) : 40 + depth * LEVEL;
  const svg = s("svg", { class: "graph", width, height, viewBox: `0 0 ${width} ${height}`, role: "group", "aria-label": "workflow graph" });
  svg.appendChild(s("defs", {},
    s("marker", { id: "g-arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" }, s("path", { d: "M0 0 L10 5 L0 10 z", class: "arrowhead" })),
    s("marker", { id: "g-arrow-critical", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" }, s("path", { d: "M0 0 L10 5 L0 10 z", class: "arrowhead critical" })),
    s("marker", { id: "g-arrow-stitched", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" }, s("path", { d: "M0 0 L10 5 L0 10 z", class: "arrowhead stitched" }))));
  const edgeLayer = s("g", { class: "edges" });
  for (const edge of edges) {
    const a = pos(edge.from);
    const b = pos(edge.to);
    const [x1, y1, x2, y2] = across
      ? [a.x + NODE_W, a.y + NODE_H / 2, b.x - 2, b.y + NODE_H / 2]
      : [a.x + NODE_W / 2, a.y + NODE_H, b.x + NODE_W / 2, b.y - 2];
    const d = across
      ? `M ${x1} ${y1} C ${x1 + 35} ${y1}, ${x2 - 35} ${y2}, ${x2} ${y2}`
      : `M ${x1} ${y1} C ${x1} ${y1 + 30}, ${x2} ${y2 - 30}, ${x2} ${y2}`;
    const cls = `edge${edge.stitched ? " stitched" : ""}${edge.critical ? " critical" : ""}`;
    const marker = edge.stitched ? "g-arrow-stitched" : edge.critical ? "g-arrow-critical" : "g-arrow";
    const g = s("g", { class: cls }, s("path", { d, "marker-end": `url(#${marker})` }));
    if (edge.stitched) {
      // Left to right the gap between levels holds only the sign; the words are its title.
      g.appendChild(s("text", { x: (x1 + x2) / 2 + (across ? -6 : 4), y: (y1 + y2) / 2 - (across ? 4 : 0), class: "break-label" },
        across ? "⚡" : "⚡ propagation break", s("title", {}, "propagation break: the consumer started a new trace (stitched by event ID)")));
    }
    edgeLayer.appendChild(g);
  }
  svg.appendChild(edgeLayer);
  const nodeLayer = s("g", { class: "nodes" });
  for (const node of nodes) nodeLayer.appendChild(drawNode(model, node, pos(node), selected));
  svg.appendChild(nodeLayer);
  return panZoom(svg, width, height, view);
}

/**
 * The graph in a viewport that pans (drag, arrow keys) and zooms (wheel, + and -,
 * the buttons); "Fit" shows all of it. The address does not keep it: a graph is
 * small enough to find one's way back.
 */
function panZoom(svg, width, height, state) {
  const viewport = h("div", { class: "graph-viewport", tabindex: 0, role: "region", "aria-label": "workflow graph: drag or arrow keys to pan, wheel or + and - to zoom" });
  // `state` outlives this drawing: a redraw (new spans arrived) keeps the pan and zoom.
  const fresh = state.k === undefined;
  if (fresh) Object.assign(state, { x: 0, y: 0, k: 1 });
  const size = () => ({ w: Math.max(200, viewport.clientWidth || 900), h: Math.max(200, Math.min(height + 20, Math.round(window.innerHeight * 0.7))) });
  const apply = () => {
    const { w, h: vh } = size();
    svg.setAttribute("width", w);
    svg.setAttribute("height", vh);
    svg.setAttribute("viewBox", `${state.x} ${state.y} ${w / state.k} ${vh / state.k}`);
    svg.dataset.zoom = state.k.toFixed(3);
    level.textContent = `${Math.round(state.k * 100)} %`;
  };
  const zoomAt = (factor, cx, cy) => {
    const { w, h: vh } = size();
    const k = Math.min(4, Math.max(0.05, state.k * factor));
    const px = cx ?? w / 2;
    const py = cy ?? vh / 2;
    state.x += px / state.k - px / k;
    state.y += py / state.k - py / k;
    state.k = k;
    apply();
  };
  const fit = () => {
    const { w, h: vh } = size();
    state.k = Math.min(1, w / width, vh / height);
    state.x = 0;
    state.y = 0;
    apply();
  };
  const level = h("span", { class: "muted zoom-level" });
  const tools = h("div", { class: "graph-tools" },
    h("button", { type: "button", class: "secondary small-button", "aria-label": "zoom in", onclick: () => zoomAt(1.25) }, "+"),
    h("button", { type: "button", class: "secondary small-button", "aria-label": "zoom out", onclick: () => zoomAt(0.8) }, "−"),
    h("button", { type: "button", class: "secondary small-button", onclick: fit }, "Fit"),
    h("button", { type: "button", class: "secondary small-button", onclick: () => { state.k = 1; state.x = 0; state.y = 0; apply(); } }, "100 %"),
    level, h("span", { class: "muted" }, " · drag to pan, wheel to zoom"));
  viewport.append(svg);
  viewport.addEventListener("wheel", (e) => {
    e.preventDefault();
    const box = viewport.getBoundingClientRect();
    zoomAt(e.deltaY < 0 ? 1.15 : 1 / 1.15, e.clientX - box.left, e.clientY - box.top);
  }, { passive: false });
  let drag = null;
  viewport.addEventListener("pointerdown", (e) => {
    if (e.target.closest("[data-span]")) return; // a click on a node opens it
    drag = { x: e.clientX, y: e.clientY, sx: state.x, sy: state.y };
    viewport.classList.add("dragging");
  });
  window.addEventListener("pointermove", (e) => {
    if (!drag || !viewport.isConnected) return;
    state.x = drag.sx - (e.clientX - drag.x) / state.k;
    state.y = drag.sy - (e.clientY - drag.y) / state.k;
    apply();
  });
  window.addEventListener("pointerup", () => { drag = null; viewport.classList.remove("dragging"); });
  viewport.addEventListener("keydown", (e) => {
    if (e.target !== viewport) return;
    const step = 60 / state.k;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (moves[e.key]) { state.x += moves[e.key][0]; state.y += moves[e.key][1]; apply(); e.preventDefault(); }
    else if (e.key === "+" || e.key === "=") { zoomAt(1.25); e.preventDefault(); }
    else if (e.key === "-") { zoomAt(0.8); e.preventDefault(); }
    else if (e.key === "0") { fit(); e.preventDefault(); }
  });
  const wrap = h("div", { class: "graph-wrap" }, tools, viewport);
  // Sized once it is on the page: fit the width of a wide graph, keep a small one at 100 %.
  requestAnimationFrame(() => {
    if (fresh) state.k = Math.min(1, size().w / width);
    apply();
  });
  apply();
  /** Centre the view on a node (the selected one). */
  wrap.centre = (el) => {
    const box = el.getBBox();
    const { w, h: vh } = size();
    state.x = box.x + box.width / 2 - w / state.k / 2;
    state.y = box.y + box.height / 2 - vh / state.k / 2;
    apply();
  };
  return wrap;
}

function drawNode(model, node, { x, y }, selected) {
  let title;
  let sub;
  let cls;
  let span = null;
  let tip;
  if (node.kind === "action") {
    title = node.root.span.name;
    sub = `${node.root.span.service} · ${duration(node.root.duration_ns)}`;
    cls = "action";
    span = node.root.span;
    tip = `user action ${title}`;
  } else if (node.kind === "event") {
    // The arrows show who took it: an unnamed event is named by where it went.
    const where = destinationLabel(node.event.destination);
    title = node.event.event_name || where || "message";
    sub = node.event.event_name ? (where ? `event → ${where}` : "event") : "unnamed event";
    cls = "event";
    span = node.event.producer;
    tip = `${node.event.label || title} (${node.event.event_id}) published${node.event.producer ? ` by ${node.event.producer.service}` : ""}`;
  } else {
    const b = node.branch;
    const attempts = b.attempt_count;
    title = node.lane ? node.lane.title : b.step || b.consumer;
    sub = [b.service, STATE_TEXT[b.state] || b.state, attempts > 1 ? `${attempts} attempts` : null, b.lagging ? "lagging" : null].filter(Boolean).join(" · ");
    cls = `branch state-${b.state}${b.lagging ? " lagging" : ""}`;
    const attemptsOf = node.lane && node.lane.branch ? node.lane.branch.attempts : [];
    span = attemptsOf.length ? attemptsOf[attemptsOf.length - 1].span : null;
    tip = `${title} (${consumerLabel(b.consumer)}) took ${b.event_id}: ${STATE_TEXT[b.state] || b.state}` +
      (b.queue_wait_ns !== null ? `\nwaited ${duration(b.queue_wait_ns)} in the queue` : "");
  }
  const key = span ? spanKey(span) : null;
  const g = s("g", {
    class: `node ${cls}${node.critical ? " critical" : ""}${key && key === selected ? " selected" : ""}`,
    dataset: key ? { span: key } : {},
    tabindex: key ? 0 : null,
    role: key ? "button" : null,
  });
  const shape = node.kind === "event"
    ? s("rect", { x, y: y + 6, width: NODE_W, height: NODE_H - 12, rx: (NODE_H - 12) / 2 })
    : s("rect", { x, y, width: NODE_W, height: NODE_H, rx: 6 });
  g.append(shape,
    s("text", { x: x + NODE_W / 2, y: y + (node.kind === "event" ? 24 : 22), class: "node-title", "text-anchor": "middle" }, cutMiddle(title, 24)),
    s("text", { x: x + NODE_W / 2, y: y + (node.kind === "event" ? 39 : 40), class: "node-sub", "text-anchor": "middle" }, cutMiddle(sub, 32)),
    s("title", {}, tip));
  return g;
}

export const GRAPH_LEGEND = [
  ["node-action", "user action"],
  ["node-event", "business event"],
  ["node-ok", "step done"],
  ["node-bad", "failing / lost"],
  ["node-open", "in flight / not started"],
  ["node-lagging", "lagging consumer"],
  ["critical", "critical path"],
  ["stitched", "propagation break"],
];
