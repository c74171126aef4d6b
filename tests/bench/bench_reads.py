"""Chart reads: a page of readings through the API beside the store's own window read, and
the downsampled series of 100,000 readings.

    .venv/bin/python tests/bench/bench_reads.py    (or `make bench`)

Starts its own embedded server and app in a temporary directory; prints medians of RUNS.
- 10,000 readings: Repositories.read_window (the index range read detection uses), the
  Repositories.list_readings page, and GET /api/metrics/{id}/readings?limit=10000 over HTTP;
  the ratio store / API is the issue's figure (target >= 0.5);
- 100,000 readings: read_window of them all, beside GET /api/metrics/{id}/series with
  points=2000 (min/max buckets aggregated in the engine) and points=1000 with a job's band,
  over the whole series and over a zoomed window of 2,000 readings (what a chart zoomed in
  asks: only the result chunks the window overlaps should be read).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parent)]

from common.epoch import from_epoch_ms  # noqa: E402
from common.graph.params import KeysetPage  # noqa: E402
from tests.bench.bench_graph import fill  # noqa: E402
from tests.bench.stack import (  # noqa: E402
    CORES,
    T0_MS,
    Stack,
    detect_with_worker,
    embedded_stack,
    new_metric,
    running_app,
)

RUNS = 9
PAGE = 10_000
LARGE = 100_000
ZOOMED = 2_000  # readings in the zoomed window, in the middle of the large series


def median_ms(action: Callable[[], object]) -> float:
    action()  # warm up
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    print(f"# chart reads, median of {RUNS} runs, {CORES} cores")
    with embedded_stack() as stack, running_app(stack) as app:
        http = httpx.Client(base_url=app.base_url, headers={"X-API-Key": stack.key}, timeout=60)
        bench_readings_page(stack, http)
        bench_large_series(stack, http)
        print(f"load_average_1min: {os.getloadavg()[0]:.1f}   (the machine is shared)")
        http.close()


def bench_readings_page(stack: Stack, http: httpx.Client) -> None:
    page_metric = new_metric(http, "page")
    fill(stack.store, page_metric, PAGE, "p")
    start, end = T0_MS, T0_MS + PAGE * 1000

    def api_page() -> None:
        # Until the whole body has arrived: what the endpoint costs, without the client's
        # own JSON parsing (checked once below, and timed apart).
        response = http.get(f"/api/metrics/{page_metric}/readings", params={"limit": PAGE})
        response.raise_for_status()

    body = http.get(f"/api/metrics/{page_metric}/readings", params={"limit": PAGE}).content
    assert len(json.loads(body)["readings"]) == PAGE

    store_window = median_ms(lambda: stack.store.readings.read_window(page_metric, start, end))
    store_page = median_ms(
        lambda: stack.store.readings.list_page(page_metric, KeysetPage(None, None, PAGE))
    )
    api = median_ms(api_page)
    print(f"store_read_window_10k: {store_window:.1f} ms   (index range read, columns)")
    print(f"store_list_readings_10k: {store_page:.1f} ms   (the page query, columns)")
    client_parse = median_ms(lambda: json.loads(body))
    print(f"api_readings_page_10k: {api:.1f} ms   (GET .../readings?limit=10000, HTTP)")
    print(f"client_json_parse_10k: {client_parse:.1f} ms   (json.loads of that page, apart)")
    print(f"ratio_store_to_api: {store_window / api:.2f}   (target >= 0.5)")


def bench_large_series(stack: Stack, http: httpx.Client) -> None:
    large_metric = new_metric(http, "large")
    fill(stack.store, large_metric, LARGE, "l")
    body = {"metric_id": large_metric, "method": "rolling", "window": 60}
    job = detect_with_worker(stack, http, body, wait_seconds=120)

    def api_series(
        points: int, job_id: str | None = None, window: tuple[int, int] = (0, LARGE)
    ) -> Callable[[], None]:
        """GET .../series over readings [window[0], window[1]) of the large metric."""
        params: dict[str, str | int] = {"points": points}
        if job_id:
            params["job_id"] = job_id
        if window != (0, LARGE):
            params["start"] = from_epoch_ms(T0_MS + window[0] * 1000).isoformat()
            params["end"] = from_epoch_ms(T0_MS + window[1] * 1000).isoformat()

        def call() -> None:
            response = http.get(f"/api/metrics/{large_metric}/series", params=params)
            assert response.json()["readings"] == window[1] - window[0], response.text

        return call

    whole = median_ms(lambda: stack.store.readings.read_window(large_metric, None, None))
    print(f"store_read_window_100k: {whole:.1f} ms   (every reading, for comparison)")
    series = median_ms(api_series(2000))
    print(f"api_series_100k_points_2000: {series:.1f} ms   (GET .../series, HTTP)")
    band = median_ms(api_series(1000, job["job_id"]))
    print(f"api_series_100k_points_1000_with_band: {band:.1f} ms   (plus the job's result)")
    middle = (LARGE // 2, LARGE // 2 + ZOOMED)
    zoomed = median_ms(api_series(1000, job["job_id"], middle))
    print(
        f"api_series_100k_window_2k_with_band: {zoomed:.1f} ms   (zoomed in: 2,000 readings "
        "of the 100,000, with the job's band)"
    )


if __name__ == "__main__":
    main()
