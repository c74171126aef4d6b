// The metric page's view: the chart with its toolbar (range picker, from/to, pan, zoom),
// legend and status line, the events table, and the detection form; it fetches the span
// shown, then the band of the job chosen (the newest succeeded one, or one just run).
import { detectionSettingsForm, feedbackButtons, maintenanceForm } from "./alarm-controls.js";
import { errorText } from "./api.js";
import {
  EXPECTED_COLOUR, MAINTENANCE_FILL, MUTED_COLOUR, NO_KIND, VALUE_COLOUR, drawChart, kindColour,
  kindOf,
} from "./chart.js";
import { detectionForm } from "./detection-form.js";
import { el, message, table } from "./dom.js";
import { counted, formatNumber, formatTime, formatValue } from "./format.js";
import { serviceHref, windowParams } from "./links.js";

const MAX_MARKERS = 10000;
const MAX_EVENT_ROWS = 500;
const RANGES = [
  ["all", "All", null],
  ["1h", "Last hour", 3600e3],
  ["6h", "Last 6 h", 6 * 3600e3],
  ["24h", "Last 24 h", 24 * 3600e3],
  ["7d", "Last 7 days", 7 * 24 * 3600e3],
  ["30d", "Last 30 days", 30 * 24 * 3600e3],
];

// How soon, and at most how seldom, the chart asks again whether a maintenance window's
// reach into the past is applied (a worker does it, usually within seconds).
const REACH_POLL_MS = 1000;
const REACH_POLL_MAX_MS = 30000;

// The maintenance windows of `spans` whose reach into the past is still being applied.
function pendingWindows(spans) {
  return new Set(spans.filter((span) => span.reach_pending).map((span) => span.window_id)).size;
}

// About one slot per pixel of the chart's width.
export function chartPoints(width) {
  return Math.max(100, Math.min(2000, Math.round(width)));
}

// The series (no band) and the anomalies of a window: what a first draw needs.
export function fetchView(api, path, window, points) {
  return Promise.all([
    api.request(`${path}/series`, { params: { ...window, points } }),
    api.allPages(`${path}/anomalies`, { ...window, limit: 10000 }, "anomalies", MAX_MARKERS),
  ]);
}

// How far periodic scans have judged the metric: "Scans judged readings through 10:05
// (at 10:06, 1.2 s after it arrived)", and what they said of it, if anything.
function scanStatus(metric) {
  const box = el("p", { id: "scan-status", className: "hint" });
  // A detector rebuild a later sweep makes (after a settings change or an upgrade): since
  // when it waits, and so how long the newer readings have waited (the lag, growing).
  const waiting = metric.scan_waiting_since
    ? ` Its detector waits to be rebuilt by a later sweep (a settings change or an upgrade)`
      + ` since ${formatTime(Date.parse(metric.scan_waiting_since))}: its newer readings have`
      + ` waited ${formatValue(metric.scan_lag_seconds)} s so far.`
    : "";
  if (!metric.last_judged_at) {
    box.append((metric.scan_note || "Not judged by a periodic scan yet.") + waiting);
    return box;
  }
  const lag = metric.scan_lag_seconds === null || waiting ? "" : `, ${formatValue(metric.scan_lag_seconds)} s after it arrived`;
  box.append(`Scans judged readings through ${formatTime(Date.parse(metric.judged_through))}`
    + ` (at ${formatTime(Date.parse(metric.last_judged_at))}${lag}).${waiting}`);
  if (metric.scan_note) box.append(` ${metric.scan_note}.`);
  return box;
}

// A legend entry: a swatch (or dot) of `colour`, then its label. The colour goes through
// CSSOM: the page's CSP allows no inline style attributes.
function legendItem(colour, label, className = "swatch") {
  const swatch = el("span", { className });
  swatch.style.background = colour;
  return el("span", { className: "legend-item" }, swatch, label);
}

export class MetricView {
  // `latestJob`: a promise of the id of the job whose band to draw (or of null);
  // `range`: {start, end} in epoch ms, or null for every reading.
  constructor(ctx, metric, path, latestJob, range) {
    this.ctx = ctx;
    this.metric = metric;
    this.path = path;
    this.range = range;
    this.jobId = latestJob;
    this.chart = null;
    this.loads = 0;
  }

  // Shows the page, drawing the chart from `firstView` (fetchView's promise, already asked).
  show(firstView) {
    const latest = this.metric.latest_reading;
    const serviceLink = el("a", { href: serviceHref(this.metric.service_id) }, "service");
    this.ctx.api.request(`/api/services/${encodeURIComponent(this.metric.service_id)}`)
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
    const form = detectionForm(this.ctx, this.metric.id, {
      currentSpan: () => this.currentSpan(),
      onSucceeded: (jobId) => {
        this.jobId = jobId;
        return this.load();
      },
    });
    this.ctx.show(this.metric.name,
      el("nav", { className: "crumbs" },
        el("a", { href: "#/" }, "Services"), " › ",
        serviceLink,
        " › ", this.metric.name),
      el("p", { className: "latest" }, latest
        ? `Latest ${formatValue(latest.value)} at ${formatTime(Date.parse(latest.timestamp))}`
        : "No readings yet."),
      scanStatus(this.metric),
      toolbar,
      el("p", { className: "hint" }, "Drag across the chart to zoom in; hover for values."),
      this.chartBox, this.legend, this.status,
      form,
      el("h2", {}, "Events"), this.events,
      maintenanceForm(this.ctx, this.metric, {
        currentSpan: () => this.currentSpan(),
        onCreated: () => this.load(),
      }),
      detectionSettingsForm(this.ctx, this.metric));
    if (!latest) {
      this.chartBox.dataset.state = "empty";
      this.chartBox.replaceChildren(message("Send readings to see a chart."));
      return;
    }
    this.ctx.onUnmount(() => this.chart && this.chart.destroy());
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
    const stale = () => load !== this.loads || !this.ctx.active;
    this.chartBox.dataset.state = "loading";
    const window = windowParams(this.range);
    const points = chartPoints(this.chartBox.clientWidth);
    let anomalies;
    try {
      let series;
      [series, anomalies] = await (prefetched || fetchView(this.ctx.api, this.path, window, points));
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
      const banded = await this.ctx.api.request(`${this.path}/series`,
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
      this.shadeMaintenance(this.chart, series);
    }
    this.drawLegend(series, anomalies.items);
    const parts = [counted(series.readings, "reading")];
    if (series.downsampled) parts.push(`min/max of ${counted(series.timestamps_ms.length, "bucket")}`);
    parts.push(anomalies.truncated
      ? `${formatNumber(anomalies.items.length)}+ anomalies`
      : counted(anomalies.items.length, "anomaly", "anomalies"));
    // The band is always one the user ran (periodic scans keep no result): say which.
    if (series.band) parts.push(`band from your job ${series.band.job_id.slice(0, 8)} (${series.band.method})`);
    this.status.textContent = parts.join(" · ");
    this.drawEvents(anomalies);
  }

  // The spans the metric's maintenance windows mute, shaded once they arrive (the chart
  // stands without them). A window whose reach into the past a worker is still applying
  // (`reach_pending`: the anomalies already stored in it are not muted yet) says so, and
  // the chart is drawn again once it is applied, with those anomalies muted.
  async shadeMaintenance(chart, series) {
    const spans = await this.maintenanceSpans(chart, series);
    if (spans === null) return;
    chart.shade(spans);
    const pending = pendingWindows(spans);
    this.chartBox.dataset.maintenancePending = String(pending);
    if (spans.length) {
      this.legend.append(legendItem(MAINTENANCE_FILL,
        pending ? "maintenance window (muting past anomalies…)" : "maintenance window"));
      this.status.append(` · ${counted(spans.length, "maintenance span")}`);
    }
    if (pending) {
      this.status.append(` · muting the anomalies already stored in ${counted(pending, "window")}…`);
      this.awaitReaches(chart, series);
    }
  }

  // The spans of the windows over the chart's range; null: none to show (the page or chart
  // changed meanwhile, or the request failed: said in the status line).
  async maintenanceSpans(chart, series) {
    let found;
    try {
      found = await this.ctx.api.request("/api/maintenance-windows/spans",
        { params: { metric_id: this.metric.id, start: series.start, end: series.end } });
    } catch (error) {
      if (chart === this.chart) this.status.append(` · no maintenance spans: ${errorText(error)}`);
      return null;
    }
    return chart === this.chart && this.ctx.active ? found.spans : null;
  }

  // Asks again, less and less often, until no window over the chart has its reach pending,
  // then draws the chart again (its anomalies as muted now). Stops with the chart or page.
  async awaitReaches(chart, series) {
    for (let wait = REACH_POLL_MS; ; wait = Math.min(wait * 2, REACH_POLL_MAX_MS)) {
      await this.ctx.sleep(wait);
      if (chart !== this.chart) return;
      const spans = await this.maintenanceSpans(chart, series);
      if (spans === null) return;
      if (!pendingWindows(spans)) {
        this.load();
        return;
      }
    }
  }

  drawLegend(series, anomalies) {
    const items = [legendItem(VALUE_COLOUR, series.downsampled ? "value (min…max per bucket)" : "value")];
    if (series.band) items.push(legendItem(EXPECTED_COLOUR, "expected and bounds"));
    const kinds = [...new Set(anomalies.filter((a) => !a.muted).map(kindOf))];
    for (const kind of kinds) items.push(legendItem(kindColour(kind), kind === NO_KIND ? "anomaly" : kind, "dot"));
    if (anomalies.some((a) => a.muted)) items.push(legendItem(MUTED_COLOUR, "muted (maintenance)", "dot"));
    this.legend.replaceChildren(...items);
  }

  drawEvents(anomalies) {
    if (anomalies.items.length === 0) {
      this.events.replaceChildren(message("No anomalies in this range."));
      return;
    }
    const rows = anomalies.items.slice(0, MAX_EVENT_ROWS).map((a) => el("tr", {},
      el("td", {}, el("button", { type: "button", className: "link", onClick: () => this.zoomTo(a) },
        formatTime(Date.parse(a.timestamp)))),
      el("td", { className: "number" }, formatValue(a.value)),
      el("td", { className: "number" }, formatValue(a.expected)),
      el("td", { className: "number" }, formatValue(a.score)),
      el("td", {}, a.muted ? `${kindOf(a)} (muted)` : kindOf(a)),
      el("td", {}, a.method),
      el("td", {}, feedbackButtons(this.ctx, a))));
    const shown = [table(["Time", "Value", "Expected", "Score", "Kind", "Method", "Verdict"], rows)];
    if (anomalies.items.length > MAX_EVENT_ROWS) {
      shown.push(message(`First ${MAX_EVENT_ROWS} of ${formatNumber(anomalies.items.length)} shown.`));
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
}
