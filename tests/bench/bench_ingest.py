"""Ingest speed: bulk through the HTTP API, the store alone, and a bare UNWIND CREATE.

    .venv/bin/python tests/bench/bench_ingest.py    (or `make bench`)

Starts its own embedded server and app in a temporary directory. Prints one figure per
line, each the median of several runs, with the machine's core count. The three bulk
figures ingest the same rows (batches of 5,000, in time order, into a fresh metric), so
their ratios show what the chain linking and the HTTP layer cost.
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from common.metrics.models import NewReading  # noqa: E402
from tests.bench.stack import (  # noqa: E402
    CORES,
    T0_MS,
    Stack,
    embedded_stack,
    new_metric,
    running_app,
    store_metric,
)
from tests.support import AppServer  # noqa: E402

BATCH = 5_000
BATCHES = 20  # 100,000 readings per run
RUNS = 3
SINGLE_POSTS = 1_000

BARE_CREATE = """
UNWIND $rows AS r
CREATE (:MetricReading {id: r.id, metric_id: $metric_id, timestamp: r.timestamp, value: r.value})
"""


def rows(batch: int, prefix: str = "r") -> list[dict[str, object]]:
    start = batch * BATCH
    return [
        {"id": f"{prefix}{i}", "timestamp": T0_MS + i * 1000, "value": (i % 97) * 0.5}
        for i in range(start, start + BATCH)
    ]


def http_bodies() -> list[bytes]:
    """The API's bodies for the same rows, serialised once (client cost kept out)."""
    bodies = []
    for batch in range(BATCHES):
        readings = [
            {
                "id": row["id"],
                "timestamp": time.strftime(
                    "%Y-%m-%dT%H:%M:%SZ",
                    time.gmtime(int(row["timestamp"]) / 1000),  # type: ignore[call-overload]
                ),
                "value": row["value"],
            }
            for row in rows(batch)
        ]
        bodies.append(json.dumps({"readings": readings}).encode())
    return bodies


def rate(seconds: float, count: int = BATCH * BATCHES) -> float:
    return count / seconds


def timed(action: Callable[[], None]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def bench_http_bulk(app: AppServer, key: str, bodies: list[bytes], clients: int) -> float:
    """Readings/s with `clients` concurrent clients, each on its own metric."""
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    with httpx.Client(base_url=app.base_url, headers=headers, timeout=120) as http:
        metrics = [new_metric(http, f"bulk-{time.monotonic_ns()}-{c}") for c in range(clients)]
    errors: list[str] = []

    def client(metric_id: str) -> None:
        with httpx.Client(base_url=app.base_url, headers=headers, timeout=120) as http:
            for body in bodies:
                response = http.post(f"/api/metrics/{metric_id}/readings", content=body)
                if response.status_code != 201:
                    errors.append(response.text[:200])

    threads = [threading.Thread(target=client, args=(m,)) for m in metrics]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests: {errors[0]}")
    return rate(elapsed, BATCH * BATCHES * clients)


def bench_store_bulk(stack: Stack) -> float:
    metric_id = store_metric(stack, f"store-{time.monotonic_ns()}")
    batches = [
        [NewReading(str(r["id"]), int(r["timestamp"]), float(r["value"])) for r in rows(b)]  # type: ignore[call-overload]
        for b in range(BATCHES)
    ]

    def run() -> None:
        for batch in batches:
            stack.store.readings.append(metric_id, batch)

    return rate(timed(run))


def bench_bare_create(stack: Stack) -> float:
    metric_id = f"bare-{time.monotonic_ns()}"
    batches = [rows(b) for b in range(BATCHES)]

    def run() -> None:
        for batch in batches:
            stack.store.executor.write(BARE_CREATE, {"metric_id": metric_id, "rows": batch})

    return rate(timed(run))


def bench_single_posts(app: AppServer, key: str) -> tuple[float, float]:
    with httpx.Client(base_url=app.base_url, headers={"X-API-Key": key}, timeout=30) as http:
        metric_id = new_metric(http, f"single-{time.monotonic_ns()}")
        latencies = []
        for i in range(SINGLE_POSTS):
            body = {"value": float(i), "timestamp": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z"}
            started = time.perf_counter()
            response = http.post(f"/api/metrics/{metric_id}/readings", json=body)
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 201, response.text
    quantiles = statistics.quantiles(latencies, n=100)
    return quantiles[49] * 1000, quantiles[98] * 1000


def report(name: str, value: float, unit: str, extra: str = "") -> None:
    print(f"{name}: {value:,.1f} {unit} (cores={CORES}{', ' + extra if extra else ''})", flush=True)


def main() -> None:
    print(f"# ingest, {BATCHES} batches of {BATCH:,} readings per run, median of {RUNS} runs")
    bodies = http_bodies()
    with embedded_stack() as stack, running_app(stack) as app:
        bench_http_bulk(app, stack.key, bodies[:2], 1)  # warm up
        http_1 = statistics.median(bench_http_bulk(app, stack.key, bodies, 1) for _ in range(RUNS))
        http_2 = statistics.median(bench_http_bulk(app, stack.key, bodies, 2) for _ in range(RUNS))
        store = statistics.median(bench_store_bulk(stack) for _ in range(RUNS))
        bare = statistics.median(bench_bare_create(stack) for _ in range(RUNS))
        report("ingest_http_bulk_1_client", http_1, "readings/s", "target >= 50,000")
        report("ingest_http_bulk_2_clients", http_2, "readings/s", "two metrics at once")
        report("ingest_store_append_readings", store, "readings/s")
        report("ingest_bare_unwind_create", bare, "readings/s", "ceiling: no chain, no checks")
        print(f"ratio_http_to_store: {http_1 / store:.2f}")
        print(f"ratio_store_to_bare_create: {store / bare:.2f}")
        print(f"ratio_http_to_bare_create: {http_1 / bare:.2f}")
        p50s, p99s = [], []
        for _ in range(RUNS):
            p50, p99 = bench_single_posts(app, stack.key)
            p50s.append(p50)
            p99s.append(p99)
        report("single_post_latency_p50", statistics.median(p50s), "ms", f"{SINGLE_POSTS} POSTs")
        report("single_post_latency_p99", statistics.median(p99s), "ms", f"{SINGLE_POSTS} POSTs")


if __name__ == "__main__":
    main()
