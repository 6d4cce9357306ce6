// Loaded before the modules: when the page opens on a workflow or a trace, ask for
// its view at once, while the modules load (the server's analysis and the module
// loading overlap). api.js takes this answer instead of asking again.
(function prefetch() {
  const match = /^#\/(workflow|trace)\/([^?]+)/.exec(window.location.hash);
  if (!match || new URLSearchParams(window.location.search).has("token")) return;
  const run = /[?&]run=([0-9]+)/.exec(window.location.hash);
  const url = match[1] === "trace"
    ? `/api/workflows/${match[2]}/view?scope=trace`
    : `/api/workflows/${match[2]}/runs/${run ? run[1] : "latest"}/view`;
  const headers = { Accept: "application/json" };
  const token = window.localStorage.getItem("tracebraid.token");
  if (token) headers.Authorization = "Bearer " + token;
  window.tracebraidPrefetch = { url, response: fetch(url, { headers, cache: "no-store" }) };
})();
