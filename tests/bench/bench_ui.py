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

import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parent)]

from bench_ingest import CORES, T0_MS, embedded_stack, new_metric, running_app  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from common.models import NewReading  # noqa: E402
from tests.browser import chromium_path, launch_chromium, signed_in  # noqa: E402
from tests.worker.support import start_worker, stop_worker  # noqa: E402

RUNS = 5
READINGS = 100_000
STEP_MS = 300_000


def fill(stack_store: object, metric_id: str) -> None:
    rng = np.random.default_rng(3)
    steps = np.arange(READINGS)
    values = 50 + 10 * np.sin(2 * np.pi * steps / 288) + rng.normal(0, 1, READINGS)
    values[rng.choice(READINGS, 20, replace=False)] += 60  # spikes for the job to find
    for first in range(0, READINGS, 5000):
        stack_store.append_readings(  # type: ignore[attr-defined]
            metric_id,
            [
                NewReading(f"u{i}", T0_MS + i * STEP_MS, float(values[i]))
                for i in range(first, min(first + 5000, READINGS))
            ],
        )


def main() -> int:
    if chromium_path() is None:
        print("# skipped: chromium is not installed (apt-get install chromium)")
        return 0
    print(f"# dashboard, {READINGS:,} readings, headless Chromium, median of {RUNS}, {CORES} cores")
    with embedded_stack() as stack, running_app(stack) as app:
        http = httpx.Client(base_url=app.base_url, headers={"X-API-Key": stack.key}, timeout=120)
        metric_id = new_metric(http, "ui")
        fill(stack.store, metric_id)
        with tempfile.TemporaryDirectory(prefix="neonomaly-bench-worker-") as logs:
            worker = start_worker(stack.env, Path(logs))
            try:
                job = http.post(
                    "/api/metrics/anomaly-detection?wait=300",
                    json={"metric_id": metric_id, "method": "rolling", "window": 288},
                ).json()
            finally:
                stop_worker(worker)
        if job["status"] != "succeeded":
            raise RuntimeError(f"the detection job did not succeed: {job}")
        anomalies = len(http.get(f"/api/metrics/{metric_id}/anomalies").json()["anomalies"])
        interactive, banded, zooms = [], [], []
        with sync_playwright() as driver:
            browser = launch_chromium(driver)
            for _ in range(RUNS + 1):  # the first run warms the server's caches up
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                page = context.new_page()
                signed_in(page, stack.key)
                page.goto(f"{app.base_url}/ui#/metrics/{metric_id}")
                chart = page.locator("#chart")
                page.wait_for_selector("#chart[data-state=ready]", timeout=60_000)
                first_ready = float(chart.get_attribute("data-ready-at") or "nan")
                assert chart.get_attribute("data-markers") == str(anomalies)
                page.wait_for_selector("#chart-status:has-text('band from job')", timeout=60_000)
                band_ready = float(chart.get_attribute("data-ready-at") or "nan")
                box = page.locator("#chart .u-over").bounding_box()
                assert box is not None
                y = box["y"] + box["height"] / 2
                started = time.perf_counter()
                page.mouse.move(box["x"] + box["width"] * 0.45, y)
                page.mouse.down()
                page.mouse.move(box["x"] + box["width"] * 0.55, y, steps=3)
                page.mouse.up()
                page.wait_for_selector(
                    "#chart[data-state=ready]:not([data-readings='100000'])", timeout=60_000
                )
                zoom_ms = (time.perf_counter() - started) * 1000
                interactive.append(first_ready)
                banded.append(band_ready)
                zooms.append(zoom_ms)
                context.close()
            browser.close()
        http.close()
    print(f"anomaly_markers: {anomalies}")
    print(
        f"chart_interactive_100k: {statistics.median(interactive[1:]):.0f} ms   "
        f"(navigation start to chart drawn; target <= 1500; first cold run {interactive[0]:.0f})"
    )
    print(f"band_drawn_100k: {statistics.median(banded[1:]):.0f} ms   (with the job's band)")
    print(
        f"zoom_redraw_100k: {statistics.median(zooms[1:]):.0f} ms   (drag a tenth: refetch, draw)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
