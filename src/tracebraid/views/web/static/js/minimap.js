// The overview strip of a long timeline: every lane as one thin line across time
// (failed red, in flight violet, lagging teal, find matches gold), the part of the
// timeline on screen as a window. Click or drag on it to go there.

function color(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

export function renderMinimap(canvasEl, model, lanes, { matches, range }) {
  const strip = document.createElement("canvas");
  strip.className = "minimap";
  strip.setAttribute("role", "img");
  strip.setAttribute("aria-label", `overview of ${lanes.length} lanes; click to scroll there`);
  const full = { from: model.startNs, to: Math.max(model.endNs, model.nowNs > model.endNs && model.nowNs - model.endNs < (model.endNs - model.startNs) ? model.nowNs : model.endNs) };
  const colors = { base: color("--inner"), bad: color("--bad"), flight: color("--flight"), lag: color("--lag"), match: color("--highlight"), window: color("--focus") };
  const draw = () => {
    const width = strip.clientWidth || 800;
    const height = strip.clientHeight || 56;
    const ratio = window.devicePixelRatio || 1;
    if (strip.width !== Math.round(width * ratio)) {
      strip.width = Math.round(width * ratio);
      strip.height = Math.round(height * ratio);
    }
    const g = strip.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    const span = Math.max(1, full.to - full.from);
    const x = (t) => ((t - full.from) / span) * width;
    const rowH = height / Math.max(1, lanes.length);
    lanes.forEach((lane, i) => {
      let a = null;
      let b = null;
      let kind = "base";
      if (lane.type === "action") {
        a = lane.root.start_ns;
        b = lane.root.start_ns + lane.root.duration_ns;
      } else {
        const attempts = lane.branch ? lane.branch.attempts : [];
        a = lane.event.published_ns ?? (attempts[0] ? attempts[0].start_ns : null);
        const last = attempts[attempts.length - 1];
        b = last ? last.end_ns ?? model.nowNs : model.nowNs;
        const state = lane.node.state;
        if (state === "failed" || state === "lost" || state === "dead_lettered") kind = "bad";
        else if (state === "in_flight" || state === "pending") kind = "flight";
        else if (lane.lagging) kind = "lag";
      }
      if (matches.has(lane.index)) kind = "match";
      if (a === null) return;
      g.fillStyle = colors[kind];
      g.fillRect(x(a), i * rowH, Math.max(1.5, x(b) - x(a)), Math.max(1, rowH - (rowH > 3 ? 1 : 0)));
    });
    // The window: the lanes scrolled into view, the stretch of time zoomed into.
    const top = canvasEl.scrollTop / Math.max(1, canvasEl.scrollHeight);
    const seen = canvasEl.clientHeight / Math.max(1, canvasEl.scrollHeight);
    const wx0 = range ? x(range.fromNs) : 0;
    const wx1 = range ? x(range.toNs) : width;
    g.strokeStyle = colors.window;
    g.lineWidth = 1.5;
    g.fillStyle = "rgba(28, 126, 214, 0.12)";
    g.fillRect(wx0, top * height, Math.max(2, wx1 - wx0), Math.max(3, seen * height));
    g.strokeRect(wx0 + 0.75, top * height + 0.75, Math.max(2, wx1 - wx0) - 1.5, Math.max(3, seen * height) - 1.5);
  };
  const goTo = (event) => {
    const box = strip.getBoundingClientRect();
    const fraction = (event.clientY - box.top) / box.height;
    canvasEl.scrollTop = fraction * canvasEl.scrollHeight - canvasEl.clientHeight / 2;
  };
  let dragging = false;
  strip.addEventListener("mousedown", (e) => { dragging = true; goTo(e); });
  window.addEventListener("mouseup", () => { dragging = false; });
  strip.addEventListener("mousemove", (e) => { if (dragging) goTo(e); });
  let queued = false;
  canvasEl.addEventListener("scroll", () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; if (strip.isConnected) draw(); });
  });
  return { el: strip, draw };
}
