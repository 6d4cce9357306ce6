// The span panel: one span's identities as separate fields, then its attributes,
// events and links, and on request its causal chain back to the user action.

import { h, clear, clock, duration } from "./dom.js";
import { get } from "./api.js";
import { link } from "./router.js";
import { spanKey } from "./model.js";

function field(label, value, { mono = true, href = null } = {}) {
  const shown = value === null || value === undefined || value === "" ? "–" : String(value);
  const content = href && shown !== "–" ? h("a", { href }, shown) : shown;
  return [h("dt", {}, label), h("dd", { class: mono ? "mono" : "" }, content)];
}

function attributeTable(attributes) {
  const keys = Object.keys(attributes || {}).sort();
  if (!keys.length) return h("p", { class: "muted" }, "none");
  return h("table", { class: "kv" },
    h("tbody", {}, keys.map((key) =>
      h("tr", {}, h("th", { class: "mono" }, key), h("td", { class: "mono" }, display(attributes[key]))))));
}

function display(value) {
  return Array.isArray(value) ? JSON.stringify(value) : String(value);
}

export function renderPanel(container, model, span, { onClose }) {
  const key = spanKey(span);
  const full = span.details ? span : model.details.get(key);
  if (!full) {
    // Drawn at once from what the page holds; attributes and events follow.
    get(`/api/spans/${encodeURIComponent(span.trace_id)}/${encodeURIComponent(span.span_id)}`)
      .then((doc) => {
        model.details.set(key, doc.span);
        if (container.dataset.span === key) fill(container, model, doc.span, { onClose });
      })
      .catch((error) => {
        const slot = container.querySelector(".details-slot");
        if (slot) clear(slot).append(h("p", { class: "error-text" }, error.message));
      });
  }
  fill(container, model, full || span, { onClose });
}

function fill(container, model, span, { onClose }) {
  clear(container);
  container.dataset.span = spanKey(span);
  container.hidden = false;
  const id = span.identity;
  const head = h("div", { class: "panel-head" },
    h("div", {},
      h("div", { class: "panel-kicker" }, span.start_marker ? "start marker (the span is still in flight)" : `${span.kind} span · ${span.service}`),
      h("h2", { class: "panel-title" }, span.name)),
    h("button", { class: "close", type: "button", "aria-label": "close the span panel", onclick: onClose }, "×"));
  const statusText = span.start_marker ? "in flight" : span.status === "error" ? `error${span.status_message ? ": " + span.status_message : ""}` : span.status;
  const trace = model.scope === "trace" ? null : link("trace", span.trace_id, {});
  const parentKey = span.parent_span_id ? `${span.trace_id}:${span.parent_span_id}` : null;
  const ids = h("dl", { class: "fields" },
    field("trace ID", span.trace_id, { href: trace }),
    field("span ID", span.start_marker ? span.marker_for : span.span_id),
    field("parent span ID", span.start_marker ? null : span.parent_span_id,
      { href: parentKey && model.byKey.has(parentKey) ? link(model.scope, model.key, { span: parentKey }) : null }),
    field("correlation ID", id.correlation_id, { href: id.correlation_id ? link("workflow", id.correlation_id, {}) : null }),
    field("event ID", id.event_id),
    field("causation ID", id.causation_id),
    field("attempt", id.attempt),
    field("consumer", id.consumer),
  );
  const facts = h("dl", { class: "fields" },
    field("business step", id.step, { mono: false }),
    field("event name", id.event_name),
    field("destination", id.destination),
    field("role", id.role, { mono: false }),
    field("outcome", id.outcome, { mono: false }),
    field("status", statusText, { mono: false }),
    field("error", id.error),
    field("started", clock(span.start_ns), { mono: false }),
    field("duration", span.start_marker ? `running for ${duration(model.nowNs - span.start_ns)}` : duration(span.duration_ns), { mono: false }),
  );
  const events = span.events.length
    ? h("ol", { class: "events" }, span.events.map((e) =>
      h("li", {},
        h("div", {}, h("strong", {}, e.name), " ", h("span", { class: "muted" }, `+${duration(e.time_ns - span.start_ns)}`)),
        Object.keys(e.attributes).length ? attributeTable(e.attributes) : null)))
    : h("p", { class: "muted" }, "none");
  const links = span.links.length
    ? h("ul", { class: "links" }, span.links.map((l) => {
      const key = `${l.trace_id}:${l.span_id}`;
      const here = model.byKey.has(key);
      return h("li", { class: "mono" },
        h("a", { href: here ? link(model.scope, model.key, { span: key }) : link("trace", l.trace_id, { span: key }) }, key));
    }))
    : h("p", { class: "muted" }, "none");
  const chain = h("div", { class: "chain" });
  const whyButton = h("button", { type: "button", class: "secondary", onclick: () => loadWhy(model, span, chain) }, "Why did this run? (causal chain)");
  const share = h("input", { class: "share mono", readonly: true, value: window.location.href, "aria-label": "link to this span", onfocus: (e) => e.target.select() });
  const details = span.details
    ? h("div", { class: "details-slot" },
      h("h3", {}, "Attributes"), attributeTable(span.attributes),
      h("h3", {}, "Events"), events,
      h("h3", {}, "Links"), links,
      h("h3", {}, "Resource"), attributeTable(span.resource))
    : h("div", { class: "details-slot" }, h("p", { class: "muted" }, "loading attributes and events…"));
  container.append(
    head,
    h("h3", {}, "Identities"), ids,
    h("h3", {}, "What it did"), facts,
    h("div", { class: "panel-actions" }, whyButton), chain,
    details,
    h("h3", {}, "Link to this span"), share,
  );
}

async function loadWhy(model, span, target) {
  clear(target).append(h("p", { class: "muted" }, "asking…"));
  const ref = span.start_marker ? `${span.trace_id}:${span.marker_for}` : spanKey(span);
  try {
    const doc = await get(`/api/workflows/${encodeURIComponent(model.key)}/why`, { target: ref, scope: model.scope });
    clear(target).append(
      h("ol", { class: "why" }, doc.steps.map((step) =>
        h("li", { class: step.stitched ? "stitched" : "" },
          h("a", { href: link(model.scope, model.key, { span: spanKey(step.span) }) }, step.step),
          h("span", { class: "muted" }, ` ${step.span.service}`),
          step.event_name ? h("span", { class: "muted" }, ` · ${step.role === "producer" ? "published" : "took"} ${step.event_name}`) : null,
          step.stitched ? h("span", { class: "badge bad" }, "propagation break") : null))),
      doc.complete ? h("p", { class: "muted" }, "reaches the user action") : h("p", { class: "warn-text" }, `the chain stops: ${doc.gap}`));
  } catch (error) {
    clear(target).append(h("p", { class: "error-text" }, error.message));
  }
}
