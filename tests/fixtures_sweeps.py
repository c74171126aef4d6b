"""Fixtures: the session's Redis stores, and a sweep run as beat runs it (the planner here,
its batches in the session's real worker), waited for. Test modules get them through
tests/conftest.py's `pytest_plugins`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
import redis

from common.queue import JobQueue, producer_app
from common.scans.models import SweepTotals
from common.scans.sweep import SweepPlan, run_sweep
from common.settings import Settings
from common.stores import RedisStores, Repositories, redis_stores
from tests.worker.support import WorkerProcess, wait_for


@pytest.fixture
def stores(settings: Settings) -> Iterator[RedisStores]:
    """The Redis stores (scan states, sweep records...) on the session's server."""
    client = redis.Redis.from_url(settings.redis_url or "")
    yield redis_stores(client, settings)
    client.close()


@dataclass(frozen=True)
class Swept:
    plan: SweepPlan
    totals: SweepTotals


def finished_sweep(stores: RedisStores, sweep_id: str, timeout: float = 90) -> SweepTotals:
    """The sweep's record once every batch of it has finished."""

    def done() -> SweepTotals | None:
        totals = stores.sweeps.totals(sweep_id)
        return totals if totals is not None and totals.finished_at is not None else None

    return wait_for(done, timeout, f"sweep {sweep_id} to finish")  # type: ignore[no-any-return]


def owner_scan(http: httpx.Client, swept: Swept) -> dict[str, object]:
    """The sweep as `GET /api/scans` shows it to the client's owner (their counts only)."""
    answer = http.get("/api/scans", params={"limit": 500})
    assert answer.status_code == 200, answer.text
    [scan] = [s for s in answer.json()["scans"] if s["id"] == swept.plan.sweep_id]
    return scan  # type: ignore[no-any-return]


@pytest.fixture
def sweep(
    store: Repositories,
    stores: RedisStores,
    settings: Settings,
    celery_worker: WorkerProcess,
) -> Iterator[Callable[..., Swept]]:
    """Run one sweep (its batches on the session's worker) and wait for it to finish."""
    queue = JobQueue(producer_app(settings, settings.redis_url or ""))

    def run(settings_: Settings | None = None) -> Swept:
        plan = run_sweep(store, stores.scan_states, stores.sweeps, queue, settings_ or settings)
        return Swept(plan, finished_sweep(stores, plan.sweep_id))

    yield run
    queue.app.close()
