// A workflow's counts as badges, one wording and one colour per meaning, used by the
// search rows and the workflow header alike (both read tracebraid.views.web.runs'
// workflow_counts of the same analysis document).

import { h, plural } from "./dom.js";

export const COUNTS = [
  ["failing", "✗", "failing", "failing", "bad"],
  ["lost", "⚠", "lost", "lost", "bad"],
  ["dead_letters", "☠", "dead letter", "dead letters", "bad"],
  ["broken_links", "⚡", "broken link", "broken links", "bad"],
  ["retries", "↻", "retry", "retries", "warn"],
  ["pending", "◔", "pending", "pending", "flight"],
  ["lagging", "◷", "lagging consumer", "lagging consumers", "lag"],
  ["duplicates", "⇉", "duplicate", "duplicates", "warn"],
];

/** Badges for `counts`; with `all`, zero counts too (quiet), else "✓ clean" when none. */
export function countBadges(counts, { all = false } = {}) {
  const out = [];
  for (const [field, icon, one, many, level] of COUNTS) {
    const n = counts[field] || 0;
    if (!n && !all) continue;
    out.push(h("span", { class: `badge ${n ? level : "quiet"}`, dataset: { count: field } }, `${icon} ${plural(n, one, many)}`));
  }
  if (!out.length) out.push(h("span", { class: "badge ok" }, "✓ clean"));
  return out;
}

/** The counts of a workflow document, by the rule of runs.workflow_counts (trace scope). */
export function countsOf(workflow) {
  const sm = workflow.summary;
  return {
    retries: sm.retries,
    failing: workflow.branches.filter((b) => b.status === "failed").length,
    pending: Math.max(sm.pending, sm.in_flight),
    lost: sm.lost,
    lagging: workflow.lagging.length,
    broken_links: Math.max(sm.broken_links, workflow.islands.length),
    dead_letters: sm.dead_letters,
    duplicates: sm.duplicates,
  };
}
