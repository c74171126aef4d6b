"""The dashboard in headless Chromium: how soon a metric of 100,000 readings is interactive.

    .venv/bin/python tests/bench/bench_ui.py    (or `make bench`; needs chromium)

Starts its own embedded server, app and worker in a temporary directory, stores 100,000
readings (5 minutes apart, about a year) and runs one detection job on them, then opens
the metric's page RUNS times in a fresh browser context and prints medians of:
- chart_interactive: navigation start to the chart drawn with its anomaly markers and
  answering the mouse (the page's own performance.now(), target <= 1500 ms);
- band_drawn: until the job's expected band is drawn on it as well;
- zoom_redraw: a drag across a tenth of the chart until the zoomed span is drawn.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parent)]

from playwright.sync_api import Browser, sync_playwright  # noqa: E402

from common.metrics.models import NewReading  # noqa: E402
from common.stores import Repositories  # noqa: E402
from tests.bench.stack import (  # noqa: E402
    CORES,
    T0_MS,
    Stack,
    detect_with_worker,
    embedded_stack,
    new_metric,
    running_app,
)
from tests.browser import chromium_path, launch_chromium, signed_in  # noqa: E402

RUNS = 5


@dataclass(frozen=True)
class Run:
    """One page load, in ms: the page's clock from navigation, except zoom (wall clock)."""

    interactive: float
    series_sent: float
    series_answered: float
    banded: float
    zoom: float


READINGS = 100_000
STEP_MS = 300_000


def fill(store: Repositories, metric_id: str) -> None:
    rng = np.random.default_rng(3)
    steps = np.arange(READINGS)
    values = 50 + 10 * np.sin(2 * np.pi * steps / 288) + rng.normal(0, 1, READINGS)
    values[rng.choice(READINGS, 20, replace=False)] += 60  # spikes for the job to find
    for first in range(0, READINGS, 5000):
        store.readings.append(
            metric_id,
            [
                NewReading(f"u{i}", T0_MS + i * STEP_MS, float(values[i]))
                for i in range(first, min(first + 5000, READINGS))
            ],
        )


SERIES_TIMING = """(() => {
  const entry = performance.getEntriesByType("resource").find((r) => r.name.includes("/series"));
  return [entry.startTime, entry.responseEnd];
})()"""


def measure_once(browser: Browser, base_url: str, key: str, metric_id: str, markers: int) -> Run:
    """Open the metric's page in a fresh context; the page's own clock, from navigation."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    signed_in(page, key)
    page.goto(f"{base_url}/ui#/metrics/{metric_id}")
    chart = page.locator("#chart")
    page.wait_for_selector("#chart[data-state=ready]", timeout=60_000)
    interactive = float(chart.get_attribute("data-ready-at") or "nan")
    assert chart.get_attribute("data-markers") == str(markers)
    series_sent, series_answered = page.evaluate(SERIES_TIMING)
    page.wait_for_selector("#chart-status:has-text('band from job')", timeout=60_000)
    banded = float(chart.get_attribute("data-ready-at") or "nan")
    box = page.locator("#chart .u-over").bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    started = time.perf_counter()
    page.mouse.move(box["x"] + box["width"] * 0.45, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.55, y, steps=3)
    page.mouse.up()
    page.wait_for_selector("#chart[data-state=ready]:not([data-readings='100000'])", timeout=60_000)
    zoom = (time.perf_counter() - started) * 1000
    # Let the zoomed span's band arrive too: a request still running when the next page
    # loads would slow that one down.
    page.wait_for_selector("#chart-status:has-text('band from job')", timeout=60_000)
    context.close()
    return Run(interactive, series_sent, series_answered, banded, zoom)


def prepare_metric(stack: Stack, http: httpx.Client) -> tuple[str, int]:
    """The 100,000-reading metric with a succeeded job; (its id, anomalies stored)."""
    metric_id = new_metric(http, "ui")
    fill(stack.store, metric_id)
    body = {"metric_id": metric_id, "method": "rolling", "window": 288}
    detect_with_worker(stack, http, body, wait_seconds=300)
    return metric_id, len(http.get(f"/api/metrics/{metric_id}/anomalies").json()["anomalies"])


def main() -> int:
    if chromium_path() is None:
        print("# skipped: chromium is not installed (apt-get install chromium)")
        return 0
    print(f"# dashboard, {READINGS:,} readings, headless Chromium, median of {RUNS}, {CORES} cores")
    with embedded_stack() as stack, running_app(stack) as app:
        http = httpx.Client(base_url=app.base_url, headers={"X-API-Key": stack.key}, timeout=120)
        metric_id, markers = prepare_metric(stack, http)
        http.close()
        with sync_playwright() as driver:
            browser = launch_chromium(driver)
            # The first run is apart: it warms the server's and the browser's caches up.
            runs = [
                measure_once(browser, app.base_url, stack.key, metric_id, markers)
                for _ in range(RUNS + 1)
            ]
            browser.close()

    def median(field: str) -> float:
        return statistics.median(float(getattr(run, field)) for run in runs[1:])

    print(f"anomaly_markers: {markers}")
    print(
        f"chart_interactive_100k: {median('interactive'):.0f} ms   (navigation start to chart "
        f"drawn; target <= 1500; first cold run {runs[0].interactive:.0f})"
    )
    print(
        f"series_request_100k: sent at {median('series_sent'):.0f} ms, answered at "
        f"{median('series_answered'):.0f} ms   (the chart's /series call)"
    )
    print(f"band_drawn_100k: {median('banded'):.0f} ms   (with the job's band)")
    print(f"zoom_redraw_100k: {median('zoom'):.0f} ms   (drag a tenth: refetch, draw)")
    print(f"load_average_1min: {os.getloadavg()[0]:.1f}   (the machine is shared)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
