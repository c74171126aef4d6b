// An incident: its probable causes (each opening its metric's chart on the incident's
// time), its timeline, and Acknowledge and Resolve.
import { feedbackButtons } from "../alarm-controls.js";
import { errorText } from "../api.js";
import { el, message, table } from "../dom.js";
import { counted, formatNumber, formatTime } from "../format.js";
import { incidentPath, incidentState, stateBadge } from "../incident-state.js";
import { metricHref } from "../links.js";
import { readOwned } from "./not-found.js";

const MINUTE_MS = 60e3;
const MAX_ANOMALY_ROWS = 200;

export async function mount(ctx) {
  ctx.show("Incident", message("Loading…"));
  const detail = await readOwned(ctx, incidentPath(ctx.params.incidentId), "Incident",
    el("p", {}, el("a", { href: "#/incidents" }, "Back to your incidents")));
  if (detail === null) return;
  showIncident(ctx, detail);
}

// Where an incident's anomalies are; none left: muted by a window made later, or deleted.
function whereMembers(detail) {
  if (detail.services.length) return `in ${detail.services.join(", ")}`;
  return detail.resolved_by === "maintenance" ? "left: muted by a maintenance window" : "in deleted services";
}

// The incident's anomalous stretch with as much again on each side (30 min at least), so
// that a cause's chart shows the metric before and after it.
function incidentRange(incident) {
  const start = Date.parse(incident.started_at);
  const end = Date.parse(incident.ended_at) + 1;
  const margin = Math.max(30 * MINUTE_MS, end - start);
  return { start: start - margin, end: end + margin };
}

function showIncident(ctx, detail, note = null) {
  const state = incidentState(detail);
  const status = el("div", { id: "incident-status" }, note);
  // POSTs `change` (acknowledge, resolve), then draws the incident again as it now is.
  const changeButton = (change, label, done, enabled) => el("button", {
    type: "button", id: change, disabled: !enabled, onClick: async (event) => {
      event.target.disabled = true;
      status.replaceChildren(message(`${label}…`));
      try {
        await ctx.api.request(`${incidentPath(detail.id)}/${change}`, { method: "POST" });
        const fresh = await ctx.api.request(incidentPath(detail.id));
        showIncident(ctx, fresh, message(done, "success"));
      } catch (error) {
        if (!ctx.active) return;
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
  ctx.show(detail.title,
    el("nav", { className: "crumbs" }, el("a", { href: "#/incidents" }, "Incidents"), " › ", detail.title),
    el("p", { className: "incident-facts" }, stateBadge(detail, { id: "incident-state" }),
      ` ${counted(detail.members, "anomaly", "anomalies")} ${whereMembers(detail)}`,
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
      ? message(detail.resolved_by === "maintenance"
        ? "No anomalies left: a maintenance window made later covers every one."
        : "No anomalies left: their metrics were deleted.")
      : el("div", { id: "causes" }, table(["Rank", "Metric", "Onset", "Peak score", "Anomalies", "Why"], causes)),
    el("h2", {}, "Timeline"),
    timeline,
    el("h2", {}, "Anomalies"),
    el("p", { className: "hint" }, "Say whether each was real: the verdict stays on the anomaly."),
    el("div", { id: "incident-anomalies" }, table(["Time", "Metric", "Value", "Score", "Kind", "Verdict"],
      detail.anomalies.slice(0, MAX_ANOMALY_ROWS).map((a) => el("tr", {},
        el("td", {}, formatTime(Date.parse(a.timestamp))),
        el("td", {}, `${a.service_name}/${a.metric_name}`),
        el("td", { className: "number" }, formatNumber(a.value)),
        el("td", { className: "number" }, a.score.toFixed(1)),
        el("td", {}, a.kind || "anomaly"),
        el("td", {}, feedbackButtons(ctx, a)))))),
    detail.anomalies.length > MAX_ANOMALY_ROWS
      ? message(`First ${MAX_ANOMALY_ROWS} of ${formatNumber(detail.anomalies.length)} shown.`)
      : null,
    detail.anomalies_truncated
      ? message(`Causes and timeline are from the first ${counted(detail.anomalies.length, "anomaly", "anomalies")}.`)
      : null);
}
