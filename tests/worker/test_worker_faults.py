"""A worker's child process SIGKILLed mid-job: the job is handed out again and finishes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from common.graph.params import KeysetPage
from common.ids import new_id
from common.stores import Repositories
from common.users.models import User
from tests.support import start_app, stop_app
from tests.worker.support import (
    add_metric,
    kill,
    poll_job,
    seasonal_series,
    start_worker,
    stop_worker,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def test_job_whose_worker_child_is_killed_is_rerun_to_the_end(
    service_env: dict[str, str],
    store: Repositories,
    make_user: Callable[..., tuple[User, str]],
    tmp_path: Path,
) -> None:
    # Its own queue, so that no other worker takes the job; its own worker, whose jobs
    # pause 3 s after starting (JOB_START_DELAY_SECONDS, a fault-testing knob): time to kill.
    queue = {"JOB_QUEUE": f"neonomaly.faults.{new_id()[:8]}"}
    worker = start_worker(service_env, tmp_path, {**queue, "JOB_START_DELAY_SECONDS": "3"})
    app = start_app(service_env, queue)
    try:
        _, key = make_user("faults")
        with httpx.Client(base_url=app.base_url, headers={"X-API-Key": key}, timeout=30) as http:
            metric_id, ids = add_metric(http, store, seasonal_series(600, spike_at=500))
            job_id = http.post(
                "/api/metrics/anomaly-detection",
                json={"metric_id": metric_id, "method": "stl", "period": 48},
            ).json()["job_id"]
            wait_for(
                lambda: http.get(f"/api/jobs/{job_id}").json()["status"] == "running",
                30,
                "the job to start",
            )
            children = worker.child_pids()
            assert len(children) == 1, children
            kill(children[0])

            job = poll_job(http, job_id, timeout=60)
            assert job["status"] == "succeeded", (job, worker.log()[-3000:])
            assert job["attempts"] == 2
            assert worker.child_pids() and worker.child_pids() != children  # a new child
            stored = store.anomalies.list_page(metric_id, KeysetPage(None, None, 10_000))
            assert ids[500] in {a.reading_id for a in stored}
            assert len({a.reading_id for a in stored}) == len(stored)
    finally:
        stop_app(app)
        stop_worker(worker)
