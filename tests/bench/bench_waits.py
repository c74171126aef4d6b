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
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]

from common.auth import new_api_key  # noqa: E402
from common.embedded import EmbeddedServer  # noqa: E402
from common.graph.store import GraphStore  # noqa: E402
from common.models import NewReading  # noqa: E402
from tests.support import settings_for, start_app, stop_app  # noqa: E402

CORES = os.cpu_count()
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
    with tempfile.TemporaryDirectory(prefix="neonomaly-bench-waits-") as tmp:
        data_dir = Path(tmp) / "data"
        server = EmbeddedServer(data_dir).start()
        settings = settings_for(server)
        store = GraphStore.connect(settings)
        store.ensure_schema()
        env = {
            **os.environ,
            "GRAPH_URL": server.graph_url,
            "REDIS_URL": server.redis_url,
            "DATA_DIR": str(data_dir),
            "PYTHONPATH": str(ROOT),
            "LOG_LEVEL": "WARNING",
            "JOB_QUEUE": f"bench-unread-{uuid.uuid4().hex}",
        }
        app = start_app(env)
        probe = redis.Redis.from_url(server.redis_url)
        try:
            key = new_api_key()
            user = store.create_user("bench", key.hashed)
            service = store.create_service(user.id, "bench", None)
            metric = store.create_metric(user.id, service.id, "waited", None)
            store.append_readings(
                metric.id,
                [
                    NewReading(id=f"r{i}", timestamp_ms=1_767_225_600_000 + i, value=1.0)
                    for i in range(30)
                ],
            )
            for waiting in WAITING:
                ms = sorted(
                    s * 1000
                    for s in asyncio.run(
                        measure(app.base_url, key.plain, metric.id, waiting, probe)
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
            stop_app(app)
            store.close()
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
