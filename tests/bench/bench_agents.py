"""Prometheus remote_write through the receiver, against the project's own batch ingest of
the same readings, side by side in one run (target: remote_write >= 0.8 of it).

    .venv/bin/python tests/bench/bench_agents.py    (or `make bench`)

Starts its own embedded server and app in a temporary directory. Each request carries
SERIES gauges × SAMPLES samples (2,000 samples, Prometheus' default max_samples_per_send);
the batch ingest sends the same readings as one `POST /api/readings` of all SERIES metrics
(by id): the same write path, one graph statement a request. Both start with their metrics
already created and the bodies already encoded (the client's cost kept out), one client,
in time order. A counter run shows what rates cost.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from tests.agents_support import (  # noqa: E402
    REMOTE_WRITE_HEADERS,
    bearer,
    metrics_of,
    remote_write_body,
)
from tests.bench.stack import CORES, T0_MS, embedded_stack, running_app  # noqa: E402

SERIES = 50
SAMPLES = 40  # per series per request
REQUESTS = 10  # 20,000 readings per run
RUNS = 3
STEP_MS = 15_000


def sample_times(request: int) -> list[int]:
    first = (request + 1) * SAMPLES  # request -1 is the warm-up that creates the metrics
    return [T0_MS + (first + i) * STEP_MS for i in range(SAMPLES)]


def value(series: int, ms: int) -> float:
    return float((ms // STEP_MS * 7 + series) % 101)


def remote_write_bodies(job: str, name: str) -> list[bytes]:
    return [
        remote_write_body(
            [
                (
                    {"__name__": name, "job": job, "series": str(s)},
                    [(ms, value(s, ms)) for ms in sample_times(r)],
                )
                for s in range(SERIES)
            ]
        )
        for r in range(-1, REQUESTS)
    ]


def batch_body(metric_ids: list[str], request: int) -> bytes:
    """The same readings for the many-metric batch endpoint, one body a request."""
    return json.dumps(
        {
            "series": [
                {
                    "metric_id": metric_id,
                    "readings": [
                        {
                            "id": str(ms),
                            "timestamp": time.strftime(
                                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000)
                            ),
                            "value": value(s, ms),
                        }
                        for ms in sample_times(request)
                    ],
                }
                for s, metric_id in enumerate(metric_ids)
            ]
        }
    ).encode()


def run_remote_write(http: httpx.Client, bodies: list[bytes]) -> float:
    """Samples/s; the first body (creating the metrics) is not timed."""
    response = http.post("/api/v1/write", content=bodies[0], headers=REMOTE_WRITE_HEADERS)
    assert response.status_code == 204, response.text
    started = time.perf_counter()
    for body in bodies[1:]:
        response = http.post("/api/v1/write", content=body, headers=REMOTE_WRITE_HEADERS)
        assert response.status_code == 204, response.text
    return SERIES * SAMPLES * REQUESTS / (time.perf_counter() - started)


def run_batch_ingest(http: httpx.Client, bodies: list[bytes]) -> float:
    started = time.perf_counter()
    for body in bodies:
        response = http.post(
            "/api/readings", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 201, response.text[:500]
    return SERIES * SAMPLES * REQUESTS / (time.perf_counter() - started)


def main() -> None:
    print(
        f"# agents: {REQUESTS} requests of {SERIES} series x {SAMPLES} samples, "
        f"median of {RUNS} runs, both paths in each run"
    )
    with embedded_stack() as stack, running_app(stack) as app:
        http = httpx.Client(base_url=app.base_url, headers=bearer(stack.key), timeout=120)
        gauges, counters, batches = [], [], []
        for run in range(RUNS + 1):  # the first run warms up
            gauges_job, counters_job = f"gauges-{run}", f"counters-{run}"
            gauges.append(run_remote_write(http, remote_write_bodies(gauges_job, "load")))
            counters.append(
                run_remote_write(http, remote_write_bodies(counters_job, "requests_total"))
            )
            # The batch ingest's metrics: the ones remote_write created for the warm-up
            # request of another job, holding only that request's readings.
            warm = remote_write_bodies(f"batch-{run}", "load")[0]
            http.post("/api/v1/write", content=warm, headers=REMOTE_WRITE_HEADERS)
            by_name = metrics_of(http, f"batch-{run}")
            ids = [by_name[f'load{{series="{s}"}}']["id"] for s in range(SERIES)]
            batch = [batch_body(ids, r) for r in range(REQUESTS)]
            batches.append(run_batch_ingest(http, batch))
        http.close()
    gauge, counter, batch_rate = (statistics.median(x[1:]) for x in (gauges, counters, batches))
    print(f"remote_write_gauges: {gauge:,.0f} samples/s (cores={CORES})")
    print(f"remote_write_counters: {counter:,.0f} samples/s (cores={CORES}, stored as rates)")
    print(f"batch_ingest_same_readings: {batch_rate:,.0f} readings/s (cores={CORES})")
    print(f"ratio_remote_write_to_batch_ingest: {gauge / batch_rate:.2f} (target >= 0.8)")
    print(f"ratio_counters_to_batch_ingest: {counter / batch_rate:.2f}")


if __name__ == "__main__":
    main()
