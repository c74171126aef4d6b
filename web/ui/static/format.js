// Times, numbers and counts as every page writes them.

// "2024-05-01 12:00:00Z": UTC, as the API's timestamps are.
export function formatTime(ms) {
  return new Date(ms).toISOString().replace(".000Z", "Z").replace("T", " ");
}

export function formatNumber(value) {
  return value === null || value === undefined ? "–" : Number(value).toLocaleString("en-US");
}

export function formatValue(value) {
  if (value === null || value === undefined) return "–";
  return String(Math.round(value * 1000) / 1000);
}

// "1 anomaly", "2 anomalies", "1,500 readings": a count with its noun, singular for one.
export function counted(count, singular, plural = `${singular}s`) {
  return `${formatNumber(count)} ${count === 1 ? singular : plural}`;
}
