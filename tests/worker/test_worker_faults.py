"""Faults under a real worker: a child SIGKILLed mid-job (handed out again, finishes), and
a graph store outage (retried with backoff, not taken for a dying worker)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis

from common.embedded import EmbeddedServer
from common.graph.params import KeysetPage
from common.ids import new_id
from common.jobs.models import DetectionParams, JobRecord
from common.jobs.record_store import JobStore
from common.jobs.submission import submit_detection
from common.queue import JobQueue, producer_app
from common.stores import Repositories
from common.users.models import User
from tests.support import ROOT, settings_for, start_app, stop_app
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


def test_graph_outage_is_retried_with_backoff_and_not_counted_as_worker_deaths(
    embedded_server: EmbeddedServer, tmp_path: Path
) -> None:
    # A graph store of the worker's own (FalkorDB in its own server), stopped once the
    # worker is connected: the job finds it unreachable on every run. Redis stays up.
    graph = EmbeddedServer(tmp_path / "graph").start()
    queue = f"neonomaly.faults.{new_id()[:8]}"
    env = {
        **os.environ,
        "GRAPH_URL": graph.graph_url,
        "REDIS_URL": embedded_server.redis_url,
        "DATA_DIR": str(embedded_server.data_dir),
        "PYTHONPATH": str(ROOT),
        "JOB_QUEUE": queue,
    }
    settings = settings_for(embedded_server).model_copy(update={"job_queue": queue})
    jobs = JobStore.from_settings(redis.Redis.from_url(embedded_server.redis_url), settings)
    worker = start_worker(env, tmp_path)
    try:
        graph.stop()
        record = submit_detection(
            jobs,
            JobQueue(producer_app(settings, embedded_server.redis_url)),
            kind="detect",
            owner_id=new_id(),
            metric_id=new_id(),
            params=DetectionParams(method="rolling"),
        )
        submitted = time.monotonic()
        notes: set[str] = set()

        def failed() -> JobRecord | None:
            current = jobs.get(record.id)
            assert current is not None
            if current.status == "queued" and current.error:
                notes.add(current.error)
            return current if current.status == "failed" else None

        job = wait_for(failed, 90, "the job to give up")
        took = time.monotonic() - submitted
    finally:
        stop_worker(worker)
        jobs.redis.close()
    # The README's retries, 1 + 2 + 4 + 8 + 16 s, then a failure that says why.
    assert took >= 31, (took, job, worker.log()[-3000:])
    assert job.error == (
        "the graph store was unavailable through 6 attempts over 31 s: the job did not "
        "run; submit it again once it is back"
    )
    assert job.attempts == 6 and job.worker_deaths == 0
    assert "retrying in 4 s: the graph store is unavailable" in notes
    assert not any(str(graph.port) in note for note in notes)  # never where it is
