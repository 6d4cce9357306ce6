// The JSON API client: one place that adds the bearer token and turns errors into text.
//
// The token is asked for once (or read from ?token= on the page URL, which is then
// removed from the address bar) and kept in localStorage; every call sends it as
// "Authorization: Bearer". The page itself needs no token: it holds no data.

import { queryString } from "./router.js";

const TOKEN_KEY = "tracebraid.token";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function adoptTokenFromUrl() {
  const params = new URLSearchParams(window.location.search);
  const token = params.get("token");
  if (token) {
    localStorage.setItem(TOKEN_KEY, token);
    params.delete("token");
    const rest = params.toString();
    const url = window.location.pathname + (rest ? "?" + rest : "") + window.location.hash;
    window.history.replaceState(null, "", url);
  }
}

export function setToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

function takePrefetched(url) {
  const early = window.tracebraidPrefetch;
  if (!early || early.url !== url) return null;
  window.tracebraidPrefetch = null; // once: a later visit asks afresh
  return early.response;
}

/** The headers every API call sends: JSON, and the bearer token when one is kept. */
export function authHeaders() {
  const headers = { Accept: "application/json" };
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  return headers;
}

/** GET an API path with query parameters; resolves to the parsed document. */
export async function get(path, params = {}) {
  const query = queryString(params);
  const url = path + (query ? "?" + query : "");
  const headers = authHeaders();
  let response;
  try {
    response = await (takePrefetched(url) || fetch(url, { headers, cache: "no-store" }));
  } catch (error) {
    throw new ApiError(0, `the collector did not answer (${error.message}); is tracebraid serve running?`);
  }
  if (response.ok) return response.json();
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && typeof body.error === "string") message = body.error;
    else if (body && typeof body.message === "string") message = body.message;
  } catch (_) {
    // not JSON: keep the status line
  }
  throw new ApiError(response.status, message);
}
