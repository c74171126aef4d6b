// The metric page's "Run detection" form: submits a job, follows its progress, and says
// how it ended.
import { detailText } from "./api.js";
import { el, message } from "./dom.js";
import { counted } from "./format.js";

const POLL_MS = 300;
const GIVE_UP_MS = 10 * 60e3;

// `currentSpan()`: the chart's visible {start, end} (for "visible range only"), or null;
// `onSucceeded(jobId)`: called once a job succeeded, to draw its result.
export function detectionForm(ctx, metricId, { currentSpan, onSucceeded }) {
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
  const show = (text, kind) => jobStatus.replaceChildren(message(text, kind));

  // Submits `body` and polls the job until it is final (or 10 minutes passed).
  async function runJob(body) {
    show("Submitting…");
    let job;
    try {
      const accepted = await ctx.api.request("/api/metrics/anomaly-detection", { method: "POST", body });
      progress.hidden = false;
      progress.value = 0;
      const deadline = Date.now() + GIVE_UP_MS;
      do {
        job = await ctx.api.request(accepted.status_url);
        progress.value = job.progress;
        show(`Job ${job.id.slice(0, 8)}: ${job.status} ${Math.round(job.progress * 100)}%`);
        if (job.status === "succeeded" || job.status === "failed") break;
        await ctx.sleep(POLL_MS);
      } while (Date.now() < deadline);
    } catch (error) {
      if (!ctx.active) return;
      progress.hidden = true;
      show(`Detection was refused: ${detailText(error)}`, "error");
      return;
    }
    const name = `Job ${job.id.slice(0, 8)}`;
    if (job.status === "failed") {
      show(`${name} failed: ${job.error}`, "error");
      return;
    }
    if (job.status !== "succeeded") {
      show(`${name} is still ${job.status}; see Jobs.`);
      return;
    }
    const summary = job.summary || {};
    show(`${name} succeeded: ${counted(summary.flagged, "reading")} flagged, `
      + `${counted(summary.events, "event")}, ${counted(summary.anomalies_stored, "anomaly", "anomalies")} stored.`,
    "success");
    jobStatus.dataset.jobId = job.id;
    await onSucceeded(job.id);
  }

  return el("form", { id: "detect", className: "card detect", onSubmit: async (event) => {
    event.preventDefault();
    const body = { metric_id: metricId, method: method.value, robust: robust.checked };
    if (sigma.value) body.sigma_threshold = Number(sigma.value);
    if (sensitivity.value) body.sensitivity = Number(sensitivity.value);
    if (windowInput.value) body.window = Number(windowInput.value);
    if (period.value) body.period = Number(period.value);
    const span = visibleOnly.checked && currentSpan();
    if (span) {
      body.start = new Date(span.start).toISOString();
      body.end = new Date(span.end).toISOString();
    }
    submit.disabled = true;
    try {
      await runJob(body);
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
}
