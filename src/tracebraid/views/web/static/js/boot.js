// Loaded before the modules: when the page opens on a workflow or a trace, ask for
// its view at once, while the modules load (the server's analysis and the module
// loading overlap). api.js takes this answer instead of asking again.
(function prefetch() {
  const match = /^#\/(workflow|trace)\/([^?]+)/.exec(window.location.hash);
  if (!match || new URLSearchParams(window.location.search).has("token")) return;
  const url = `/api/workflows/${match[2]}/view${match[1] === "trace" ? "?scope=trace" : ""}`;
  const headers = { Accept: "application/json" };
  const token = window.localStorage.getItem("tracebraid.token");
  if (token) headers.Authorization = "Bearer " + token;
  window.tracebraidPrefetch = { url, response: fetch(url, { headers, cache: "no-store" }) };
})();
