// The caller's detection jobs, newest first, a page at a time; below them the recent
// periodic sweeps that judged the caller's metrics (their counts only).
import { el, message, pager, table } from "../dom.js";
import { counted, formatNumber, formatTime } from "../format.js";
import { metricHref } from "../links.js";

const JOBS_PAGE = 50;
const SCANS_SHOWN = 10;

export function mount(ctx) {
  // Asked once for every page of the list, beside the first one.
  const names = metricNames(ctx.api);
  let shown = 0; // a page of the list that loads after a newer one was asked draws nothing

  async function showPage(offset) {
    const showing = ++shown;
    ctx.show("Jobs", message("Loading…"));
    const [list, nameOf, scans] = await Promise.all([
      ctx.api.request("/api/jobs", { params: { limit: JOBS_PAGE, offset, kind: "detect" } }),
      names,
      ctx.api.request("/api/scans", { params: { limit: SCANS_SHOWN } }),
    ]);
    if (showing !== shown) return;
    const scansPart = [el("section", { id: "scans" }, el("h2", {}, "Periodic scans"), scanTable(scans.scans))];
    if (list.jobs.length === 0) {
      ctx.show("Jobs", message("No jobs yet: run detection from a metric's page."), ...scansPart);
      return;
    }
    const rows = list.jobs.map((job) => {
      const summary = job.summary;
      return el("tr", {},
        el("td", {}, formatTime(Date.parse(job.submitted_at))),
        el("td", {}, job.kind),
        el("td", {}, metricLink(job.metric_id, nameOf)),
        el("td", {}, el("span", { className: `badge ${job.status}` }, job.status)),
        el("td", { className: "number" }, `${Math.round(job.progress * 100)}%`),
        methodCell(job),
        el("td", { className: "number" }, summary ? formatNumber(summary.flagged) : "–"),
        job.error ? el("td", { className: "wrap" }, job.error) : el("td", {}));
    });
    ctx.show("Jobs",
      table(["Submitted", "Kind", "Metric", "Status", "Progress", "Method", "Flagged", "Error"], rows),
      pager(offset, list.next_offset, JOBS_PAGE, (to) => showPage(to).catch((error) => ctx.report(error))),
      ...scansPart);
  }

  return showPage(0);
}

// "service/metric" of each of the caller's metrics by id, from one list per service (a
// page of jobs is mostly a few metrics many times); null if they could not be read.
async function metricNames(api) {
  try {
    const services = await api.request("/api/services");
    const named = await Promise.all(services.map(async (service) => {
      const metrics = await api.request(`/api/metrics/service/${encodeURIComponent(service.id)}`);
      return metrics.map((metric) => [metric.id, `${service.name}/${metric.name}`]);
    }));
    return new Map(named.flat());
  } catch {
    return null; // the list stands without names: its links show the ids
  }
}

// A link to the job's metric by its name; by its id if the names are not known, and no
// link if the metric is gone (deleted since the job ran).
function metricLink(metricId, nameOf) {
  if (nameOf === null) return el("a", { href: metricHref(metricId) }, metricId.slice(0, 8));
  const name = nameOf.get(metricId);
  if (name === undefined) return el("span", { className: "hint", title: metricId }, "deleted metric");
  return el("a", { href: metricHref(metricId) }, name);
}

// The method that ran (auto resolved, "-online" for a scan), as its summary says; the one
// asked for until the job has run. Auto on too few readings runs rolling, and says why.
function methodCell(job) {
  if (!job.summary) return el("td", {}, job.params.method);
  const fallback = job.summary.method_params.auto;
  return el("td", { title: fallback },
    job.summary.method,
    fallback ? el("span", { className: "hint" }, " (auto fell back)") : null);
}

// The newest sweeps with the caller's metrics in them, each with the caller's counts.
function scanTable(scans) {
  if (scans.length === 0) return message("No periodic scan has judged your metrics yet.");
  const rows = scans.map((scan) => el("tr", {},
    el("td", {}, formatTime(Date.parse(scan.started_at))),
    // Rebuilds a sweep left for later (SCAN_REBUILD_READINGS): metrics whose detector a
    // later sweep rebuilds, their lag growing meanwhile (their pages say since when).
    el("td", {}, (scan.finished ? "finished" : "running")
      + (scan.rebuilds_waiting
        ? `, ${counted(scan.rebuilds_waiting, "metric")} left waiting for a detector rebuild`
        : "")),
    el("td", { className: "number" }, formatNumber(scan.metrics_judged)),
    el("td", { className: "number" }, formatNumber(scan.readings_judged)),
    el("td", { className: "number" }, formatNumber(scan.anomalies)),
    el("td", { className: "number" }, scan.lag_seconds_max === null ? "–" : `${formatNumber(scan.lag_seconds_max)} s`),
    el("td", { className: "number" }, formatNumber(scan.skipped)),
    scan.last_error ? el("td", { className: "wrap" }, `${scan.failures} failed: ${scan.last_error}`)
      : el("td", {}, scan.failures ? String(scan.failures) : "")));
  return table(["Started", "Status", "Metrics", "Readings", "Anomalies", "Lag (max)", "Too short", "Failures"], rows);
}
