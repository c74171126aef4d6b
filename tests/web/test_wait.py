"""`?wait=` holds no thread: many waiting clients do not starve the other routes.

The apps here queue jobs on a queue no worker reads, so every job stays queued and every
wait lasts its full time.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from common.settings import Settings
from common.users.models import User
from tests.support import AppServer, start_app, stop_app

WAITERS = 100
WAIT_SECONDS = 10


@pytest.fixture
def user_key(make_user: Callable[..., tuple[User, str]]) -> str:
    return make_user()[1]


def unconsumed_app(service_env: dict[str, str], **settings: str) -> AppServer:
    return start_app(service_env, {"JOB_QUEUE": f"test-unread-{uuid.uuid4().hex}", **settings})


@pytest.fixture
def app(service_env: dict[str, str]) -> Iterator[AppServer]:
    server = unconsumed_app(service_env)
    yield server
    stop_app(server)


def metric_with_readings(base_url: str, key: str) -> str:
    with httpx.Client(base_url=base_url, headers={"X-API-Key": key}, timeout=30) as http:
        service = http.post("/api/services", json={"name": "waited"}).json()
        metric = http.post("/api/metrics", json={"name": "cpu", "service_id": service["id"]})
        metric_id: str = metric.json()["id"]
        batch = [{"value": float(i), "timestamp": f"2026-11-25T10:{i:02}:00Z"} for i in range(30)]
        posted = http.post(f"/api/metrics/{metric_id}/readings", json={"readings": batch})
        assert posted.status_code == 201, posted.text
    return metric_id


def waits_in_progress(client: redis.Redis) -> int:
    return len(client.pubsub_channels("neonomaly:job:*:finished"))


async def submit_waiting(http: httpx.AsyncClient, metric_id: str, wait: float) -> httpx.Response:
    return await http.post(
        "/api/metrics/anomaly-detection", params={"wait": wait}, json={"metric_id": metric_id}
    )


@pytest.mark.slow
def test_100_waiting_clients_leave_other_routes_answering_fast(
    app: AppServer, user_key: str, settings: Settings
) -> None:
    metric_id = metric_with_readings(app.base_url, user_key)
    observer = redis.Redis.from_url(settings.redis_url or "")

    async def scenario() -> tuple[list[httpx.Response], int, float]:
        limits = httpx.Limits(max_connections=WAITERS + 10)
        async with httpx.AsyncClient(
            base_url=app.base_url, headers={"X-API-Key": user_key}, timeout=60, limits=limits
        ) as http:
            waiting = [
                asyncio.create_task(submit_waiting(http, metric_id, WAIT_SECONDS))
                for _ in range(WAITERS)
            ]
            # Every one of them is waiting on its job (subscribed), within a few seconds.
            deadline = time.monotonic() + 8
            while waits_in_progress(observer) < WAITERS and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            in_progress = waits_in_progress(observer)
            began = time.monotonic()
            plain = await http.get("/api/services", timeout=5)
            plain_seconds = time.monotonic() - began
            assert plain.status_code == 200, plain.text
            answers = await asyncio.wait_for(asyncio.gather(*waiting), WAIT_SECONDS + 30)
        return answers, in_progress, plain_seconds

    try:
        answers, in_progress, plain_seconds = asyncio.run(scenario())
    finally:
        observer.close()
    assert in_progress == WAITERS, f"only {in_progress} of {WAITERS} waits were in progress"
    assert plain_seconds < 1.0, f"a plain GET took {plain_seconds:.2f} s"
    assert [answer.status_code for answer in answers] == [202] * WAITERS
    assert all(answer.json()["job"]["status"] == "queued" for answer in answers)


@pytest.mark.slow
def test_waits_beyond_max_waiting_requests_answer_202_at_once(
    service_env: dict[str, str], user_key: str
) -> None:
    app = unconsumed_app(service_env, MAX_WAITING_REQUESTS="2")
    try:
        metric_id = metric_with_readings(app.base_url, user_key)

        async def timed(http: httpx.AsyncClient) -> tuple[float, Any]:
            began = time.monotonic()
            answer = await submit_waiting(http, metric_id, 4)
            return time.monotonic() - began, answer

        async def scenario() -> list[tuple[float, Any]]:
            async with httpx.AsyncClient(
                base_url=app.base_url, headers={"X-API-Key": user_key}, timeout=30
            ) as http:
                # Many more than the bound (and than the web's Redis connections for waits).
                return await asyncio.gather(*(timed(http) for _ in range(30)))

        results = asyncio.run(scenario())
    finally:
        stop_app(app)
    assert [answer.status_code for _, answer in results] == [202] * 30, [
        answer.text for _, answer in results if answer.status_code != 202
    ]
    durations = sorted(seconds for seconds, _ in results)
    assert durations[27] < 3.0, durations  # 28 were not made to wait
    assert durations[28] >= 3.5, durations  # two waited their 4 s
