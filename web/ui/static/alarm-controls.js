// What people control about alarms from the dashboard: their verdict on an anomaly, a
// metric's own detection settings, and a maintenance window over the span a chart shows.
import { detailText, errorText } from "./api.js";
import { el, message } from "./dom.js";

const VERDICTS = [["confirmed", "Confirmed"], ["false_positive", "False positive"]];

function field(label, input) {
  return el("label", {}, el("span", {}, label), input);
}

// Two buttons saying whether `anomaly` was real; the verdict given is the pressed one.
// Pressing it again withdraws it (what it taught the detector is forgotten).
export function feedbackButtons(ctx, anomaly) {
  const box = el("span", { className: "feedback", "data-anomaly-id": anomaly.id });
  const button = (verdict, label, given) => el("button", {
    type: "button", className: "verdict", "data-verdict": verdict,
    "aria-pressed": String(given === verdict),
    title: given === verdict ? "Press again to withdraw this verdict" : null,
    onClick: async () => {
      try {
        const saved = await ctx.api.request(
          `/api/anomalies/${encodeURIComponent(anomaly.id)}/feedback`,
          given === verdict ? { method: "DELETE" } : { method: "POST", body: { verdict } });
        anomaly.feedback = saved.feedback;
        draw(saved.feedback);
      } catch (error) {
        if (ctx.active) draw(given, message(`Not saved: ${errorText(error)}`, "error"));
      }
    },
  }, label);
  function draw(given, problem = null) {
    const shown = VERDICTS.map(([verdict, label]) => button(verdict, label, given));
    box.replaceChildren(...shown, ...(problem ? [problem] : []));
  }
  draw(anomaly.feedback);
  return box;
}

// The metric's own detection settings (PATCH /api/metrics/{id}), shown as they are.
export function detectionSettingsForm(ctx, metric) {
  const current = metric.detection || {};
  const sensitivity = el("input", {
    name: "metric-sensitivity", type: "number", min: "0", max: "0.1", step: "any",
    placeholder: "0.0003", value: current.sensitivity ?? "",
  });
  const direction = el("select", { name: "direction" },
    ["both", "up", "down"].map((d) => el("option", { value: d, selected: (current.direction || "both") === d },
      d === "both" ? "up and down" : `${d} only`)));
  const minDeviation = el("input", {
    name: "min-deviation", type: "number", min: "0", step: "any", placeholder: "0",
    value: current.min_deviation ?? "",
  });
  const minRelative = el("input", {
    name: "min-relative-deviation", type: "number", min: "0", step: "any", placeholder: "0 (0.1 = 10%)",
    value: current.min_relative_deviation ?? "",
  });
  const status = el("div", { id: "settings-status" });
  const number = (input) => (input.value === "" ? null : Number(input.value));
  return el("form", { id: "metric-settings", className: "card", onSubmit: async (event) => {
    event.preventDefault();
    const detection = {
      sensitivity: number(sensitivity),
      direction: direction.value === "both" ? null : direction.value,
      min_deviation: number(minDeviation),
      min_relative_deviation: number(minRelative),
    };
    status.replaceChildren(message("Saving…"));
    try {
      const saved = await ctx.api.request(`/api/metrics/${encodeURIComponent(metric.id)}`,
        { method: "PATCH", body: { detection } });
      metric.detection = saved.detection;
      status.replaceChildren(message("Saved: scans and new jobs of this metric use them.", "success"));
    } catch (error) {
      if (ctx.active) status.replaceChildren(message(`Not saved: ${detailText(error)}`, "error"));
    }
  } },
  el("h2", {}, "Detection settings"),
  el("p", { className: "hint" }, "This metric's own: its scans use them, its jobs start from them."),
  el("div", { className: "fields" },
    field("Sensitivity (auto)", sensitivity), field("Alarm on", direction),
    field("Min deviation", minDeviation), field("Min relative deviation", minRelative)),
  el("button", { type: "submit" }, "Save settings"), status);
}

// Mutes the span the chart shows (`currentSpan()`: {start, end} in ms), for this metric or
// its whole service; `onCreated()` redraws the chart with it shaded.
export function maintenanceForm(ctx, metric, { currentSpan, onCreated }) {
  const reason = el("input", { name: "reason", type: "text", maxlength: "500", placeholder: "deploy, drill, backup…" });
  const target = el("select", { name: "target" },
    el("option", { value: "metric" }, "this metric"),
    el("option", { value: "service" }, "its whole service"));
  const status = el("div", { id: "maintenance-status" });
  return el("form", { id: "maintenance", className: "card", onSubmit: async (event) => {
    event.preventDefault();
    const span = currentSpan();
    if (!span) {
      status.replaceChildren(message("Drag across the chart to choose the span first.", "error"));
      return;
    }
    const body = {
      reason: reason.value.trim() || "maintenance",
      start: new Date(span.start).toISOString(),
      end: new Date(span.end).toISOString(),
      [target.value === "service" ? "service_id" : "metric_id"]:
        target.value === "service" ? metric.service_id : metric.id,
    };
    let created;
    try {
      created = await ctx.api.request("/api/maintenance-windows", { method: "POST", body });
    } catch (error) {
      if (ctx.active) status.replaceChildren(message(`Not created: ${detailText(error)}`, "error"));
      return;
    }
    // The anomalies already stored in the span are muted by a worker just after (the chart
    // says when it is done).
    status.replaceChildren(message("Muted: anomalies in this span open no incident"
      + (created.reach_pending ? "; muting the ones already stored in it…" : "."), "success"));
    await onCreated();
  } },
  el("h2", {}, "Mute the span shown"),
  el("p", { className: "hint" }, "Drag across the chart to choose it; readings are still stored and judged."),
  el("div", { className: "fields" }, field("Reason", reason), field("Mute", target)),
  el("button", { type: "submit" }, "Create maintenance window"), status);
}
