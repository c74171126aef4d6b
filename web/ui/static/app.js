// The dashboard's entry: its pages by route, the sign-in gate, sign-out, and the start.
//   #/                 services
//   #/services/ID      a service's metrics (latest value, trend, recent anomalies)
//   #/metrics/ID       a metric: chart, events, detection
//   #/metrics/ID?start=ISO&end=ISO   the same, the chart opened on that span
//   #/jobs             the caller's jobs
//   #/incidents        the caller's incidents
//   #/incidents/ID     an incident: its probable causes, timeline, acknowledge and resolve
import { ApiClient, ApiError, errorText } from "./api.js";
import { message } from "./dom.js";
import { Router } from "./router.js";

// Each page's module is fetched when its route is first shown: opening a metric's chart
// waits only for the modules the chart needs (index.html preloads those).
const ROUTES = [
  [/^#?\/?$/, () => import("./pages/services.js")],
  [/^#\/services\/(?<serviceId>[^/]+)$/, () => import("./pages/service.js")],
  [/^#\/metrics\/(?<metricId>[^/?]+)(?:\?(?<query>.*))?$/, () => import("./pages/metric.js")],
  [/^#\/jobs$/, () => import("./pages/jobs.js")],
  [/^#\/incidents$/, () => import("./pages/incidents.js")],
  [/^#\/incidents\/(?<incidentId>[^/]+)$/, () => import("./pages/incident.js")],
];
const notFoundPage = () => import("./pages/not-found.js");
const signInPage = () => import("./pages/sign-in.js");

function start() {
  const main = document.getElementById("main");
  const nav = document.getElementById("nav");
  const api = new ApiClient();
  const router = new Router({
    outlet: main,
    api,
    routes: ROUTES,
    notFound: notFoundPage,
    // Without a key every route is the sign-in page, and the menu is hidden.
    gate: () => {
      nav.hidden = !api.signedIn;
      return api.signedIn ? null : signInPage;
    },
    // A key refused now (deleted since it was pasted) signs out; anything else is said.
    onError: (error, page) => {
      if (error instanceof ApiError && error.status === 401) {
        api.signOut();
        router.render();
        return;
      }
      page.show("Something went wrong", message(errorText(error), "error"));
    },
  });
  document.getElementById("sign-out").addEventListener("click", () => {
    api.signOut();
    router.go("#/");
  });
  if (typeof uPlot === "undefined") {
    main.replaceChildren(message(
      "The chart library is missing: run `make run` (it installs web/ui/node_modules).", "error"));
    return;
  }
  router.start();
}

start();
