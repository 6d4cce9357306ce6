// Live pages: poll /api/changes with the ETag of the store's span count; the answer
// is "304 Not Modified" until a span arrives, and only then is the page's document
// asked for again. A watcher stops when its page is left (a new route).

import { authHeaders } from "./api.js";

let generation = 0;
let lastTag = null;

/** A new page was routed to: every watcher of the old one stops. */
export function leavePage() {
  generation += 1;
}

/** Poll interval in ms; tests shorten it with ?poll= on the page's own URL. */
function interval() {
  const asked = Number.parseInt(new URLSearchParams(window.location.search).get("poll") || "", 10);
  return Number.isFinite(asked) && asked >= 100 ? asked : 3000;
}

/** Call `onChange` whenever the store took new spans, while this page is shown. */
export function watchStore(root, onChange) {
  const mine = generation;
  let busy = false;
  const tick = async () => {
    if (mine !== generation) return;
    if (!document.hidden && !busy) {
      busy = true;
      try {
        const headers = authHeaders();
        if (lastTag) headers["If-None-Match"] = lastTag;
        const response = await fetch("/api/changes", { headers, cache: "no-store" });
        if (response.status === 200) {
          const changed = lastTag !== null;
          lastTag = response.headers.get("ETag");
          if (changed && mine === generation) await onChange();
        }
      } catch (_) {
        // the collector restarting: try again on the next tick
      } finally {
        busy = false;
      }
    }
    if (mine === generation) window.setTimeout(tick, interval());
  };
  window.setTimeout(tick, 0);
}
