"""API latency under load: 50 concurrent clients mixing reads and writes for 30 s.

    .venv/bin/python tests/bench/bench_api_load.py    (or `make bench`)

Starts its own embedded server and the app (uvicorn, 2 worker processes) in a temporary
directory. 50 asyncio clients (httpx.AsyncClient, one process) loop over: read a page of
100 readings (40%), read a metric with its latest reading (30%), post one reading (20%),
post a batch of 50 (10%), on 10 metrics pre-filled with 10,000 readings each. Prints
p50/p99 per kind and overall, the request rate, and the error count (expected: 0).
The clients share the machine's cores with the app and the server.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parent)]

from tests.bench.stack import CORES, embedded_stack  # noqa: E402
from tests.support import start_app, stop_app  # noqa: E402

CLIENTS = 50
DURATION_S = 30.0
METRICS = 10
PREFILL = 10_000
UVICORN_WORKERS = 2
KINDS = (("read_page", 0.4), ("read_metric", 0.3), ("post_one", 0.2), ("post_batch", 0.1))


def prefill(base_url: str, key: str) -> list[str]:
    with httpx.Client(base_url=base_url, headers={"X-API-Key": key}, timeout=120) as http:
        service = http.post("/api/services", json={"name": "load"}).json()
        metric_ids = []
        for m in range(METRICS):
            metric = http.post("/api/metrics", json={"name": f"m{m}", "service_id": service["id"]})
            metric_id = metric.json()["id"]
            readings = [
                {"value": float(i % 100), "timestamp": f"2026-01-01T{i // 3600:02d}:"
                 f"{i // 60 % 60:02d}:{i % 60:02d}Z"}
                for i in range(PREFILL)
            ]  # fmt: skip
            response = http.post(f"/api/metrics/{metric_id}/readings", json={"readings": readings})
            assert response.status_code == 201, response.text
            metric_ids.append(metric_id)
    return metric_ids


async def client(
    base_url: str,
    key: str,
    metric_ids: list[str],
    seed: int,
    deadline: float,
    latencies: dict[str, list[float]],
    errors: list[str],
) -> None:
    rng = random.Random(seed)
    kinds = [kind for kind, _ in KINDS]
    weights = [weight for _, weight in KINDS]
    async with httpx.AsyncClient(base_url=base_url, headers={"X-API-Key": key}, timeout=30) as http:
        sequence = 0
        while time.monotonic() < deadline:
            kind = rng.choices(kinds, weights)[0]
            metric_id = rng.choice(metric_ids)
            sequence += 1
            started = time.perf_counter()
            try:
                if kind == "read_page":
                    response = await http.get(
                        f"/api/metrics/{metric_id}/readings",
                        params={"limit": 100, "start": "2026-01-01T01:00:00Z"},
                    )
                elif kind == "read_metric":
                    response = await http.get(f"/api/metrics/{metric_id}")
                elif kind == "post_one":
                    response = await http.post(
                        f"/api/metrics/{metric_id}/readings", json={"value": rng.random()}
                    )
                else:
                    batch = [
                        {"value": rng.random(), "id": f"c{seed}-{sequence}-{i}"} for i in range(50)
                    ]
                    response = await http.post(
                        f"/api/metrics/{metric_id}/readings", json={"readings": batch}
                    )
                ok = response.status_code in (200, 201)
                detail = f"{kind}: {response.status_code} {response.text[:120]}"
            except httpx.HTTPError as exc:
                ok, detail = False, f"{kind}: {type(exc).__name__} {exc}"
            elapsed = time.perf_counter() - started
            if ok:
                latencies[kind].append(elapsed)
            else:
                errors.append(detail)


def percentiles(samples: list[float]) -> tuple[float, float]:
    if len(samples) < 2:
        return float("nan"), float("nan")
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


async def run_load(base_url: str, key: str, metric_ids: list[str]) -> None:
    latencies: dict[str, list[float]] = {kind: [] for kind, _ in KINDS}
    errors: list[str] = []
    deadline = time.monotonic() + DURATION_S
    started = time.perf_counter()
    await asyncio.wait_for(
        asyncio.gather(
            *(
                client(base_url, key, metric_ids, seed, deadline, latencies, errors)
                for seed in range(CLIENTS)
            )
        ),
        timeout=DURATION_S + 60,
    )
    elapsed = time.perf_counter() - started
    everything = [sample for samples in latencies.values() for sample in samples]
    p50, p99 = percentiles(everything)
    note = (
        f"cores={CORES}, {CLIENTS} clients, {DURATION_S:.0f} s, {UVICORN_WORKERS} uvicorn workers"
    )
    print(f"api_load_p50: {p50:.1f} ms ({note})")
    print(f"api_load_p99: {p99:.1f} ms ({note})")
    print(f"api_load_requests_per_s: {len(everything) / elapsed:.0f} ({note})")
    for kind, samples in latencies.items():
        kind_p50, kind_p99 = percentiles(samples)
        print(f"api_load_{kind}: p50 {kind_p50:.1f} ms, p99 {kind_p99:.1f} ms, n={len(samples)}")
    print(f"api_load_errors: {len(errors)} (expected 0)")
    for detail in errors[:5]:
        print(f"#   {detail}")


def main() -> None:
    print(f"# API under load: {CLIENTS} concurrent clients mixing reads and writes")
    with embedded_stack() as stack:
        app = start_app(stack.env, workers=UVICORN_WORKERS)
        try:
            metric_ids = prefill(app.base_url, stack.key)
            asyncio.run(run_load(app.base_url, stack.key, metric_ids))
        finally:
            stop_app(app)


if __name__ == "__main__":
    main()
