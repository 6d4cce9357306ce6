// The workflow page's model, built once from a tracebraid.view/v1 document: lanes in
// causal order (a user action, then each branch under the event that started it),
// delivery edges between lanes, and indexes to find a span by trace and span ID.
// Pure: no DOM here.

import { duration as fmt } from "./dom.js";
import { disambiguate, eventLabel, stepLabel } from "./labels.js";

export const spanKey = (ref) => `${ref.trace_id}:${ref.span_id}`;
const branchKey = (eventId, consumer) => `${eventId}\u0000${consumer}`;

export function buildModel(view) {
  const w = view.workflow;
  const spans = view.spans.spans;
  const byKey = new Map();
  const bySpanId = new Map();
  const children = new Map();
  for (const span of spans) {
    const key = spanKey(span);
    byKey.set(key, span);
    if (!bySpanId.has(span.span_id)) bySpanId.set(span.span_id, span);
  }
  for (const span of spans) {
    if (span.start_marker) {
      // An in-flight attempt has no span yet: its marker stands in for it.
      const announced = `${span.trace_id}:${span.marker_for || span.parent_span_id}`;
      if (!byKey.has(announced)) byKey.set(announced, span);
      continue;
    }
    if (span.parent_span_id) {
      const parent = `${span.trace_id}:${span.parent_span_id}`;
      if (!children.has(parent)) children.set(parent, []);
      children.get(parent).push(span);
    }
  }
  const branches = new Map(w.branches.map((b) => [branchKey(b.event_id, b.consumer), b]));
  const latencies = new Map(view.latency.branches.map((b) => [branchKey(b.event_id, b.consumer), b]));
  const pending = new Map(w.pending.map((p) => [branchKey(p.event_id, p.consumer), p]));
  const lagging = new Map(w.lagging.map((l) => [branchKey(l.event_id, l.consumer), l]));
  const critical = new Set(w.critical_path.steps.map((step) => spanKey(step.span)));

  const lanes = [];
  const edges = [];
  let latest = w.summary.end_ns;

  function visitEvent(event, parentLane, depth) {
    if (event.published_ns !== null) latest = Math.max(latest, event.published_ns);
    const steps = event.branches.map((n) => stepLabel(n.step, event.destination));
    event.label = eventLabel(event.event_name, event.destination, steps);
    // Two consumers running the same step on one event would read the same: name the consumer.
    const titles = disambiguate(event.branches.map((n, i) => ({ title: steps[i] || n.consumer, consumer: n.consumer, service: n.service, group: event.event_id })));
    for (const [at, node] of event.branches.entries()) {
      const key = branchKey(node.event_id, node.consumer);
      const branch = branches.get(key) || null;
      const lane = {
        index: lanes.length,
        type: "branch",
        depth,
        title: titles[at],
        service: node.service,
        node,
        event,
        branch,
        pending: pending.get(key) || null,
        latency: latencies.get(key) || null,
        lagging: lagging.get(key) || null,
        critical: node.on_critical_path,
        parent: parentLane,
      };
      lanes.push(lane);
      const attempts = branch ? branch.attempts : [];
      for (const attempt of attempts) {
        latest = Math.max(latest, attempt.start_ns, attempt.end_ns || 0);
      }
      edges.push({
        from: parentLane,
        to: lane,
        event,
        startNs: event.published_ns,
        endNs: attempts.length ? attempts[0].start_ns : null,
        stitched: node.stitched,
        critical: node.on_critical_path && event.on_critical_path,
      });
      for (const next of node.events) visitEvent(next, lane, depth + 1);
    }
  }

  for (const root of w.tree.roots) {
    const lane = {
      index: lanes.length,
      type: "action",
      depth: 0,
      title: root.span.name,
      service: root.span.service,
      root,
      span: root.span,
      critical: root.on_critical_path,
      parent: null,
    };
    lanes.push(lane);
    for (const event of root.events) visitEvent(event, lane, 1);
  }
  for (const event of w.tree.orphans) visitEvent(event, null, 1);

  const breaks = w.branches.filter((b) => b.stitched);
  return {
    view,
    workflow: w,
    key: view.key,
    scope: view.scope,
    spans,
    byKey,
    bySpanId,
    children,
    lanes,
    edges,
    critical,
    breaks,
    details: new Map(),
    startNs: w.summary.start_ns,
    endNs: Math.max(latest, w.summary.start_ns + 1),
    nowNs: w.summary.now_ns,
  };
}

/** The span a reference or "TRACE:SPAN" / bare span ID names, or null. */
export function findSpan(model, ref) {
  if (!ref) return null;
  if (typeof ref !== "string") return model.byKey.get(spanKey(ref)) || null;
  if (ref.includes(":")) return model.byKey.get(ref) || null;
  return model.bySpanId.get(ref) || null;
}

/** Descendant spans of a span that are not themselves attempts or other branches' work. */
export function innerSpans(model, span, limit = 12) {
  const found = [];
  const queue = [...(model.children.get(spanKey(span)) || [])];
  while (queue.length && found.length < limit) {
    const next = queue.shift();
    if (next.identity.role === "consumer") continue;
    found.push(next);
    queue.push(...(model.children.get(spanKey(next)) || []));
  }
  return found;
}

/** What an operator should look at first, in business terms, most urgent first. */
export function attention(model) {
  const items = [];
  const w = model.workflow;
  for (const lane of model.lanes) {
    if (lane.type !== "branch") continue;
    const p = lane.pending;
    if (p && p.state === "lost") {
      items.push({ level: "bad", kind: "is lost", lane, text: `${lane.title} is lost: expected for ${p.event_name || "its event"}, not done ${p.overdue_ns ? "and overdue" : ""}`.trim() });
    } else if (lane.node.state === "in_flight") {
      const started = lane.branch && lane.branch.attempts.length
        ? lane.branch.attempts[lane.branch.attempts.length - 1].start_ns : null;
      items.push({ level: "warn", kind: "still in flight", lane, text: `${lane.title} is still in flight`, since: started });
    } else if (lane.node.state === "pending") {
      items.push({ level: "warn", kind: "not started", lane, text: `${lane.title} has not started (expected by ${p ? p.expected_by : "topology"})` });
    } else if (lane.node.state === "failed" || lane.node.state === "dead_lettered") {
      items.push({ level: "bad", kind: lane.node.state === "failed" ? "failing" : "dead-lettered", lane, text: `${lane.title} ${lane.node.state === "failed" ? "is failing" : "was dead-lettered"}` });
    }
    if (lane.branch && lane.branch.retries > 0) {
      const errors = lane.branch.attempts.filter((a) => a.outcome !== "ok" && a.outcome !== "in_flight" && a.outcome !== "unknown");
      const kinds = countBy(errors.map((a) => errorType(a.error)));
      const last = lane.branch.attempts[lane.branch.attempts.length - 1];
      const outcome = last.outcome === "ok" ? `succeeded on attempt ${last.number}` : `attempt ${last.number}: ${last.outcome.replace("_", " ")}`;
      items.push({ level: "warn", kind: "retried", lane, errors, text: `${lane.title} retried ${lane.branch.retries}× (${kinds}), ${outcome}` });
    }
    if (lane.lagging) {
      const l = lane.lagging;
      items.push({ level: "lag", kind: "lagged", lane, text: `${lane.title} lagged: waited ${fmt(l.queue_wait_ns)} for ${l.event_name || "its event"}, typical ${fmt(l.baseline_ns)}${l.ratio ? ` (${l.ratio}×)` : ""}` });
    }
    if (lane.node.stitched) {
      const producer = lane.event.producer;
      items.push({ level: "bad", kind: "propagation break", lane, text: `Propagation break: ${producer ? producer.service : "the producer"} → ${lane.service || lane.title} on ${lane.event.event_name || "an event"} lost its trace context (stitched by event ID)` });
    }
  }
  const stitchedRoots = new Set(model.lanes.filter((l) => l.type === "branch" && l.node.stitched && l.branch)
    .flatMap((l) => l.branch.attempts.map((a) => spanKey(a.span))));
  for (const island of w.islands) {
    if (stitchedRoots.has(spanKey(island.root))) continue; // said above, as the propagation break
    const producer = island.producer;
    const where = producer ? `${producer.name} (${producer.service}) in trace ${producer.trace_id.slice(0, 8)}…` : "a producer outside these spans";
    items.push({
      level: "bad",
      kind: "broken causality",
      lane: null,
      href: producer ? `#/trace/${producer.trace_id}` : null,
      text: `Broken causality: ${island.root.name} (${island.root.service}) began a new trace; its event was published by ${where}`,
    });
  }
  for (const d of w.duplicate_publishes) {
    items.push({ level: "warn", kind: "published more than once", lane: null, text: `${d.event_name || d.event_id} was published ${d.producers.length} times` });
  }
  const rank = { bad: 0, warn: 1, lag: 2 };
  return items.sort((a, b) => rank[a.level] - rank[b.level]);
}

/**
 * Attention items grouped: the same kind of note on the same step (a consumer that
 * retried in 37 branches) becomes one line counting them, opening the first.
 */
export function groupAttention(items) {
  const groups = new Map();
  for (const item of items) {
    const subject = item.lane ? item.lane.title : item.text;
    const key = `${item.level}\u0000${item.kind}\u0000${subject}`;
    if (!groups.has(key)) groups.set(key, { ...item, subject, count: 0, items: [] });
    const group = groups.get(key);
    group.count += 1;
    group.items.push(item);
  }
  const rank = { bad: 0, warn: 1, lag: 2 };
  const sorted = [...groups.values()].sort((a, b) => rank[a.level] - rank[b.level] || b.count - a.count);
  return sorted.map((group) => {
    if (group.count === 1) return group;
    let text = `${group.subject}: ${group.kind} in ${group.count} branches`;
    if (group.kind === "retried") {
      const errors = group.items.flatMap((i) => i.errors || []);
      const retries = group.items.reduce((n, i) => n + i.lane.branch.retries, 0);
      text = `${group.subject} retried in ${group.count} branches, ${retries} retries (${countBy(errors.map((a) => errorType(a.error)))})`;
    }
    return { ...group, text, since: null };
  });
}

export function errorType(error) {
  if (!error) return "unknown error";
  return error.split(":")[0].trim() || error;
}

function countBy(values) {
  const counts = new Map();
  for (const value of values) counts.set(value, (counts.get(value) || 0) + 1);
  return [...counts].map(([value, n]) => (n > 1 ? `${value} ×${n}` : value)).join(", ") || "no error recorded";
}
