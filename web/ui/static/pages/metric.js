// A metric: its chart (opened on `?start=ISO&end=ISO` when the link carries a range), its
// events and a form to run detection; see MetricView.
import { el, message } from "../dom.js";
import { rangeFromQuery, windowParams } from "../links.js";
import { MetricView, chartPoints, fetchView } from "../metric-view.js";
import { readOwned } from "./not-found.js";

export async function mount(ctx) {
  const { metricId, query } = ctx.params;
  ctx.show("Metric", message("Loading…"));
  const path = `/api/metrics/${encodeURIComponent(metricId)}`;
  const range = rangeFromQuery(query);
  // Asked all at once, so that the chart is drawn after one round trip, not four.
  const firstView = fetchView(ctx.api, path, windowParams(range), chartPoints(ctx.width()));
  const latestJob = latestJobOf(ctx.api, metricId);
  firstView.catch(() => {}); // a 404 here is the metric's own 404, reported below
  const metric = await readOwned(ctx, path, "Metric",
    el("p", {}, el("a", { href: "#/" }, "Back to your services")));
  if (metric === null || !ctx.active) return;
  new MetricView(ctx, metric, path, latestJob, range).show(firstView);
}

// The newest succeeded detection job (one the user ran: periodic scans keep no result) of
// the metric whose result is still kept, or null.
async function latestJobOf(api, metricId) {
  try {
    const jobs = await api.request("/api/jobs", { params: { limit: 200, kind: "detect" } });
    const done = jobs.jobs.find((job) => job.metric_id === metricId
      && job.status === "succeeded" && !job.result_expired);
    return done ? done.id : null;
  } catch {
    return null; // no band then; the chart itself does not depend on jobs
  }
}
