// The metric chart: uPlot with the readings (a min/max band when downsampled), the
// detection band (expected, lower, upper), anomaly markers coloured by kind, and a
// tooltip with value, expected, bounds and score under the cursor. uPlot is the global its
// script (index.html) defines.
import { formatTime } from "./format.js";

export const VALUE_COLOUR = "#2b6cb0";
const VALUE_RANGE = "rgba(43, 108, 176, 0.25)";
export const EXPECTED_COLOUR = "#2f855a";
const BAND_EDGE = "rgba(47, 133, 90, 0.5)";
const BAND_FILL = "rgba(47, 133, 90, 0.12)";

// Colours of anomaly kinds (spike, dip, ...); an anomaly without a kind is drawn red.
export const KIND_COLOURS = {
  spike: "#e53e3e",
  dip: "#805ad5",
  level_shift_up: "#dd6b20",
  level_shift_down: "#c05621",
  variance_change: "#d69e2e",
  seasonal_break: "#319795",
  trend_change: "#b83280",
};
const OTHER_KINDS = ["#718096", "#2c7a7b", "#975a16", "#6b46c1"];
export const NO_KIND = "anomaly";

export function kindOf(anomaly) {
  return anomaly.kind || NO_KIND;
}

export function kindColour(kind) {
  if (kind === NO_KIND) return KIND_COLOURS.spike;
  if (KIND_COLOURS[kind]) return KIND_COLOURS[kind];
  let hash = 0;
  for (const char of kind) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return OTHER_KINDS[hash % OTHER_KINDS.length];
}

function format(value) {
  if (value === null || value === undefined) return "–";
  return Math.abs(value) >= 1e6 || (Math.abs(value) < 1e-3 && value !== 0)
    ? value.toExponential(3)
    : String(Math.round(value * 1000) / 1000);
}

// Maintenance windows are shaded grey behind the series; their muted anomalies drawn grey.
export const MAINTENANCE_FILL = "rgba(113, 128, 150, 0.18)";
export const MUTED_COLOUR = "#a0aec0";

// Draws `series` (GET /api/metrics/{id}/series) and `anomalies` into `container`.
// `onZoom(startMs, endMs)` is called when the user drags across a time span.
// The returned chart's `shade(spans)` shades maintenance spans ({start, end}, ISO).
export function drawChart(container, series, anomalies, onZoom) {
  const half = series.downsampled ? series.bucket_ms / 2 : 0;
  const xs = series.timestamps_ms.map((t) => (t + half) / 1000);
  const data = [xs, series.max];
  const lines = [
    {},
    { label: series.downsampled ? "max" : "value", stroke: VALUE_COLOUR, width: 1.5 },
  ];
  const bands = [];
  if (series.downsampled) {
    data.push(series.min);
    lines.push({ label: "min", stroke: VALUE_COLOUR, width: 1 });
    bands.push({ series: [1, 2], fill: VALUE_RANGE });
  }
  const band = series.band;
  if (band) {
    const upper = data.length;
    data.push(band.upper, band.lower, band.expected);
    lines.push(
      { label: "upper", stroke: BAND_EDGE, width: 1 },
      { label: "lower", stroke: BAND_EDGE, width: 1 },
      { label: "expected", stroke: EXPECTED_COLOUR, width: 1.5, dash: [6, 4] },
    );
    bands.push({ series: [upper, upper + 1], fill: BAND_FILL });
  }
  const markers = anomalies.map((a) => ({
    x: Date.parse(a.timestamp) / 1000,
    value: a.value,
    anomaly: a,
    colour: a.muted ? MUTED_COLOUR : kindColour(kindOf(a)),
  }));
  let shaded = [];
  const startS = Date.parse(series.start) / 1000;
  const endS = Date.parse(series.end) / 1000;
  const tooltip = document.createElement("div");
  tooltip.className = "tooltip";
  tooltip.hidden = true;

  function drawShaded(u) {
    const ctx = u.ctx;
    const top = u.bbox.top;
    const height = u.bbox.height;
    ctx.save();
    ctx.fillStyle = MAINTENANCE_FILL;
    for (const span of shaded) {
      if (span.end < u.scales.x.min || span.start > u.scales.x.max) continue;
      const left = u.valToPos(Math.max(span.start, u.scales.x.min), "x", true);
      const right = u.valToPos(Math.min(span.end, u.scales.x.max), "x", true);
      ctx.fillRect(left, top, Math.max(1, right - left), height);
    }
    ctx.restore();
  }

  function drawMarkers(u) {
    const ctx = u.ctx;
    const ratio = window.devicePixelRatio || 1;
    let drawn = 0;
    ctx.save();
    ctx.lineWidth = ratio;
    ctx.strokeStyle = "#ffffff";
    for (const marker of markers) {
      if (marker.x < u.scales.x.min || marker.x > u.scales.x.max) continue;
      ctx.fillStyle = marker.colour;
      ctx.beginPath();
      ctx.arc(u.valToPos(marker.x, "x", true), u.valToPos(marker.value, "y", true),
        4.5 * ratio, 0, 2 * Math.PI);
      ctx.fill();
      ctx.stroke();
      drawn += 1;
    }
    ctx.restore();
    container.dataset.markers = String(drawn);
  }

  function nearestMarker(u, left) {
    let best = null;
    for (const marker of markers) {
      const distance = Math.abs(u.valToPos(marker.x, "x") - left);
      if (distance <= 6 && (!best || distance < best.distance)) best = { marker, distance };
    }
    return best && best.marker;
  }

  function showTooltip(u) {
    const { idx, left, top } = u.cursor;
    if (idx === null || idx === undefined || left < 0) {
      tooltip.hidden = true;
      return;
    }
    const rows = [["time", formatTime(series.timestamps_ms[idx])]];
    if (series.downsampled) {
      rows.push(["value", `${format(series.min[idx])} … ${format(series.max[idx])}`]);
      rows.push(["readings", String(series.count[idx])]);
    } else {
      rows.push(["value", format(series.max[idx])]);
    }
    if (band) {
      rows.push(["expected", format(band.expected[idx])]);
      rows.push(["bounds", `${format(band.lower[idx])} … ${format(band.upper[idx])}`]);
      rows.push(["score", format(band.score[idx])]);
    }
    // An anomaly within a few pixels: its own reading, which may sit in a neighbouring slot.
    const marker = nearestMarker(u, left);
    if (marker) {
      const a = marker.anomaly;
      rows.push(["anomaly", kindOf(a)], ["at", formatTime(Date.parse(a.timestamp))],
        ["its value", format(a.value)], ["its score", format(a.score)]);
    }
    tooltip.replaceChildren(...rows.map(([name, value]) => {
      const row = document.createElement("div");
      const label = document.createElement("span");
      label.textContent = name;
      row.append(label, document.createTextNode(value));
      return row;
    }));
    tooltip.hidden = false;
    const overWidth = u.over.clientWidth;
    const x = left + 12 + tooltip.offsetWidth > overWidth ? left - tooltip.offsetWidth - 12 : left + 12;
    tooltip.style.left = `${Math.max(0, x)}px`;
    tooltip.style.top = `${Math.max(0, top - 10)}px`;
  }

  function zoomToSelection(u) {
    if (u.select.width < 3) return;
    const from = u.posToVal(u.select.left, "x") * 1000;
    const to = u.posToVal(u.select.left + u.select.width, "x") * 1000;
    u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    onZoom(Math.floor(from), Math.ceil(to));
  }

  const height = () => (container.clientWidth < 600 ? 260 : 380);
  const options = {
    width: container.clientWidth,
    height: height(),
    scales: { x: { time: true, range: () => [startS, endS] } },
    series: lines,
    bands,
    legend: { show: false },
    cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false } },
    axes: [{}, { size: 60 }],
    hooks: {
      drawClear: [drawShaded],
      draw: [drawMarkers],
      setCursor: [showTooltip],
      setSelect: [zoomToSelection],
    },
  };
  container.replaceChildren();
  const plot = new uPlot(options, data, container);
  plot.over.append(tooltip);
  plot.over.addEventListener("mouseleave", () => { tooltip.hidden = true; });
  const resize = () => plot.setSize({ width: container.clientWidth, height: height() });
  window.addEventListener("resize", resize);
  container.dataset.points = String(xs.length);
  container.dataset.readings = String(series.readings);
  container.dataset.state = "ready";
  container.dataset.readyAt = String(Math.round(performance.now())); // for the benchmark
  return {
    shade(spans) {
      shaded = spans.map((span) => ({
        start: Date.parse(span.start) / 1000,
        end: Date.parse(span.end) / 1000,
      }));
      container.dataset.maintenanceSpans = String(shaded.length);
      plot.redraw(false);
    },
    destroy() {
      window.removeEventListener("resize", resize);
      plot.destroy();
    },
  };
}

// A small trend line for the metric list (no axes, no interaction).
export function drawSparkline(canvas, series) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 120;
  const height = canvas.clientHeight || 28;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const ctx = canvas.getContext("2d");
  const values = series.max;
  if (values.length === 0) return;
  const t0 = series.timestamps_ms[0];
  const span = Math.max(1, series.timestamps_ms[values.length - 1] - t0);
  const low = Math.min(...series.min);
  const high = Math.max(...values);
  const y = (v) => (high === low ? height / 2 : height - 2 - ((v - low) / (high - low)) * (height - 4));
  ctx.scale(ratio, ratio);
  ctx.strokeStyle = VALUE_COLOUR;
  ctx.lineWidth = 1.25;
  ctx.beginPath();
  values.forEach((value, i) => {
    const x = ((series.timestamps_ms[i] - t0) / span) * (width - 2) + 1;
    if (i === 0) ctx.moveTo(x, y(value));
    else ctx.lineTo(x, y(value));
  });
  ctx.stroke();
}
