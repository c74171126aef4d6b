// A service's metrics: each with its latest value, a trend of its last 24 hours of data
// and how many anomalies it had in them (filled in per row once the table is shown).
import { errorText } from "../api.js";
import { drawSparkline } from "../chart.js";
import { el, message, table } from "../dom.js";
import { formatTime, formatValue } from "../format.js";
import { metricHref } from "../links.js";
import { readOwned } from "./not-found.js";

const RECENT_MS = 24 * 3600 * 1000;

export async function mount(ctx) {
  const serviceId = ctx.params.serviceId;
  ctx.show("Service", message("Loading…"));
  const service = await readOwned(ctx, `/api/services/${encodeURIComponent(serviceId)}`, "Service");
  if (service === null) return;
  const metrics = await ctx.api.request(`/api/metrics/service/${encodeURIComponent(serviceId)}`);
  const rows = metrics.map((metric) => {
    const latest = metric.latest_reading;
    const spark = el("canvas", { className: "sparkline", "aria-label": `trend of ${metric.name}` });
    const count = el("td", { className: "number" }, latest ? "…" : "–");
    if (latest) fillMetricSummary(ctx, metric, spark, count);
    return el("tr", {},
      el("td", {}, el("a", { href: metricHref(metric.id) }, metric.name)),
      el("td", { className: "number" }, latest ? formatValue(latest.value) : "no readings"),
      el("td", {}, latest ? formatTime(Date.parse(latest.timestamp)) : ""),
      el("td", {}, spark),
      count);
  });
  ctx.show(service.name,
    el("nav", { className: "crumbs" }, el("a", { href: "#/" }, "Services"), " › ", service.name),
    service.description ? el("p", {}, service.description) : null,
    metrics.length === 0
      ? message("No metrics yet: create one with POST /api/metrics.")
      : table(["Metric", "Latest", "At", "Last 24 h of data", "Anomalies (24 h)"], rows));
}

async function fillMetricSummary(ctx, metric, canvas, countCell) {
  const latestMs = Date.parse(metric.latest_reading.timestamp);
  const id = encodeURIComponent(metric.id);
  // The last 24 hours of the metric's own data: recent, and cheap for a long history.
  const start = new Date(latestMs - RECENT_MS).toISOString();
  try {
    const [series, anomalies] = await Promise.all([
      ctx.api.request(`/api/metrics/${id}/series`, { params: { start, points: 60 } }),
      ctx.api.request(`/api/metrics/${id}/anomalies`, { params: { start, limit: 1000 } }),
    ]);
    drawSparkline(canvas, series);
    const count = anomalies.anomalies.length;
    countCell.textContent = anomalies.next_cursor ? `${count}+` : String(count);
  } catch (error) {
    if (!ctx.active) return;
    countCell.textContent = "?";
    countCell.title = errorText(error);
  }
}
