// What the incidents list and an incident's page both say of an incident.
import { el } from "./dom.js";

export function incidentPath(incidentId) {
  return `/api/incidents/${encodeURIComponent(incidentId)}`;
}

// What a person acts on: open, acknowledged (still open, someone is on it), or resolved.
export function incidentState(incident) {
  if (incident.status === "resolved") return "resolved";
  return incident.acknowledged_at ? "acknowledged" : "open";
}

export function stateBadge(incident, props = {}) {
  const state = incidentState(incident);
  return el("span", { className: `badge ${state}`, ...props }, state);
}
