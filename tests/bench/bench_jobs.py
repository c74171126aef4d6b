"""Job latency on the local stack: submit → succeeded for a 10,000-reading STL job.

    .venv/bin/python tests/bench/bench_jobs.py    (or `make bench`)

Starts its own embedded server, web app and one Celery worker (prefork, concurrency 1) in
a temporary directory, stores 10,000 readings (5-minute steps, daily period 288, one
spike), then submits the same STL job several times and polls `GET /api/jobs/{id}` every
5 ms until it succeeds. Prints the median (and min/max) with the machine's core count,
and the same with `?wait=` (one request, the server waits for the job). Target: ≤ 300 ms.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]

from common.metrics.models import NewReading  # noqa: E402
from tests.bench.stack import CORES, T0_MS, embedded_stack, running_app, running_worker  # noqa: E402
from tests.worker.support import seasonal_series  # noqa: E402

POINTS = 10_000
PERIOD = 288
RUNS = 9
WARMUP = 2
TARGET_MS = 300


def submit_and_poll(http: httpx.Client, body: dict[str, object]) -> float:
    began = time.perf_counter()
    job_id = http.post("/api/metrics/anomaly-detection", json=body).json()["job_id"]
    while True:
        status = http.get(f"/api/jobs/{job_id}").json()["status"]
        if status == "succeeded":
            return time.perf_counter() - began
        if status == "failed" or time.perf_counter() - began > 60:
            raise RuntimeError(f"job {job_id} ended {status}")
        time.sleep(0.005)


def submit_and_wait(http: httpx.Client, body: dict[str, object]) -> float:
    began = time.perf_counter()
    answer = http.post("/api/metrics/anomaly-detection", params={"wait": 30}, json=body)
    if answer.status_code != 200 or answer.json()["job"]["status"] != "succeeded":
        raise RuntimeError(f"job did not succeed: {answer.text[:500]}")
    return time.perf_counter() - began


def report(label: str, seconds: list[float]) -> None:
    ms = [s * 1000 for s in seconds]
    print(
        f"{label}: median {statistics.median(ms):.0f} ms "
        f"(min {min(ms):.0f}, max {max(ms):.0f}, {len(ms)} runs; target ≤ {TARGET_MS} ms; "
        f"{CORES} cores)",
        flush=True,
    )


def main() -> int:
    with embedded_stack() as stack, running_app(stack) as app, running_worker(stack):
        service = stack.store.services.create(stack.user_id, "bench", None)
        metric = stack.store.metrics.create(stack.user_id, service.id, "latency", None)
        values = seasonal_series(POINTS, period=PERIOD, seed=1, noise=1.0)
        values[POINTS - 100] += 30
        readings = [
            NewReading(id=f"r{i}", timestamp_ms=T0_MS + i * 300_000, value=float(v))
            for i, v in enumerate(values)
        ]
        for first in range(0, POINTS, 5000):
            stack.store.readings.append(metric.id, readings[first : first + 5000])
        body = {"metric_id": metric.id, "method": "stl", "period": PERIOD}
        with httpx.Client(
            base_url=app.base_url, headers={"X-API-Key": stack.key}, timeout=60
        ) as http:
            for _ in range(WARMUP):
                submit_and_poll(http, body)
            report(
                f"submit→succeeded, {POINTS:,}-reading STL job, polling",
                [submit_and_poll(http, body) for _ in range(RUNS)],
            )
            report(
                f"submit→succeeded, {POINTS:,}-reading STL job, ?wait=",
                [submit_and_wait(http, body) for _ in range(RUNS)],
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
