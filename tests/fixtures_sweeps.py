"""Fixtures: the session's Redis stores, a sweep run as beat runs it (the planner here, its
batches in the session's real worker), waited for, and metrics whose readings a test sends
between sweeps. Test modules get them through tests/conftest.py's `pytest_plugins`."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import numpy as np
import pytest
import redis

from common.anomalies.models import Anomaly
from common.epoch import now_ms, to_epoch_ms
from common.graph.params import KeysetPage
from common.ids import new_id
from common.metrics.models import NewReading
from common.queue import BATCH_PRIORITY, JobQueue, producer_app
from common.scans.batch import BatchEntry, judge_batch
from common.scans.models import SweepTotals
from common.scans.records import BatchTally
from common.scans.sweep import SweepPlan, run_sweep
from common.settings import Settings
from common.stores import RedisStores, Repositories, redis_stores
from tests.worker.support import WorkerProcess, add_metric, recent_start, wait_for

SCAN_STEP = timedelta(minutes=5)


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


def stored_anomalies(store: Repositories, metric_id: str) -> list[Anomaly]:
    """Every anomaly stored for the metric, in time order."""
    return store.anomalies.list_page(metric_id, KeysetPage(None, None, 10_000))


def owner_scan(http: httpx.Client, swept: Swept) -> dict[str, object]:
    """The sweep as `GET /api/scans` shows it to the client's owner (their counts only)."""
    answer = http.get("/api/scans", params={"limit": 500})
    assert answer.status_code == 200, answer.text
    [scan] = [s for s in answer.json()["scans"] if s["id"] == swept.plan.sweep_id]
    return scan  # type: ignore[no-any-return]


@pytest.fixture
def own_queue(settings: Settings) -> Iterator[tuple[Settings, JobQueue]]:
    """Settings (two metrics a batch) and a producer for a sweep queue of the test's own:
    no worker reads it unless the test starts one."""
    name = f"test.sweeps.{uuid.uuid4().hex[:8]}"
    own = settings.model_copy(update={"sweep_queue": name, "scan_batch_metrics": 2})
    queue = JobQueue(producer_app(own, own.redis_url or ""))
    yield own, queue
    queue.app.close()


def waiting_batches(stores: RedisStores, queue_name: str) -> list[list[object]]:
    """The batch messages waiting in the queue (kombu keeps priority 6 in its own list)."""
    raw = stores.client.lrange(f"{queue_name}\x06\x16{BATCH_PRIORITY}", 0, -1)
    return [json.loads(base64.b64decode(json.loads(m)["body"]))[0] for m in raw]


def give_back_waiting(stores: RedisStores, queue_name: str) -> None:
    """Give the metrics of the queue's waiting batches back, as the batches would have, for
    the tests that follow, and drop the batches."""
    for batch in waiting_batches(stores, queue_name):
        sweep_id, _, entries = batch
        ids = [entry[0] for entry in entries]  # type: ignore[union-attr]
        stores.scan_states.release(ids, str(sweep_id))
        stores.scan_states.mark_behind(ids)
    stores.client.delete(f"{queue_name}\x06\x16{BATCH_PRIORITY}")


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


@dataclass(frozen=True)
class ScannedMetric:
    """A new metric and the series planned for it, one reading every SCAN_STEP ending about
    now (what sweeps look at): the first readings stored, the rest for the test to send."""

    store: Repositories
    id: str
    values: np.ndarray
    times_ms: np.ndarray  # int64, epoch ms
    ids: list[str]  # the stored readings' ids, and those `send` gives by default

    def send(self, first: int, stop: int, prefix: str = "r") -> list[str]:
        """Store readings [first, stop) of the series, with ids `{prefix}{index}`."""
        ids = [f"{prefix}{i}" for i in range(first, stop)]
        self.store.readings.append(
            self.id,
            [
                NewReading(reading_id, int(self.times_ms[i]), float(self.values[i]))
                for reading_id, i in zip(ids, range(first, stop), strict=True)
            ],
        )
        return ids

    def send_one(self, reading_id: str, timestamp_ms: int, value: float) -> int:
        """Store one reading off the plan (late, ahead, a spike): how many were new."""
        return self.store.readings.append(self.id, [NewReading(reading_id, timestamp_ms, value)])


@pytest.fixture
def scanned_metric(client: httpx.Client, store: Repositories) -> Callable[..., ScannedMetric]:
    """Make a ScannedMetric of `values` with its first `stored` readings (default: all),
    for the `client`'s owner (or `http`'s), ending about now, or `ago` before now."""

    def make(
        values: np.ndarray,
        stored: int | None = None,
        http: httpx.Client | None = None,
        ago: timedelta = timedelta(0),
    ) -> ScannedMetric:
        start = recent_start(len(values), SCAN_STEP) - ago
        stored = len(values) if stored is None else stored
        metric_id, _ = add_metric(http or client, store, values[:stored], start, SCAN_STEP)
        times = [to_epoch_ms(start + i * SCAN_STEP) for i in range(len(values))]
        return ScannedMetric(
            store,
            metric_id,
            values,
            np.array(times, dtype=np.int64),
            [f"r{i}" for i in range(len(values))],
        )

    return make


def judge_here(
    store: Repositories, stores: RedisStores, settings: Settings, metric_ids: list[str]
) -> BatchTally:
    """One batch judged in this process, as a worker would (for settings of its own)."""
    sweep_id = new_id()
    claimed = stores.scan_states.claim(metric_ids, sweep_id)
    owners = {m.id: m.owner_id for m in store.metrics.due_for_scan(None, metric_ids)}
    entries = [
        BatchEntry(m, owners[m], settings.scan_history_readings, rebuild=True) for m in claimed
    ]
    return judge_batch(
        sweep_id, now_ms(), entries, store, stores.scan_states, stores.sweeps, settings, "test"
    )
