// The caller's incidents, newest first, a page at a time, each with its top cause (the
// list carries it: one request per page).
import { el, message, pager, table } from "../dom.js";
import { formatNumber, formatTime } from "../format.js";
import { stateBadge } from "../incident-state.js";
import { incidentHref } from "../links.js";

const INCIDENTS_PAGE = 50;

export function mount(ctx) {
  let shown = 0; // a page of the list that loads after a newer one was asked draws nothing

  async function showPage(offset) {
    const showing = ++shown;
    ctx.show("Incidents", message("Loading…"));
    const list = await ctx.api.request("/api/incidents", { params: { limit: INCIDENTS_PAGE, offset } });
    if (showing !== shown) return;
    if (list.incidents.length === 0 && offset === 0) {
      ctx.show("Incidents", message(
        "No incidents yet: detection opens one when related metrics turn anomalous together."));
      return;
    }
    const rows = list.incidents.map((incident) => {
      const top = incident.top_cause;
      return el("tr", { "data-incident": incident.id, title: incident.title },
        el("td", {}, stateBadge(incident)),
        el("td", {}, el("a", { href: incidentHref(incident.id) }, formatTime(Date.parse(incident.opened_at)))),
        el("td", {}, formatTime(Date.parse(incident.updated_at))),
        el("td", { className: "number" }, formatNumber(incident.members)),
        el("td", { className: "top-cause", title: top ? top.reasons.join("\n") : "" }, top ? top.metric : "–"));
    });
    ctx.show("Incidents",
      table(["State", "Opened", "Updated", "Anomalies", "Top cause"], rows),
      pager(offset, list.next_offset, INCIDENTS_PAGE, (to) => showPage(to).catch((error) => ctx.report(error))));
  }

  return showPage(0);
}
