// DOM building without markup: every string is set as text, never parsed as HTML.
// Span data (names, attributes, errors) may hold anything, "<img onerror=...>" included.

const SVG_NS = "http://www.w3.org/2000/svg";

function apply(el, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.setAttribute("class", value);
    else if (name === "text") el.textContent = String(value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "href" && !isSafeHref(value)) {
      throw new Error("refusing a link that is not in-app: " + value);
    } else el.setAttribute(name, value === true ? "" : String(value));
  }
  return el;
}

function isSafeHref(value) {
  const text = String(value);
  return text.startsWith("#") || text.startsWith("/api/") || text === "/";
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
  return el;
}

/** An HTML element: h("a", {href: "#/x", class: "k"}, "text", child...). */
export function h(tag, attrs, ...children) {
  return append(apply(document.createElement(tag), attrs), children);
}

/** An SVG element, same calling convention as h(). */
export function s(tag, attrs, ...children) {
  return append(apply(document.createElementNS(SVG_NS, tag), attrs), children);
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** A string cut to n characters with an ellipsis; the full text belongs in a title. */
export function cut(text, n) {
  const value = String(text ?? "");
  return value.length > n ? value.slice(0, Math.max(1, n - 1)) + "…" : value;
}

/**
 * A string cut to n characters in the middle: names that share a long prefix
 * ("corpus-aio-pika-dead-letter-ttl.orders receive") stay told apart by their ends.
 */
export function cutMiddle(text, n) {
  const value = String(text ?? "");
  if (value.length <= n) return value;
  const head = Math.max(1, Math.ceil((n - 1) * 0.4));
  const tail = Math.max(1, n - 1 - head);
  return value.slice(0, head) + "…" + value.slice(value.length - tail);
}

/** Nanoseconds as the shortest readable duration: 812 ms, 1.92 s, 4 min 12 s. */
export function duration(ns) {
  if (ns === null || ns === undefined || Number.isNaN(ns)) return "–";
  const abs = Math.abs(ns);
  if (abs < 1e3) return `${Math.round(ns)} ns`;
  if (abs < 1e6) return `${trim(ns / 1e3)} µs`;
  if (abs < 1e9) return `${trim(ns / 1e6)} ms`;
  if (abs < 60e9) return `${trim(ns / 1e9)} s`;
  if (abs < 3600e9) {
    const m = Math.floor(abs / 60e9);
    return `${m} min ${Math.round((abs - m * 60e9) / 1e9)} s`;
  }
  const hours = Math.floor(abs / 3600e9);
  if (hours < 48) return `${hours} h ${Math.round((abs - hours * 3600e9) / 60e9)} min`;
  return `${Math.round(hours / 24)} d`;
}

function trim(value) {
  if (value >= 100) return String(Math.round(value));
  if (value >= 10) return value.toFixed(1).replace(/\.0$/, "");
  return value.toFixed(2).replace(/\.?0+$/, "");
}

/** Epoch nanoseconds as local date and time with milliseconds. */
export function clock(ns) {
  if (ns === null || ns === undefined) return "–";
  const date = new Date(ns / 1e6);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` +
    `.${pad(date.getMilliseconds(), 3)}`
  );
}

/** "3 min ago" for an epoch-ns instant. */
export function ago(ns, nowMs = Date.now()) {
  const delta = nowMs * 1e6 - ns;
  return delta < 0 ? "in the future" : `${duration(delta)} ago`;
}

/** A long hex ID shortened for reading; the full one goes in a title or the panel. */
export function shortId(id) {
  if (!id) return "–";
  return id.length > 12 ? id.slice(0, 8) + "…" : id;
}

export function plural(n, word, many = word + "s") {
  return `${n} ${n === 1 ? word : many}`;
}
