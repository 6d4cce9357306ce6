// Entry point: the header, the router, and errors shown where the page would be.

import { h, clear } from "./dom.js";
import { adoptTokenFromUrl, setToken, ApiError } from "./api.js";
import { parseRoute, link } from "./router.js";
import { showSearch } from "./search.js";
import { showWorkflow } from "./workflow.js";
import { showLint } from "./lint.js";
import { showPending, showRetries, showConsumers } from "./fleet.js";
import { leavePage } from "./live.js";

const PAGES = { pending: showPending, retries: showRetries, consumers: showConsumers, lint: showLint };

const main = document.getElementById("main");

function nav(route) {
  const goto = h("form", { class: "goto", role: "search", onsubmit: (e) => {
    e.preventDefault();
    const value = e.target.elements.key.value.trim();
    if (value) window.location.hash = link("workflow", value, {});
  } },
    h("input", { name: "key", placeholder: "Open a trace, correlation or event ID…", "aria-label": "open a workflow by ID", autocomplete: "off" }));
  const item = (page, label) => h("a", { href: link(page, "", {}), class: route.page === page ? "active" : "" }, label);
  const header = document.getElementById("top");
  clear(header).append(
    h("a", { href: "#/search", class: "brand" }, h("img", { src: "/ui/static/favicon.svg", alt: "", width: 22, height: 22 }), "tracebraid"),
    h("nav", { class: "main-nav", "aria-label": "pages" }, item("search", "Workflows"), item("pending", "Pending"),
      item("retries", "Retries"), item("consumers", "Consumers"), item("lint", "Lint")),
    goto);
}

async function route() {
  delete document.body.dataset.ready;
  leavePage();
  const current = parseRoute();
  nav(current);
  try {
    if (current.page === "workflow" || current.page === "trace") await showWorkflow(main, current, current.page);
    else if (PAGES[current.page]) await PAGES[current.page](main, current);
    else if (current.page === "search") await showSearch(main, current);
    else throw new ApiError(404, `There is no page #/${current.page}. The pages are Workflows (#/search), Pending (#/pending), Retries (#/retries), Consumers (#/consumers) and Lint (#/lint).`);
  } catch (error) {
    showError(error);
  }
}

function showError(error) {
  if (error instanceof ApiError && error.status === 401) {
    const form = h("form", { class: "token-form", onsubmit: (e) => {
      e.preventDefault();
      setToken(e.target.elements.token.value.trim());
      route();
    } },
      h("h1", {}, "This collector needs a token"),
      h("p", {}, error.message),
      h("p", { class: "muted" }, "It is the value given to tracebraid serve --token (or TRACEBRAID_TOKEN). It is kept in this browser's local storage and sent as a bearer token."),
      h("input", { name: "token", type: "password", autocomplete: "current-password", "aria-label": "token", required: true }),
      h("button", { type: "submit", class: "primary" }, "Use this token"));
    clear(main).append(form);
  } else {
    clear(main).append(h("div", { class: "error-box" },
      h("h1", {}, error instanceof ApiError && error.status === 404 ? "Not found" : "Something went wrong"),
      h("p", {}, error.message),
      h("p", {}, h("a", { href: "#/search" }, "Back to search"))));
  }
  document.body.dataset.ready = "error";
}

adoptTokenFromUrl();
window.addEventListener("hashchange", route);
route();
