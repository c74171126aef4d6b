// Pages routed by the URL's hash, so that the server serves one HTML page, each living
// from mount to unmount.
//
// A page is a module exporting `mount(context)` (see PageContext), imported when its
// route is shown (a route names a function importing it). When the hash changes
// the router unmounts the page shown (its requests are cancelled; the timers, listeners
// and charts it registered are released; whatever it still tries to show is dropped),
// then mounts the page of the new hash. A page keeps its state in its own mount, never in
// its module, so that two visits share nothing.
import { el } from "./dom.js";

// What a mounted page is given: the API client scoped to its life, the router, the params
// of its route, and the one way to put itself on screen.
export class PageContext {
  #controller = new AbortController();
  #releases = [];
  #outlet;
  #onError;

  constructor({ outlet, api, router, params, onError }) {
    this.#outlet = outlet;
    this.#onError = onError;
    this.api = api.scoped(this.#controller.signal);
    this.router = router;
    this.params = params;
  }

  // False once the page was left: what it fetched since then is not shown.
  get active() {
    return !this.#controller.signal.aborted;
  }

  // Shows the page as `title` and `children` (null ones left out) if it is still mounted.
  show(title, ...children) {
    if (!this.active) return;
    this.#outlet.replaceChildren(el("h1", {}, title), ...children.filter((c) => c !== null && c !== undefined));
    document.title = `${title} · Neonomaly`;
  }

  // The width the page has to draw in, in CSS pixels.
  width() {
    return this.#outlet.clientWidth;
  }

  // Runs `release` when the page is left (a chart's destroy, say).
  onUnmount(release) {
    this.#releases.push(release);
  }

  // Resolves after `ms`, or never if the page is left first.
  sleep(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#releases = this.#releases.filter((release) => release !== cancel);
        resolve();
      }, ms);
      const cancel = () => clearTimeout(timer);
      this.onUnmount(cancel);
    });
  }

  // An error the page did not handle, reported as the router reports one from mount().
  report(error) {
    if (this.active) this.#onError(error, this);
  }

  unmount() {
    this.#controller.abort();
    for (const release of this.#releases.splice(0).reverse()) {
      try {
        release();
      } catch (error) {
        console.error("releasing a page failed", error);
      }
    }
  }
}

export class Router {
  // routes: [[RegExp, importPage]]; a match's named groups, URI-decoded, are the page's
  // params. gate(): a page (its import) to mount instead of the hash's (sign-in without a
  // key), or null. notFound: the page (its import) of a hash no route matches.
  // onError(error, context): what to do with an error a page did not handle.
  constructor({ outlet, api, routes, notFound, gate, onError }) {
    this.outlet = outlet;
    this.api = api;
    this.routes = routes;
    this.notFound = notFound;
    this.gate = gate;
    this.onError = onError;
    this.current = null;
  }

  start() {
    window.addEventListener("hashchange", () => this.render());
    this.render();
  }

  // Goes to `hash`; mounts its page again if it is already the one shown.
  go(hash) {
    if (window.location.hash === hash) this.render();
    else window.location.hash = hash;
  }

  resolve(hash) {
    const gated = this.gate();
    if (gated) return { importPage: gated, params: {} };
    for (const [pattern, importPage] of this.routes) {
      const match = hash.match(pattern);
      if (!match) continue;
      const params = {};
      for (const [name, value] of Object.entries(match.groups || {})) {
        params[name] = value === undefined ? undefined : decodeURIComponent(value);
      }
      return { importPage, params };
    }
    return { importPage: this.notFound, params: {} };
  }

  // Unmounts the page shown and mounts the one of the current hash.
  async render() {
    if (this.current) this.current.unmount();
    const { importPage, params } = this.resolve(window.location.hash);
    const context = new PageContext({
      outlet: this.outlet, api: this.api, router: this, params, onError: this.onError,
    });
    this.current = context;
    try {
      const page = await importPage();
      if (context.active) await page.mount(context);
    } catch (error) {
      context.report(error);
    }
  }
}
