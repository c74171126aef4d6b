"""Other routes while many clients wait on `?wait=`: latency of a plain GET.

    .venv/bin/python tests/bench/bench_waits.py    (or `make bench`)

Starts its own embedded server and web app (one process, no worker: jobs stay queued, so
every wait lasts its full time) in a temporary directory. For each count of waiting clients
(0, 100, 190; the web keeps at most MAX_WAITING_REQUESTS = 200 waits), it starts that many
`POST /api/metrics/anomaly-detection?wait=15`, waits until all are waiting (subscribed in
Redis), then times 50 sequential `GET /api/services`. Prints p50 / p99 / max. The
requirement (tests/web/test_wait.py) is under 1 s with 100 waiting clients.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]

from common.metrics.models import NewReading  # noqa: E402
from tests.bench.stack import CORES, T0_MS, embedded_stack, running_app  # noqa: E402

WAITING = (0, 100, 190)
WAIT_SECONDS = 15
SAMPLES = 50


async def measure(
    base_url: str, key: str, metric_id: str, waiting: int, probe: redis.Redis
) -> list[float]:
    limits = httpx.Limits(max_connections=waiting + 10)
    async with httpx.AsyncClient(
        base_url=base_url, headers={"X-API-Key": key}, timeout=60, limits=limits
    ) as http:
        waits = [
            asyncio.create_task(
                http.post(
                    "/api/metrics/anomaly-detection",
                    params={"wait": WAIT_SECONDS},
                    json={"metric_id": metric_id},
                )
            )
            for _ in range(waiting)
        ]
        deadline = time.monotonic() + 10
        while len(probe.pubsub_channels("neonomaly:job:*:finished")) < waiting:
            if time.monotonic() > deadline:
                raise RuntimeError("the waits did not all start within 10 s")
            await asyncio.sleep(0.05)
        seconds = []
        for _ in range(SAMPLES):
            began = time.perf_counter()
            answer = await http.get("/api/services")
            seconds.append(time.perf_counter() - began)
            if answer.status_code != 200:
                raise RuntimeError(f"GET /api/services answered {answer.status_code}")
        # Let every wait end on the server too, before the next round.
        answers = await asyncio.gather(*waits)
        if any(answer.status_code != 202 for answer in answers):
            raise RuntimeError("a waiting request did not answer 202")
    return seconds


def main() -> int:
    # No worker reads this queue: every job stays queued, so every wait lasts its full time.
    unread_queue = {"JOB_QUEUE": f"bench-unread-{uuid.uuid4().hex}"}
    with embedded_stack(extra_env=unread_queue) as stack, running_app(stack) as app:
        probe = redis.Redis.from_url(stack.server.redis_url)
        try:
            service = stack.store.services.create(stack.user_id, "bench", None)
            metric = stack.store.metrics.create(stack.user_id, service.id, "waited", None)
            stack.store.readings.append(
                metric.id,
                [NewReading(id=f"r{i}", timestamp_ms=T0_MS + i, value=1.0) for i in range(30)],
            )
            for waiting in WAITING:
                ms = sorted(
                    s * 1000
                    for s in asyncio.run(
                        measure(app.base_url, stack.key, metric.id, waiting, probe)
                    )
                )
                p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
                print(
                    f"GET /api/services with {waiting} clients waiting on ?wait=: "
                    f"p50 {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms, max {ms[-1]:.1f} ms "
                    f"({SAMPLES} requests; requirement < 1000 ms at 100; {CORES} cores)",
                    flush=True,
                )
        finally:
            probe.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
