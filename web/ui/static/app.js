// The dashboard's pages, routed by the URL's hash so that the server serves one page:
//   #/                 services
//   #/services/ID      a service's metrics (latest value, trend, recent anomalies)
//   #/metrics/ID       a metric: chart, events, detection
//   #/metrics/ID?start=ISO&end=ISO   the same, the chart opened on that span
//   #/jobs             the caller's jobs
//   #/incidents        the caller's incidents
//   #/incidents/ID     an incident: its probable causes, timeline, acknowledge and resolve
import { ApiError, allPages, api, forgetKey, signIn, storedKey } from "./api.js";
import { NO_KIND, drawChart, drawSparkline, formatTime, kindColour, kindOf } from "./chart.js";

const main = document.getElementById("main");
const MAX_MARKERS = 10000;
const RECENT_MS = 24 * 3600 * 1000;
const RANGES = [
  ["all", "All", null],
  ["1h", "Last hour", 3600e3],
  ["6h", "Last 6 h", 6 * 3600e3],
  ["24h", "Last 24 h", 24 * 3600e3],
  ["7d", "Last 7 days", 7 * 24 * 3600e3],
  ["30d", "Last 30 days", 30 * 24 * 3600e3],
];
let renderCount = 0; // a page that finishes loading after the user moved on draws nothing
let cleanup = () => {};

// el("a", {href: "#/"}, "text", child): elements from data, never from HTML strings.
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2).toLowerCase(), value);
    else if (name === "className") node.className = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

function message(text, kind = "info") {
  return el("p", { className: `message ${kind}`, role: kind === "error" ? "alert" : null }, text);
}

function errorText(error) {
  if (error instanceof ApiError && error.status === 0) return error.message;
  if (error instanceof ApiError) return `${error.status}: ${error.message}`;
  return String(error);
}

function formatNumber(value) {
  return value === null || value === undefined ? "–" : Number(value).toLocaleString("en-US");
}

function formatValue(value) {
  if (value === null || value === undefined) return "–";
  return String(Math.round(value * 1000) / 1000);
}

// `children` may hold null for a part a page leaves out (as el() allows).
function page(title, ...children) {
  main.replaceChildren(el("h1", {}, title), ...children.filter((c) => c !== null && c !== undefined));
  document.title = `${title} · Neonomaly`;
}

// The object at `path`, or null after showing "<What> not found" (another user's id too).
async function readOwned(path, what, back = null) {
  try {
    return await api(path);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      page(`${what} not found`, message(`No ${what.toLowerCase()} of yours has this id.`, "error"),
        back);
      return null;
    }
    throw error;
  }
}

function table(headers, rows) {
  return el("div", { className: "table-wrap" },
    el("table", {},
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows)));
}

// --- sign in -------------------------------------------------------------------------------
function signInPage() {
  document.getElementById("nav").hidden = true;
  const input = el("input", {
    id: "api-key", type: "password", autocomplete: "off", spellcheck: "false", required: true,
    placeholder: "nno_…",
  });
  const status = el("div", { id: "sign-in-status" });
  const form = el("form", { className: "card sign-in", onSubmit: async (event) => {
    event.preventDefault();
    status.replaceChildren(message("Checking the key…"));
    try {
      await signIn(input.value.trim());
      render();
    } catch (error) {
      const text = error instanceof ApiError && error.status === 401
        ? "That key was refused: check it, or create one with `neonomaly create-user NAME`."
        : `Could not sign in (${errorText(error)})`;
      status.replaceChildren(message(text, "error"));
    }
  } },
  el("label", { for: "api-key" }, "API key"),
  input,
  el("button", { type: "submit" }, "Sign in"),
  status,
  el("p", { className: "hint" },
    "The key stays in this tab (sessionStorage) and is sent only as the X-API-Key header."));
  page("Sign in", form);
}

// --- services ------------------------------------------------------------------------------
async function servicesPage(token) {
  page("Services", message("Loading…"));
  const services = await api("/api/services");
  if (token !== renderCount) return;
  if (services.length === 0) {
    page("Services", message("No services yet: create one with POST /api/services (see /docs)."));
    return;
  }
  page("Services", table(["Name", "Description", "Created"], services.map((s) =>
    el("tr", {},
      el("td", {}, el("a", { href: `#/services/${encodeURIComponent(s.id)}` }, s.name)),
      el("td", {}, s.description || ""),
      el("td", {}, formatTime(Date.parse(s.created_at)))))));
}

async function servicePage(token, serviceId) {
  page("Service", message("Loading…"));
  const service = await readOwned(`/api/services/${encodeURIComponent(serviceId)}`, "Service");
  if (service === null) return;
  const metrics = await api(`/api/metrics/service/${encodeURIComponent(serviceId)}`);
  if (token !== renderCount) return;
  const rows = metrics.map((metric) => {
    const latest = metric.latest_reading;
    const spark = el("canvas", { className: "sparkline", "aria-label": `trend of ${metric.name}` });
    const count = el("td", { className: "number" }, latest ? "…" : "–");
    if (latest) fillMetricSummary(metric, spark, count);
    return el("tr", {},
      el("td", {}, el("a", { href: metricHref(metric.id) }, metric.name)),
      el("td", { className: "number" }, latest ? formatValue(latest.value) : "no readings"),
      el("td", {}, latest ? formatTime(Date.parse(latest.timestamp)) : ""),
      el("td", {}, spark),
      count);
  });
  page(service.name,
    el("nav", { className: "crumbs" }, el("a", { href: "#/" }, "Services"), " › ", service.name),
    service.description ? el("p", {}, service.description) : null,
    metrics.length === 0
      ? message("No metrics yet: create one with POST /api/metrics.")
      : table(["Metric", "Latest", "At", "Last 24 h of data", "Anomalies (24 h)"], rows));
}

async function fillMetricSummary(metric, canvas, countCell) {
  const latestMs = Date.parse(metric.latest_reading.timestamp);
  const id = encodeURIComponent(metric.id);
  // The last 24 hours of the metric's own data: recent, and cheap for a long history.
  const start = new Date(latestMs - RECENT_MS).toISOString();
  try {
    const [series, anomalies] = await Promise.all([
      api(`/api/metrics/${id}/series`, { params: { start, points: 60 } }),
      api(`/api/metrics/${id}/anomalies`, { params: { start, limit: 1000 } }),
    ]);
    drawSparkline(canvas, series);
    const count = anomalies.anomalies.length;
    countCell.textContent = anomalies.next_cursor ? `${count}+` : String(count);
  } catch (error) {
    countCell.textContent = "?";
    countCell.title = errorText(error);
  }
}

// --- one metric ----------------------------------------------------------------------------
// About one slot per pixel of the chart's width.
function chartPoints(width) {
  return Math.max(100, Math.min(2000, Math.round(width)));
}

// The series (no band) and the anomalies of a window: what a first draw needs.
function fetchView(path, window, points) {
  return Promise.all([
    api(`${path}/series`, { params: { ...window, points } }),
    allPages(`${path}/anomalies`, { ...window, limit: 10000 }, "anomalies", MAX_MARKERS),
  ]);
}

// The newest succeeded job of the metric whose result is still kept, or null.
async function latestJobOf(metricId) {
  try {
    const jobs = await api("/api/jobs", { params: { limit: 200 } });
    const done = jobs.jobs.find((job) => job.metric_id === metricId
      && job.status === "succeeded" && !job.result_expired);
    return done ? done.id : null;
  } catch {
    return null; // no band then; the chart itself does not depend on jobs
  }
}

// The API's window parameters for a range {start, end} in epoch ms (null: every reading).
function windowParams(range) {
  return range
    ? { start: new Date(range.start).toISOString(), end: new Date(range.end).toISOString() }
    : {};
}

// A metric page's link opening its chart on a range (epoch ms), as an incident links to it.
function metricHref(metricId, range = null) {
  const query = range ? `?${new URLSearchParams(windowParams(range))}` : "";
  return `#/metrics/${encodeURIComponent(metricId)}${query}`;
}

// The range of `?start=ISO&end=ISO` after a metric's id, or null (every reading).
function rangeFromQuery(query) {
  const params = new URLSearchParams(query || "");
  const start = Date.parse(params.get("start"));
  const end = Date.parse(params.get("end"));
  return Number.isNaN(start) || Number.isNaN(end) || start >= end ? null : { start, end };
}

async function metricPage(token, metricId, query) {
  page("Metric", message("Loading…"));
  const path = `/api/metrics/${encodeURIComponent(metricId)}`;
  const range = rangeFromQuery(query);
  // Asked all at once, so that the chart is drawn after one round trip, not four.
  const firstView = fetchView(path, windowParams(range), chartPoints(main.clientWidth));
  const latestJob = latestJobOf(metricId);
  firstView.catch(() => {}); // a 404 here is the metric's own 404, reported below
  const metric = await readOwned(path, "Metric",
    el("p", {}, el("a", { href: "#/" }, "Back to your services")));
  if (metric === null || token !== renderCount) return;
  new MetricView(token, metric, path, latestJob, range).show(firstView);
}

class MetricView {
  constructor(token, metric, path, latestJob, range) {
    this.token = token;
    this.metric = metric;
    this.path = path;
    this.range = range; // {start, end} in epoch ms; null: every reading
    this.jobId = latestJob; // the job whose band is drawn (at first, a promise of it)
    this.chart = null;
    this.loads = 0;
  }

  show(firstView) {
    const latest = this.metric.latest_reading;
    const serviceLink = el("a", { href: `#/services/${encodeURIComponent(this.metric.service_id)}` },
      "service");
    api(`/api/services/${encodeURIComponent(this.metric.service_id)}`)
      .then((service) => { serviceLink.textContent = service.name; })
      .catch(() => {}); // the link works without its name
    this.chartBox = el("div", { id: "chart", className: "chart", "data-state": "loading" });
    this.status = el("p", { id: "chart-status", className: "hint" });
    this.legend = el("div", { className: "legend", id: "legend" });
    this.events = el("div", { id: "events" });
    this.rangeSelect = el("select", { id: "range", "aria-label": "time range", onChange: () => {
      const chosen = RANGES.find(([key]) => key === this.rangeSelect.value);
      this.setRange(chosen[2] === null ? null : this.relativeRange(chosen[2]));
    } }, RANGES.map(([key, label]) => el("option", { value: key }, label)));
    this.fromInput = el("input", { type: "datetime-local", step: "1", "aria-label": "from (UTC)" });
    this.toInput = el("input", { type: "datetime-local", step: "1", "aria-label": "to (UTC)" });
    const toolbar = el("div", { className: "toolbar" },
      this.rangeSelect,
      el("span", { className: "custom-range" },
        this.fromInput, "–", this.toInput, el("span", { className: "hint" }, "UTC"),
        el("button", { type: "button", onClick: () => this.applyCustomRange() }, "Apply")),
      el("span", { className: "pan" },
        el("button", { type: "button", title: "earlier", "aria-label": "pan earlier",
          onClick: () => this.pan(-0.5) }, "◀"),
        el("button", { type: "button", title: "later", "aria-label": "pan later",
          onClick: () => this.pan(0.5) }, "▶"),
        el("button", { type: "button", onClick: () => this.zoomOut() }, "Zoom out"),
        el("button", { type: "button", onClick: () => this.setRange(null) }, "Reset")));
    page(this.metric.name,
      el("nav", { className: "crumbs" },
        el("a", { href: "#/" }, "Services"), " › ",
        serviceLink,
        " › ", this.metric.name),
      el("p", { className: "latest" }, latest
        ? `Latest ${formatValue(latest.value)} at ${formatTime(Date.parse(latest.timestamp))}`
        : "No readings yet."),
      toolbar,
      el("p", { className: "hint" }, "Drag across the chart to zoom in; hover for values."),
      this.chartBox, this.legend, this.status,
      this.detectionForm(),
      el("h2", {}, "Events"), this.events);
    if (!latest) {
      this.chartBox.dataset.state = "empty";
      this.chartBox.replaceChildren(message("Send readings to see a chart."));
      return;
    }
    cleanup = () => this.chart && this.chart.destroy();
    this.load(firstView);
  }

  relativeRange(spanMs) {
    const end = Date.parse(this.metric.latest_reading.timestamp) + 1;
    return { start: end - spanMs, end };
  }

  setRange(range) {
    this.range = range;
    if (range === null) this.rangeSelect.value = "all";
    this.load();
  }

  applyCustomRange() {
    const start = Date.parse(`${this.fromInput.value}Z`);
    const end = Date.parse(`${this.toInput.value}Z`);
    if (Number.isNaN(start) || Number.isNaN(end) || start >= end) {
      this.status.replaceChildren(message("Pick a start before the end (times in UTC).", "error"));
      return;
    }
    this.setRange({ start, end });
  }

  currentSpan() {
    return this.range || (this.shown && { start: this.shown.start, end: this.shown.end });
  }

  pan(fraction) {
    const span = this.currentSpan();
    if (!span) return;
    const shift = Math.round((span.end - span.start) * fraction);
    this.setRange({ start: span.start + shift, end: span.end + shift });
  }

  zoomOut() {
    const span = this.currentSpan();
    if (!span) return;
    const half = Math.round((span.end - span.start) / 2);
    this.setRange({ start: span.start - half, end: span.end + half });
  }

  // The series first (the chart is usable at once), then the job's band on the same slots.
  async load(prefetched = null) {
    const load = ++this.loads;
    const stale = () => load !== this.loads || this.token !== renderCount;
    this.chartBox.dataset.state = "loading";
    const window = windowParams(this.range);
    const points = chartPoints(this.chartBox.clientWidth);
    let anomalies;
    try {
      let series;
      [series, anomalies] = await (prefetched || fetchView(this.path, window, points));
      if (stale()) return;
      this.draw(series, anomalies);
    } catch (error) {
      if (stale()) return;
      this.chartBox.dataset.state = "error";
      this.status.replaceChildren(message(`Could not load the chart: ${errorText(error)}`, "error"));
      return;
    }
    const jobId = await this.jobId;
    if (!jobId || stale()) return;
    try {
      const banded = await api(`${this.path}/series`,
        { params: { ...window, points, job_id: jobId } });
      if (!stale()) this.draw(banded, anomalies);
    } catch (error) {
      // The chart stands without it (an expired result, say): say why there is no band.
      if (!stale()) this.status.append(` · no band: ${errorText(error)}`);
    }
  }

  draw(series, anomalies) {
    if (this.chart) this.chart.destroy();
    this.shown = { start: Date.parse(series.start), end: Date.parse(series.end) };
    if (series.start) {
      this.fromInput.value = series.start.slice(0, 19);
      this.toInput.value = series.end.slice(0, 19);
    }
    if (series.readings === 0) {
      this.chart = null;
      this.chartBox.dataset.state = "ready";
      this.chartBox.dataset.markers = "0";
      this.chartBox.dataset.readings = "0";
      this.chartBox.replaceChildren(message("No readings in this range."));
    } else {
      this.chart = drawChart(this.chartBox, series, anomalies.items,
        (start, end) => this.setRange({ start, end }));
    }
    this.drawLegend(series, anomalies.items);
    const parts = [`${formatNumber(series.readings)} readings`];
    if (series.downsampled) {
      parts.push(`min/max of ${formatNumber(series.timestamps_ms.length)} buckets`);
    }
    parts.push(`${formatNumber(anomalies.items.length)}${anomalies.truncated ? "+" : ""} anomalies`);
    if (series.band) parts.push(`band from job ${series.band.job_id.slice(0, 8)} (${series.band.method})`);
    this.status.textContent = parts.join(" · ");
    this.drawEvents(anomalies);
  }

  drawLegend(series, anomalies) {
    const item = (colour, label, className = "swatch") =>
      el("span", { className: "legend-item" },
        el("span", { className, "data-colour": colour }), label);
    const items = [item("#2b6cb0", series.downsampled ? "value (min…max per bucket)" : "value")];
    if (series.band) items.push(item("#2f855a", "expected and bounds"));
    const kinds = [...new Set(anomalies.map(kindOf))];
    for (const kind of kinds) items.push(item(kindColour(kind), kind === NO_KIND ? "anomaly" : kind, "dot"));
    this.legend.replaceChildren(...items);
    // Colours through CSSOM: the page's CSP allows no inline style attributes.
    for (const swatch of this.legend.querySelectorAll("[data-colour]")) {
      swatch.style.background = swatch.dataset.colour;
    }
  }

  drawEvents(anomalies) {
    if (anomalies.items.length === 0) {
      this.events.replaceChildren(message("No anomalies in this range."));
      return;
    }
    const rows = anomalies.items.slice(0, 500).map((a) => el("tr", {},
      el("td", {}, el("button", { type: "button", className: "link", onClick: () => this.zoomTo(a) },
        formatTime(Date.parse(a.timestamp)))),
      el("td", { className: "number" }, formatValue(a.value)),
      el("td", { className: "number" }, formatValue(a.expected)),
      el("td", { className: "number" }, formatValue(a.score)),
      el("td", {}, kindOf(a)),
      el("td", {}, a.method)));
    const shown = [table(["Time", "Value", "Expected", "Score", "Kind", "Method"], rows)];
    if (anomalies.items.length > 500) {
      shown.push(message(`First 500 of ${formatNumber(anomalies.items.length)} shown.`));
    }
    this.events.replaceChildren(...shown);
  }

  zoomTo(anomaly) {
    const span = this.currentSpan();
    const start = Date.parse(anomaly.event_start);
    const end = Date.parse(anomaly.event_end) + 1;
    const margin = Math.max(60e3, span ? (span.end - span.start) / 40 : 0, (end - start) * 2);
    this.setRange({ start: start - margin, end: end + margin });
  }

  detectionForm() {
    const field = (label, input) => el("label", {}, el("span", {}, label), input);
    const method = el("select", { name: "method" },
      el("option", { value: "auto" }, "auto (default detector)"),
      el("option", { value: "rolling" }, "rolling"),
      el("option", { value: "stl" }, "STL"));
    // auto alarms at a probability (sensitivity); sigma is the rolling/STL band.
    const sensitivity = el("input", {
      name: "sensitivity", type: "number", min: "0", max: "0.1", step: "any", placeholder: "0.0003",
    });
    const sigma = el("input", {
      name: "sigma", type: "number", min: "0.1", step: "0.1", placeholder: "3 (rolling, STL)",
    });
    const windowInput = el("input", { name: "window", type: "number", min: "2", placeholder: "auto" });
    const period = el("input", { name: "period", type: "number", min: "2", placeholder: "inferred" });
    const robust = el("input", { name: "robust", type: "checkbox" });
    const visibleOnly = el("input", { name: "visible", type: "checkbox" });
    const progress = el("progress", { max: "1", value: "0", hidden: true });
    const jobStatus = el("div", { id: "job-status" });
    const submit = el("button", { type: "submit" }, "Run detection");
    const form = el("form", { id: "detect", className: "card detect", onSubmit: async (event) => {
      event.preventDefault();
      const body = { metric_id: this.metric.id, method: method.value, robust: robust.checked };
      if (sigma.value) body.sigma_threshold = Number(sigma.value);
      if (sensitivity.value) body.sensitivity = Number(sensitivity.value);
      if (windowInput.value) body.window = Number(windowInput.value);
      if (period.value) body.period = Number(period.value);
      const span = visibleOnly.checked && this.currentSpan();
      if (span) {
        body.start = new Date(span.start).toISOString();
        body.end = new Date(span.end).toISOString();
      }
      submit.disabled = true;
      try {
        await this.runJob(body, progress, jobStatus);
      } finally {
        submit.disabled = false;
      }
    } },
    el("h2", {}, "Run detection"),
    el("div", { className: "fields" },
      field("Method", method), field("Sensitivity (auto)", sensitivity), field("Sigma", sigma),
      field("Window (readings)", windowInput),
      field("Period (readings)", period),
      el("label", { className: "check" }, robust, "robust"),
      el("label", { className: "check" }, visibleOnly, "visible range only")),
    submit, progress, jobStatus);
    return form;
  }

  async runJob(body, progress, jobStatus) {
    jobStatus.replaceChildren(message("Submitting…"));
    let job;
    try {
      const accepted = await api("/api/metrics/anomaly-detection", { method: "POST", body });
      progress.hidden = false;
      progress.value = 0;
      const deadline = Date.now() + 10 * 60e3;
      do {
        job = await api(accepted.status_url);
        progress.value = job.progress;
        jobStatus.replaceChildren(message(
          `Job ${job.id.slice(0, 8)}: ${job.status} ${Math.round(job.progress * 100)}%`));
        if (job.status === "succeeded" || job.status === "failed") break;
        await new Promise((resolve) => setTimeout(resolve, 300));
      } while (Date.now() < deadline);
    } catch (error) {
      progress.hidden = true;
      jobStatus.replaceChildren(message(`Detection was refused: ${detailText(error)}`, "error"));
      return;
    }
    if (job.status === "failed") {
      jobStatus.replaceChildren(message(`Job ${job.id.slice(0, 8)} failed: ${job.error}`, "error"));
      return;
    }
    if (job.status !== "succeeded") {
      jobStatus.replaceChildren(message(`Job ${job.id.slice(0, 8)} is still ${job.status}; see Jobs.`));
      return;
    }
    const summary = job.summary || {};
    jobStatus.replaceChildren(message(
      `Job ${job.id.slice(0, 8)} succeeded: ${formatNumber(summary.flagged)} readings flagged, `
      + `${formatNumber(summary.events)} events, ${formatNumber(summary.anomalies_stored)} anomalies stored.`,
      "success"));
    jobStatus.dataset.jobId = job.id;
    this.jobId = job.id;
    await this.load();
  }
}

// A 422's list of problems, as one line a person can act on.
function detailText(error) {
  if (!(error instanceof ApiError)) return String(error);
  try {
    const detail = JSON.parse(error.message);
    if (Array.isArray(detail)) {
      return detail.map((p) => `${p.loc.filter((part) => part !== "body").join(".")}: ${p.msg}`).join("; ");
    }
  } catch {
    // not a list of problems: the message is the detail
  }
  return errorText(error);
}

// --- jobs ----------------------------------------------------------------------------------
const JOBS_PAGE = 50;

// Newer / Older buttons of an offset-paged list; `show(token, offset)` draws that page.
function pager(offset, nextOffset, pageSize, show) {
  const go = (to) => () => show(++renderCount, to);
  return el("div", { className: "pager" },
    offset > 0 ? el("button", { type: "button", onClick: go(Math.max(0, offset - pageSize)) }, "Newer") : null,
    nextOffset !== null ? el("button", { type: "button", onClick: go(nextOffset) }, "Older") : null);
}

async function jobsPage(token, offset = 0) {
  page("Jobs", message("Loading…"));
  const list = await api("/api/jobs", { params: { limit: JOBS_PAGE, offset } });
  if (token !== renderCount) return;
  if (list.jobs.length === 0) {
    page("Jobs", message("No jobs yet: run detection from a metric's page."));
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
  page("Jobs",
    table(["Submitted", "Kind", "Metric", "Status", "Progress", "Method", "Flagged", "Error"], rows),
    pager(offset, list.next_offset, JOBS_PAGE, jobsPage));
}

// --- incidents -----------------------------------------------------------------------------
// Each listed incident's detail is read for its top cause: a page is kept short.
const INCIDENTS_PAGE = 20;
const MINUTE_MS = 60e3;

function incidentPath(incidentId) {
  return `/api/incidents/${encodeURIComponent(incidentId)}`;
}

function incidentHref(incidentId) {
  return `#/incidents/${encodeURIComponent(incidentId)}`;
}

// What a person acts on: open, acknowledged (still open, someone is on it), or resolved.
function incidentState(incident) {
  if (incident.status === "resolved") return "resolved";
  return incident.acknowledged_at ? "acknowledged" : "open";
}

function stateBadge(incident) {
  const state = incidentState(incident);
  return el("span", { className: `badge ${state}`, id: "incident-state" }, state);
}

// The incident's anomalous stretch with as much again on each side (30 min at least), so
// that a cause's chart shows the metric before and after it.
function incidentRange(incident) {
  const start = Date.parse(incident.started_at);
  const end = Date.parse(incident.ended_at) + 1;
  const margin = Math.max(30 * MINUTE_MS, end - start);
  return { start: start - margin, end: end + margin };
}

async function incidentsPage(token, offset = 0) {
  page("Incidents", message("Loading…"));
  const list = await api("/api/incidents", { params: { limit: INCIDENTS_PAGE, offset } });
  if (token !== renderCount) return;
  if (list.incidents.length === 0 && offset === 0) {
    page("Incidents", message(
      "No incidents yet: detection opens one when related metrics turn anomalous together."));
    return;
  }
  const rows = list.incidents.map((incident) => {
    const cause = el("td", { className: "top-cause" }, "…");
    fillTopCause(incident, cause);
    return el("tr", { "data-incident": incident.id },
      el("td", {}, el("span", { className: `badge ${incidentState(incident)}` }, incidentState(incident))),
      el("td", {}, el("a", { href: incidentHref(incident.id) }, formatTime(Date.parse(incident.opened_at)))),
      el("td", {}, formatTime(Date.parse(incident.updated_at))),
      el("td", { className: "number" }, formatNumber(incident.members)),
      cause);
  });
  page("Incidents",
    table(["State", "Opened", "Updated", "Anomalies", "Top cause"], rows),
    pager(offset, list.next_offset, INCIDENTS_PAGE, incidentsPage));
}

// The list holds no causes (they are ranked when an incident is read): each row asks.
async function fillTopCause(incident, cell) {
  try {
    const detail = await api(incidentPath(incident.id));
    const top = detail.probable_causes[0];
    cell.textContent = top ? top.metric : "–";
  } catch (error) {
    cell.textContent = "?";
    cell.title = errorText(error);
  }
}

async function incidentPage(token, incidentId) {
  page("Incident", message("Loading…"));
  const detail = await readOwned(incidentPath(incidentId), "Incident",
    el("p", {}, el("a", { href: "#/incidents" }, "Back to your incidents")));
  if (detail === null || token !== renderCount) return;
  showIncident(token, detail);
}

function showIncident(token, detail, note = null) {
  const state = incidentState(detail);
  const status = el("div", { id: "incident-status" }, note);
  // POSTs `change` (acknowledge, resolve), then draws the incident again as it now is.
  const changeButton = (change, label, done, enabled) => el("button", {
    type: "button", id: change, disabled: !enabled, onClick: async (event) => {
      event.target.disabled = true;
      status.replaceChildren(message(`${label}…`));
      try {
        await api(`${incidentPath(detail.id)}/${change}`, { method: "POST" });
        const fresh = await api(incidentPath(detail.id));
        if (token === renderCount) showIncident(token, fresh, message(done, "success"));
      } catch (error) {
        status.replaceChildren(message(`Could not ${change} it: ${errorText(error)}`, "error"));
        event.target.disabled = false;
      }
    },
  }, label);
  const range = incidentRange(detail);
  const causes = detail.probable_causes.map((cause) => el("tr", {},
    el("td", { className: "number" }, String(cause.rank)),
    el("td", {}, el("a", { href: metricHref(cause.metric_id, range) }, cause.metric)),
    el("td", {}, formatTime(Date.parse(cause.onset_at))),
    el("td", { className: "number" }, cause.peak_score.toFixed(1)), // as the reasons write it
    el("td", { className: "number" }, formatNumber(cause.anomalies)),
    el("td", { className: "wrap" }, cause.reasons.join("; "))));
  const timeline = el("ol", { className: "timeline", id: "timeline" }, detail.timeline.map((entry) =>
    el("li", { className: entry.event },
      el("time", { datetime: entry.at }, formatTime(Date.parse(entry.at))), " ", entry.text)));
  const members = `${formatNumber(detail.members)} anomal${detail.members === 1 ? "y" : "ies"}`;
  page(detail.title,
    el("nav", { className: "crumbs" }, el("a", { href: "#/incidents" }, "Incidents"), " › ", detail.title),
    el("p", { className: "incident-facts" }, stateBadge(detail),
      ` ${members} in ${detail.services.join(", ") || "deleted services"}`,
      ` · from ${formatTime(Date.parse(detail.started_at))} to ${formatTime(Date.parse(detail.ended_at))}`,
      ` · opened ${formatTime(Date.parse(detail.opened_at))}, updated ${formatTime(Date.parse(detail.updated_at))}`),
    el("div", { className: "actions" },
      changeButton("acknowledge", "Acknowledge", "Acknowledged: the incident shows someone is on it.",
        state === "open"),
      changeButton("resolve", "Resolve", "Resolved: new anomalies of these metrics open a new incident.",
        state !== "resolved"),
      status),
    detail.summary ? el("p", {}, `Why the first cause ranks first: ${detail.summary}.`) : null,
    el("h2", {}, "Probable causes"),
    el("p", { className: "hint" }, "Most probable first; each opens the metric's chart on the incident's time."),
    causes.length === 0
      ? message("No anomalies left: their metrics were deleted.")
      : table(["Rank", "Metric", "Onset", "Peak score", "Anomalies", "Why"], causes),
    el("h2", {}, "Timeline"),
    timeline,
    detail.anomalies_truncated
      ? message(`Causes and timeline are from the first ${formatNumber(detail.anomalies.length)} anomalies.`)
      : null);
}

// --- routing -------------------------------------------------------------------------------
const ROUTES = [
  [/^#?\/?$/, servicesPage],
  [/^#\/services\/([^/]+)$/, servicePage],
  [/^#\/metrics\/([^/?]+)(?:\?(.*))?$/, metricPage],
  [/^#\/jobs$/, jobsPage],
  [/^#\/incidents$/, incidentsPage],
  [/^#\/incidents\/([^/]+)$/, incidentPage],
];

async function render() {
  cleanup();
  cleanup = () => {};
  const token = ++renderCount;
  if (!storedKey()) {
    signInPage();
    return;
  }
  document.getElementById("nav").hidden = false;
  const hash = window.location.hash;
  for (const [pattern, show] of ROUTES) {
    const match = hash.match(pattern);
    if (!match) continue;
    try {
      const parts = match.slice(1).map((part) => (part === undefined ? part : decodeURIComponent(part)));
      await show(token, ...parts);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        forgetKey();
        render();
        return;
      }
      if (token === renderCount) page("Something went wrong", message(errorText(error), "error"));
    }
    return;
  }
  page("Page not found", el("p", {}, el("a", { href: "#/" }, "Back to your services")));
}

document.getElementById("sign-out").addEventListener("click", () => {
  forgetKey();
  window.location.hash = "#/";
  render();
});
window.addEventListener("hashchange", render);
if (typeof uPlot === "undefined") {
  main.replaceChildren(message(
    "The chart library is missing: run `make run` (it installs web/ui/node_modules).", "error"));
} else {
  render();
}
