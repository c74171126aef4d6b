// Sign in: the key is checked against the API, then kept in this tab only.
import { ApiError, errorText } from "../api.js";
import { el, message } from "../dom.js";

export function mount(ctx) {
  const input = el("input", {
    id: "api-key", type: "password", autocomplete: "off", spellcheck: "false", required: true,
    placeholder: "nno_…",
  });
  const status = el("div", { id: "sign-in-status" });
  const form = el("form", { className: "card sign-in", onSubmit: async (event) => {
    event.preventDefault();
    status.replaceChildren(message("Checking the key…"));
    try {
      await ctx.api.signIn(input.value.trim());
      ctx.router.render();
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
  ctx.show("Sign in", form);
}
