// The caller's jobs and scans, newest first, a page at a time.
import { el, message, pager, table } from "../dom.js";
import { formatNumber, formatTime } from "../format.js";
import { metricHref } from "../links.js";

const JOBS_PAGE = 50;

export function mount(ctx) {
  let shown = 0; // a page of the list that loads after a newer one was asked draws nothing

  async function showPage(offset) {
    const showing = ++shown;
    ctx.show("Jobs", message("Loading…"));
    const list = await ctx.api.request("/api/jobs", { params: { limit: JOBS_PAGE, offset } });
    if (showing !== shown) return;
    if (list.jobs.length === 0) {
      ctx.show("Jobs", message("No jobs yet: run detection from a metric's page."));
      return;
    }
    const rows = list.jobs.map((job) => {
      const summary = job.summary;
      return el("tr", {},
        el("td", {}, formatTime(Date.parse(job.submitted_at))),
        el("td", {}, job.kind),
        el("td", {}, el("a", { href: metricHref(job.metric_id) }, job.metric_id.slice(0, 8))),
        el("td", {}, el("span", { className: `badge ${job.status}` }, job.status)),
        el("td", { className: "number" }, `${Math.round(job.progress * 100)}%`),
        el("td", {}, job.params.method),
        el("td", { className: "number" }, summary ? formatNumber(summary.flagged) : "–"),
        el("td", {}, job.error || ""));
    });
    ctx.show("Jobs",
      table(["Submitted", "Kind", "Metric", "Status", "Progress", "Method", "Flagged", "Error"], rows),
      pager(offset, list.next_offset, JOBS_PAGE, (to) => showPage(to).catch((error) => ctx.report(error))));
  }

  return showPage(0);
}
