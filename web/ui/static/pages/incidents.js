// The caller's incidents, newest first, a page at a time, each with its top cause.
import { errorText } from "../api.js";
import { el, message, pager, table } from "../dom.js";
import { formatNumber, formatTime } from "../format.js";
import { incidentPath, stateBadge } from "../incident-state.js";
import { incidentHref } from "../links.js";

// Each listed incident's detail is read for its top cause: a page is kept short.
const INCIDENTS_PAGE = 20;

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
      const cause = el("td", { className: "top-cause" }, "…");
      fillTopCause(ctx, incident, cause);
      return el("tr", { "data-incident": incident.id },
        el("td", {}, stateBadge(incident)),
        el("td", {}, el("a", { href: incidentHref(incident.id) }, formatTime(Date.parse(incident.opened_at)))),
        el("td", {}, formatTime(Date.parse(incident.updated_at))),
        el("td", { className: "number" }, formatNumber(incident.members)),
        cause);
    });
    ctx.show("Incidents",
      table(["State", "Opened", "Updated", "Anomalies", "Top cause"], rows),
      pager(offset, list.next_offset, INCIDENTS_PAGE, (to) => showPage(to).catch((error) => ctx.report(error))));
  }

  return showPage(0);
}

// The list holds no causes (they are ranked when an incident is read): each row asks.
async function fillTopCause(ctx, incident, cell) {
  try {
    const detail = await ctx.api.request(incidentPath(incident.id));
    const top = detail.probable_causes[0];
    cell.textContent = top ? top.metric : "–";
  } catch (error) {
    if (!ctx.active) return;
    cell.textContent = "?";
    cell.title = errorText(error);
  }
}
