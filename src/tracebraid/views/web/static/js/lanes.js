// Which lanes of the timeline are shown: filters (service, step, status), collapsed
// branches (a lane's descendants hidden under it), and the find box's matches.
// Pure: no DOM here.

export const STATUS_FILTERS = [
  ["", "any status"],
  ["failed", "failed"],
  ["retried", "retried"],
  ["in_flight", "in flight / not started"],
  ["lagging", "lagging"],
];

/** A lane's identity that survives a reload of the view (collapse state, live updates). */
export function laneId(lane) {
  return lane.type === "action" ? `a:${lane.span.trace_id}:${lane.span.span_id}` : `b:${lane.node.event_id}\u0000${lane.node.consumer}`;
}

export function hasStatus(lane, status) {
  if (!status) return true;
  if (lane.type !== "branch") return false;
  const state = lane.node.state;
  if (status === "failed") return state === "failed" || state === "dead_lettered" || state === "lost";
  if (status === "retried") return Boolean(lane.branch && lane.branch.retries > 0);
  if (status === "in_flight") return state === "in_flight" || state === "pending";
  if (status === "lagging") return Boolean(lane.lagging);
  return true;
}

/** The lanes to draw, in causal order. */
export function visibleLanes(model, { service = "", step = "", status = "" } = {}, collapsed = new Set()) {
  const filtered = Boolean(service || step || status);
  const out = [];
  const hidden = new Set();
  for (const lane of model.lanes) {
    if (filtered) {
      if (service && lane.service !== service) continue;
      if (step && lane.title !== step) continue;
      if (!hasStatus(lane, status)) continue;
      out.push(lane);
      continue;
    }
    if (lane.parent && (hidden.has(lane.parent.index) || collapsed.has(laneId(lane.parent)))) {
      hidden.add(lane.index);
      continue;
    }
    out.push(lane);
  }
  return out;
}

/** How many lanes descend from each lane (what collapsing it hides). */
export function descendants(model) {
  const counts = new Map();
  for (let i = model.lanes.length - 1; i >= 0; i--) {
    const lane = model.lanes[i];
    if (lane.parent) counts.set(lane.parent.index, (counts.get(lane.parent.index) || 0) + 1 + (counts.get(lane.index) || 0));
  }
  return counts;
}

/** Lanes whose title, service, event or consumer contain `text` (case-insensitive). */
export function findLanes(lanes, text) {
  const needle = text.trim().toLowerCase();
  if (!needle) return new Set();
  const found = new Set();
  for (const lane of lanes) {
    const hay = [lane.title, lane.service, lane.event ? lane.event.event_name : null, lane.event ? lane.event.event_id : null,
      lane.node ? lane.node.consumer : null].filter(Boolean).join("\u0000").toLowerCase();
    if (hay.includes(needle)) found.add(lane.index);
  }
  return found;
}

/** The choices for the service and step filters. */
export function laneFacets(model) {
  const services = new Set();
  const steps = new Set();
  for (const lane of model.lanes) {
    if (lane.service) services.add(lane.service);
    if (lane.type === "branch") steps.add(lane.title);
  }
  return { services: [...services].sort(), steps: [...steps].sort() };
}
