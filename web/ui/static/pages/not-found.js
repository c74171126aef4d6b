// Not found: a hash no page answers, or an id that is not the caller's (another user's
// looks the same as none, as the API answers 404 for both).
import { ApiError } from "../api.js";
import { el, message } from "../dom.js";

export function mount(ctx) {
  ctx.show("Page not found", el("p", {}, el("a", { href: "#/" }, "Back to your services")));
}

// The object at `path`, or null after showing "<What> not found" with `back` (a link).
export async function readOwned(ctx, path, what, back = null) {
  try {
    return await ctx.api.request(path);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      ctx.show(`${what} not found`, message(`No ${what.toLowerCase()} of yours has this id.`, "error"),
        back);
      return null;
    }
    throw error;
  }
}
