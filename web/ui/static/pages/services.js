// The caller's services: the dashboard's home page.
import { el, message, table } from "../dom.js";
import { formatTime } from "../format.js";
import { serviceHref } from "../links.js";

export async function mount(ctx) {
  ctx.show("Services", message("Loading…"));
  const services = await ctx.api.request("/api/services");
  if (services.length === 0) {
    ctx.show("Services", message("No services yet: create one with POST /api/services (see /docs)."));
    return;
  }
  ctx.show("Services", table(["Name", "Description", "Created"], services.map((s) =>
    el("tr", {},
      el("td", {}, el("a", { href: serviceHref(s.id) }, s.name)),
      el("td", {}, s.description || ""),
      el("td", {}, formatTime(Date.parse(s.created_at)))))));
}
