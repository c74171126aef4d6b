"""The two graph engines side by side: embedded FalkorDB and a real Neo4j 5.26, one run.

    .venv/bin/python tests/bench/bench_engines.py    (or `make bench`; Neo4j needs `make neo4j`)

For each engine, its own stack: a fresh embedded server (the graph on FalkorDB; only Redis
on Neo4j), the Neo4j test server of tools/neo4j-server (or NEO4J_TEST_URI), and the app
under uvicorn with one worker process. The same work on each, printed one figure a line:
- bulk ingest through the API: batches of 5,000 readings, in time order, into a new metric;
- single-reading POST latency, p50 and p99, on a metric that already holds readings;
- read_window of 10,000 and 100,000 readings (the index range read detection uses);
- 8 client processes appending single readings to one metric at once: readings/s, p50/p99.
Without Java (no Neo4j), only the FalkorDB column is printed, with the reason.
"""

from __future__ import annotations

import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]

from common.epoch import to_epoch_ms  # noqa: E402
from common.metrics.models import NewReading  # noqa: E402
from tests.bench.stack import CORES, T0_MS, Stack, embedded_stack, new_metric, running_app  # noqa: E402
from tests.neo4j_server import Neo4jServer, Neo4jUnavailableError, start_neo4j  # noqa: E402

BATCH = 5_000
BULK_BATCHES = 10  # 50,000 readings through the API
SINGLE_POSTS = 300
WINDOW_RUNS = 5
CLIENTS = 8
PER_CLIENT = 150
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class EngineRun:
    """One engine's stack with the app running on it."""

    engine: str
    stack: Stack
    base_url: str


@contextmanager
def engine_run(engine: str, neo4j: Neo4jServer | None) -> Iterator[EngineRun]:
    with embedded_stack(neo4j) as stack, running_app(stack) as app:
        yield EngineRun(engine, stack, app.base_url)


def iso(seconds: int) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def bulk_ingest(http: httpx.Client) -> float:
    metric_id = new_metric(http, "bulk")
    bodies = [
        {"readings": [{"id": f"b{i}", "timestamp": iso(i), "value": (i % 97) * 0.5}
                      for i in range(n * BATCH, (n + 1) * BATCH)]}
        for n in range(BULK_BATCHES)
    ]  # fmt: skip
    started = time.perf_counter()
    for body in bodies:
        response = http.post(f"/api/metrics/{metric_id}/readings", json=body)
        assert response.status_code == 201, response.text
    return BULK_BATCHES * BATCH / (time.perf_counter() - started)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def single_posts(http: httpx.Client) -> tuple[float, float]:
    metric_id = new_metric(http, "single")
    http.post(
        f"/api/metrics/{metric_id}/readings",
        json={
            "readings": [{"id": f"h{i}", "timestamp": iso(i), "value": 1.0} for i in range(BATCH)]
        },
    )
    latencies = []
    for i in range(SINGLE_POSTS):
        body = {"id": f"s{i}", "timestamp": iso(BATCH + i), "value": 2.0}
        started = time.perf_counter()
        assert http.post(f"/api/metrics/{metric_id}/readings", json=body).status_code == 201
        latencies.append((time.perf_counter() - started) * 1000)
    return percentile(latencies, 0.5), percentile(latencies, 0.99)


def window_reads(stack: Stack, http: httpx.Client) -> dict[int, float]:
    metric_id = new_metric(http, "window")
    for first in range(0, 100_000, BATCH):
        stack.store.readings.append(
            metric_id,
            [NewReading(f"w{i}", T0_MS + i * 1000, float(i % 1000))
             for i in range(first, first + BATCH)],
        )  # fmt: skip
    stack.store.readings.read_window(metric_id, None, None)  # warm up
    medians = {}
    for size in (10_000, 100_000):
        end = T0 + timedelta(seconds=size)
        times = []
        for _ in range(WINDOW_RUNS):
            started = time.perf_counter()
            series = stack.store.readings.read_window(metric_id, to_epoch_ms(T0), to_epoch_ms(end))
            times.append((time.perf_counter() - started) * 1000)
            assert len(series) == size, len(series)
        medians[size] = statistics.median(times)
    return medians


def _appender(args: tuple[str, str, str, int]) -> tuple[float, float, list[float]]:
    """One client process: (wall-clock start, end, latencies in ms)."""
    base_url, key, metric_id, client = args
    latencies = []
    with httpx.Client(base_url=base_url, headers={"X-API-Key": key}, timeout=60) as http:
        began = time.time()
        for i in range(PER_CLIENT):
            body = {"id": f"c{client}-{i}", "timestamp": iso(i * CLIENTS + client), "value": 1.0}
            started = time.perf_counter()
            response = http.post(f"/api/metrics/{metric_id}/readings", json=body)
            assert response.status_code == 201, response.text
            latencies.append((time.perf_counter() - started) * 1000)
        return began, time.time(), latencies


def concurrent_appenders(run: EngineRun, http: httpx.Client) -> tuple[float, float, float]:
    metric_id = new_metric(http, "concurrent")
    jobs = [(run.base_url, run.stack.key, metric_id, client) for client in range(CLIENTS)]
    with multiprocessing.get_context("spawn").Pool(CLIENTS) as pool:
        results = pool.map_async(_appender, jobs).get(timeout=600)
    # From the first client's first request to the last one's last: process start-up and
    # imports in the clients are not the server's time.
    elapsed = max(end for _, end, _ in results) - min(began for began, _, _ in results)
    latencies = [ms for _, _, client in results for ms in client]
    return len(latencies) / elapsed, percentile(latencies, 0.5), percentile(latencies, 0.99)


def warm_up(http: httpx.Client) -> None:
    """Unmeasured: a fresh JVM compiles Neo4j's hot paths and our queries on first use."""
    metric_id = new_metric(http, "warm-up")
    for n in range(3):
        body = {"readings": [{"id": f"u{i}", "timestamp": iso(i), "value": 1.0}
                             for i in range(n * BATCH, (n + 1) * BATCH)]}  # fmt: skip
        http.post(f"/api/metrics/{metric_id}/readings", json=body)
    for i in range(100):
        single = {"id": f"v{i}", "timestamp": iso(3 * BATCH + i), "value": 1.0}
        http.post(f"/api/metrics/{metric_id}/readings", json=single)


def measure(run: EngineRun) -> None:
    tag = f"[{run.engine}]"
    with httpx.Client(
        base_url=run.base_url, headers={"X-API-Key": run.stack.key}, timeout=120
    ) as http:
        warm_up(http)
        rate = bulk_ingest(http)
        print(f"{tag} ingest_http_bulk: {rate:,.0f} readings/s "
              f"({BULK_BATCHES} batches of {BATCH:,}; cores={CORES})", flush=True)  # fmt: skip
        p50, p99 = single_posts(http)
        print(f"{tag} single_post_latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms "
              f"({SINGLE_POSTS} sequential POSTs)", flush=True)  # fmt: skip
        for size, ms in window_reads(run.stack, http).items():
            print(f"{tag} read_window_{size // 1000}k: {ms:.1f} ms "
                  f"(median of {WINDOW_RUNS})", flush=True)  # fmt: skip
        rate, p50, p99 = concurrent_appenders(run, http)
        print(f"{tag} concurrent_appenders_one_metric: {rate:,.0f} readings/s, "
              f"p50 {p50:.1f} ms, p99 {p99:.1f} ms ({CLIENTS} processes x {PER_CLIENT} "
              "single POSTs)", flush=True)  # fmt: skip


def main() -> None:
    print(f"# both graph engines, one run (cores={CORES}); app: uvicorn, 1 worker process")
    with tempfile.TemporaryDirectory(prefix="neonomaly-bench-engines-") as tmp:
        with engine_run("falkordb", None) as run:
            measure(run)
        try:
            neo4j = start_neo4j(Path(tmp))
        except Neo4jUnavailableError as exc:
            print(f"# neo4j not measured: {exc}")
            return
        try:
            with engine_run("neo4j", neo4j) as run:
                measure(run)
        finally:
            neo4j.stop()


if __name__ == "__main__":
    main()
