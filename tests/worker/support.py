"""Helpers of the job tests: a real Celery worker process, metrics with known series, polling.

`start_worker` also serves tests that need their own worker (on their own queue, with
their own settings), such as the one that SIGKILLs a worker's child mid-job.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from common.epoch import to_epoch_ms
from common.metrics.models import NewReading
from common.stores import Repositories
from tests.support import ROOT

READY_TIMEOUT = 60.0
T0 = datetime(2026, 3, 2, tzinfo=UTC)


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path
    queues: list[str]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def child_pids(self) -> list[int]:
        """The prefork pool's processes (the ones that run tasks)."""
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except OSError:
            return []


def start_worker(
    env: dict[str, str],
    log_dir: Path,
    extra_env: dict[str, str] | None = None,
    *,
    queues: list[str] | None = None,
    concurrency: int = 1,
) -> WorkerProcess:
    """`celery worker --pool=prefork`, waited for until it is ready. It consumes `queues`,
    by default every queue: the jobs', the deliveries' and the sweeps' (JOB_QUEUE,
    DELIVERY_QUEUE, SWEEP_QUEUE)."""
    env = {**env, **(extra_env or {})}
    queues = queues or [
        env.get("JOB_QUEUE", "neonomaly.jobs"),
        env.get("DELIVERY_QUEUE", "neonomaly.deliveries"),
        env.get("SWEEP_QUEUE", "neonomaly.sweeps"),
    ]
    name = f"test-{uuid.uuid4().hex[:8]}"
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker.celery_app:app", "worker",
             "--pool=prefork", f"--concurrency={concurrency}", "--loglevel=INFO",
             f"--hostname={name}@%h", "--without-gossip", "--without-mingle",
             f"--queues={','.join(queues)}"],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    worker = WorkerProcess(process, log_path, queues)
    deadline = time.monotonic() + READY_TIMEOUT
    while " ready." not in worker.log():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the worker did not start:\n{worker.log()[-3000:]}")
        time.sleep(0.1)
    return worker


def stop_worker(worker: WorkerProcess) -> None:
    worker.process.send_signal(signal.SIGTERM)  # warm shutdown
    try:
        worker.process.wait(20)
    except subprocess.TimeoutExpired:
        worker.process.kill()
        worker.process.wait()


def wait_for(
    condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05
) -> Any:
    """Poll until `condition()` is truthy (and return it); fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def wait_for_reach(store: Repositories, window_id: str, timeout: float = 60.0) -> None:
    """Wait until the worker applied the maintenance window's reach into the past (what
    its GET shows as `reach_pending`; a deleted window's too)."""

    def applied() -> bool:
        reach = store.maintenance.reach_of(window_id)
        return reach is None or not reach.pending

    wait_for(applied, timeout, f"the reach of maintenance window {window_id}")


def poll_job(http: httpx.Client, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """GET the job until it is final; returns its last state."""

    def final() -> dict[str, Any] | None:
        job = http.get(f"/api/jobs/{job_id}").json()
        return job if job["status"] in ("succeeded", "failed") else None

    return wait_for(final, timeout, f"job {job_id} to finish")  # type: ignore[no-any-return]


def seasonal_series(
    count: int,
    period: int = 48,
    spike_at: int | None = None,
    seed: int = 7,
    noise: float = 0.5,
) -> np.ndarray:
    """A daily-like sine with a little noise (sd `noise`), and optionally one large spike."""
    rng = np.random.default_rng(seed)
    steps = np.arange(count)
    values = 50 + 10 * np.sin(2 * np.pi * steps / period) + rng.normal(0, noise, count)
    if spike_at is not None:
        values[spike_at] += 40
    return values


def recent_start(count: int, step: timedelta) -> datetime:
    """A start such that `count` readings `step` apart end about now (what scans look at)."""
    return datetime.now(UTC).replace(microsecond=0) - count * step


def add_metric(
    http: httpx.Client,
    store: Repositories,
    values: np.ndarray,
    start: datetime = T0,
    step: timedelta = timedelta(minutes=5),
) -> tuple[str, list[str]]:
    """A new service + metric holding `values` every `step` from `start`; (metric id, ids)."""
    service = http.post("/api/services", json={"name": f"svc-{uuid.uuid4().hex[:6]}"})
    assert service.status_code == 201, service.text
    metric = http.post("/api/metrics", json={"name": "cpu", "service_id": service.json()["id"]})
    assert metric.status_code == 201, metric.text
    metric_id = metric.json()["id"]
    ids = [f"r{i}" for i in range(len(values))]
    readings = [
        NewReading(id=ids[i], timestamp_ms=to_epoch_ms(start + i * step), value=float(v))
        for i, v in enumerate(values)
    ]
    # Straight to the store: quicker than HTTP for big series, and the same chain code.
    for first in range(0, len(readings), 5000):
        store.readings.append(metric_id, readings[first : first + 5000])
    return metric_id, ids


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
