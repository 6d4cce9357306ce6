// Hash routes: every view has a URL an operator can paste into an incident channel.
//
//   #/search?service=payment&has_retries=true      the search page and its filters
//   #/workflow/order_441?tab=timeline&span=T:S     a workflow (trace, correlation or event ID)
//   #/trace/4bf92f35...?tab=graph                   one trace alone
//   #/lint?service=inventory                        lint findings

export function parseRoute(hash = window.location.hash) {
  const text = hash.replace(/^#/, "") || "/search";
  const [path, query = ""] = splitOnce(text, "?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = Object.fromEntries(new URLSearchParams(query));
  const page = parts[0] || "search";
  return { page, id: parts.slice(1).join("/"), params };
}

function splitOnce(text, sep) {
  const at = text.indexOf(sep);
  return at < 0 ? [text] : [text.slice(0, at), text.slice(at + 1)];
}

/** The query string of params, leaving out the empty ones: "" when none is left. */
export function queryString(params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(name, String(value));
  }
  return query.toString();
}

/** The hash URL of a page: link("workflow", "order_441", {span: "T:S"}). */
export function link(page, id, params = {}) {
  const query = queryString(params);
  const path = id ? `#/${page}/${encodeURIComponent(id)}` : `#/${page}`;
  return query ? `${path}?${query}` : path;
}

/** Change the URL's parameters without re-rendering (selection, tab). */
export function replaceParams(changes) {
  const route = parseRoute();
  const params = { ...route.params, ...changes };
  const url = link(route.page, route.id, params);
  window.history.replaceState(null, "", url);
  return url;
}
