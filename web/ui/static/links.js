// The hash of each page a page links to, and the chart range a metric's link carries.

export function serviceHref(serviceId) {
  return `#/services/${encodeURIComponent(serviceId)}`;
}

// A metric's page, its chart opened on `range` ({start, end} in epoch ms; null: every reading).
export function metricHref(metricId, range = null) {
  const query = range ? `?${new URLSearchParams(windowParams(range))}` : "";
  return `#/metrics/${encodeURIComponent(metricId)}${query}`;
}

export function incidentHref(incidentId) {
  return `#/incidents/${encodeURIComponent(incidentId)}`;
}

// The API's window parameters for a range {start, end} in epoch ms (null: every reading).
export function windowParams(range) {
  return range
    ? { start: new Date(range.start).toISOString(), end: new Date(range.end).toISOString() }
    : {};
}

// The range of `?start=ISO&end=ISO` after a metric's id, or null (every reading).
export function rangeFromQuery(query) {
  const params = new URLSearchParams(query || "");
  const start = Date.parse(params.get("start"));
  const end = Date.parse(params.get("end"));
  return Number.isNaN(start) || Number.isNaN(end) || start >= end ? null : { start, end };
}
