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
import * as incidentPage from "./pages/incident.js";
import * as incidentsPage from "./pages/incidents.js";
import * as jobsPage from "./pages/jobs.js";
import * as metricPage from "./pages/metric.js";
import * as notFoundPage from "./pages/not-found.js";
import * as servicePage from "./pages/service.js";
import * as servicesPage from "./pages/services.js";
import * as signInPage from "./pages/sign-in.js";
import { Router } from "./router.js";

const ROUTES = [
  [/^#?\/?$/, servicesPage],
  [/^#\/services\/(?<serviceId>[^/]+)$/, servicePage],
  [/^#\/metrics\/(?<metricId>[^/?]+)(?:\?(?<query>.*))?$/, metricPage],
  [/^#\/jobs$/, jobsPage],
  [/^#\/incidents$/, incidentsPage],
  [/^#\/incidents\/(?<incidentId>[^/]+)$/, incidentPage],
];

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
