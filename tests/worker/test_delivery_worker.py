"""Webhook deliveries on a worker of their own, as `neonomaly up` runs them: receivers that
never finish answering hold up no detection job, each attempt ends at its deadline, one
attempt of a delivery runs at a time, and an attempt whose worker is killed still counts."""

from __future__ import annotations

import itertools
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.notifications.attempts import UNFINISHED
from common.settings import Settings
from common.stores import Repositories
from common.supervisor import DELIVERIES_WORKER, JOBS_WORKER, UpOptions, child_specs
from common.users.models import User
from tests.support import ROOT, AppServer, start_app, stop_app
from tests.worker.support import add_metric, kill, seasonal_series, wait_for
from tests.worker.webhook_receiver import TricklingReceiver

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

DEADLINE = 3  # WEBHOOK_TIMEOUT_SECONDS here: each attempt in all


@dataclass
class UpWorkers:
    """The jobs' and the deliveries' workers as `neonomaly up` starts them, on queues of
    their own (no other worker of the session takes their work), and an app that sends
    to those queues."""

    app: AppServer
    processes: dict[str, subprocess.Popen[bytes]]
    logs: dict[str, Path]

    def log(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace")

    def children(self, name: str) -> list[int]:
        pid = self.processes[name].pid
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def worker_ready(workers: UpWorkers, name: str) -> bool:
    return " ready." in workers.log(name)


@pytest.fixture
def up_workers(service_env: dict[str, str], tmp_path: Path) -> Iterator[UpWorkers]:
    suffix = uuid.uuid4().hex[:8]
    env = {
        **service_env,
        "JOB_QUEUE": f"neonomaly.jobs.{suffix}",
        "DELIVERY_QUEUE": f"neonomaly.deliveries.{suffix}",
        "SWEEP_QUEUE": f"neonomaly.sweeps.{suffix}",
        "WEBHOOK_TIMEOUT_SECONDS": str(DEADLINE),
        "WEBHOOK_RETRY_FIRST_SECONDS": "5",
        "WEBHOOK_RETRY_MAX_SECONDS": "5",
    }
    settings = Settings(
        job_queue=env["JOB_QUEUE"],
        delivery_queue=env["DELIVERY_QUEUE"],
        sweep_queue=env["SWEEP_QUEUE"],
        _env_file=None,
    )
    specs = {spec.name: spec for spec in child_specs(settings, UpOptions(data_dir=tmp_path))}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    logs: dict[str, Path] = {}
    app = start_app(env)
    try:
        for name in (JOBS_WORKER, DELIVERIES_WORKER):
            logs[name] = tmp_path / f"{name}.log"
            with logs[name].open("wb") as log:
                argv = [*specs[name].argv, f"--hostname={name}-{suffix}@%h"]
                processes[name] = subprocess.Popen(
                    argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
                )
        workers = UpWorkers(app, processes, logs)
        for name in processes:
            wait_for(partial(worker_ready, workers, name), 90, f"the {name} to start")
        yield workers
    finally:
        stop_app(app)
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def http(
    up_workers: UpWorkers, make_user: Callable[..., tuple[User, str]]
) -> Iterator[httpx.Client]:
    _, key = make_user("slow-receivers")
    with httpx.Client(
        base_url=up_workers.app.base_url, headers={"X-API-Key": key}, timeout=30
    ) as client:
        yield client


def attempt_ended(http: httpx.Client, deliveries_url: str) -> list[dict[str, Any]] | None:
    """The channel's delivery log once its newest attempt has ended at its deadline."""
    log: list[dict[str, Any]] = http.get(deliveries_url).json()
    ended = log[0]["last_error"].startswith(f"no complete answer within {DEADLINE} s")
    return log if ended else None


def test_trickling_receivers_never_hold_up_a_detection_job(
    up_workers: UpWorkers, http: httpx.Client, store: Repositories
) -> None:
    receivers = [TricklingReceiver(trickle="headers", interval=1).start() for _ in range(2)]
    try:
        channels = []
        for receiver in receivers:
            created = http.post(
                "/api/notification-channels", json={"type": "webhook", "url": receiver.url}
            )
            assert created.status_code == 201, created.text
            channels.append(created.json())
            assert (
                http.post(f"/api/notification-channels/{channels[-1]['id']}/test").status_code
                == 202
            )
        # Both deliveries are being trickled to: every process of a shared pool would be busy.
        wait_for(lambda: all(r.connections for r in receivers), 30, "both receivers to be called")
        metric_id, _ = add_metric(http, store, seasonal_series(300))
        submitted = time.monotonic()
        job_id = http.post(
            "/api/metrics/anomaly-detection", json={"metric_id": metric_id, "method": "rolling"}
        ).json()["job_id"]
        job = wait_for(
            lambda: (j := http.get(f"/api/jobs/{job_id}").json())["status"] != "queued" and j,
            30,
            "the detection job to start",
        )
        waited = time.monotonic() - submitted
        assert waited < 5, (waited, job, up_workers.log(JOBS_WORKER)[-2000:])
        # Meanwhile each attempt ended at its deadline, and none overlapped another of the
        # same delivery (the lease), though the receivers never finished answering. (Seen
        # between attempts: while a retry runs, the record says it has no outcome yet.)
        for receiver, channel in zip(receivers, channels, strict=True):
            log = wait_for(
                partial(attempt_ended, http, channel["deliveries_url"]),
                4 * DEADLINE + 10,
                "an attempt to end at its deadline",
                interval=0.2,
            )
            assert log[0]["attempts"] >= 1 and log[0]["status"] == "pending", log
            ended = [c for c in receiver.connections if c.closed is not None]
            assert ended, receiver.connections
            assert max(c.closed - c.opened for c in ended) < DEADLINE + 2  # type: ignore[operator]
            spans = sorted((c.opened, c.closed or float("inf")) for c in receiver.connections)
            assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), spans
    finally:
        for receiver in receivers:
            receiver.stop()


def test_an_attempt_whose_worker_is_killed_still_counts(
    up_workers: UpWorkers, http: httpx.Client
) -> None:
    receiver = TricklingReceiver(trickle="headers", interval=1).start()
    try:
        channel = http.post(
            "/api/notification-channels", json={"type": "webhook", "url": receiver.url}
        ).json()
        http.post(f"/api/notification-channels/{channel['id']}/test")
        wait_for(lambda: receiver.connections, 30, "the receiver to be called")
        for pid in up_workers.children(DELIVERIES_WORKER):
            kill(pid)  # mid-attempt: no outcome is ever written by it
        [delivery] = http.get(channel["deliveries_url"]).json()
    finally:
        receiver.stop()
    # Counted all the same, saying so, with its next attempt due (the sweep re-queues it
    # if nothing else does), so the give-up clock runs.
    assert delivery["attempts"] == 1 and delivery["status"] == "pending", delivery
    assert delivery["last_error"] == UNFINISHED
    assert delivery["next_attempt_at"] is not None
