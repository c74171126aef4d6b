"""Periodic scans: online detection per metric with new readings, each window scanned once."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest

from common.epoch import to_epoch_ms
from common.graph.params import KeysetPage
from common.jobs.models import JobRecord
from common.jobs.record_store import JobStore
from common.metrics.models import NewReading
from common.queue import JobQueue, producer_app
from common.scans.marks import ScanMarks
from common.scans.sweep import ScanReport, run_scan
from common.settings import Settings
from common.stores import Repositories
from tests.support import ROOT
from tests.worker.support import (
    WorkerProcess,
    add_metric,
    recent_start,
    seasonal_series,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

STEP = timedelta(minutes=1)


@pytest.fixture(scope="module")
def queue(settings: Settings) -> JobQueue:
    return JobQueue(producer_app(settings, settings.redis_url or ""))


def run_sweep(
    store: Repositories, jobs: JobStore, queue: JobQueue, settings: Settings
) -> ScanReport:
    """One sweep, as beat's task runs it."""
    return run_scan(store.metrics, ScanMarks(jobs.redis), jobs, queue, settings)


def scans_of(reports: list[ScanReport], jobs: JobStore, metric_id: str) -> list[JobRecord]:
    records = [jobs.get(job_id) for report in reports for job_id in report.job_ids]
    return [r for r in records if r is not None and r.metric_id == metric_id]


def finished(jobs: JobStore, job_id: str) -> JobRecord:
    return wait_for(  # type: ignore[no-any-return]
        lambda: (r := jobs.get(job_id)) is not None and r.is_final and r, 60, f"scan {job_id}"
    )


def test_concurrent_sweeps_scan_each_window_once(
    client: httpx.Client,
    store: Repositories,
    jobs: JobStore,
    queue: JobQueue,
    settings: Settings,
    celery_worker: WorkerProcess,
) -> None:
    values = seasonal_series(300, period=48, spike_at=290)
    metric_id, ids = add_metric(client, store, values, start=recent_start(300, STEP), step=STEP)

    reports: list[ScanReport] = []
    sweeps = [
        threading.Thread(target=lambda: reports.append(run_sweep(store, jobs, queue, settings)))
        for _ in range(2)
    ]
    for sweep in sweeps:
        sweep.start()
    for sweep in sweeps:
        sweep.join(60)
    assert len(reports) == 2
    first = scans_of(reports, jobs, metric_id)
    assert len(first) == 1, "two sweeps scanned the same window"
    scan = finished(jobs, first[0].id)
    assert scan.status == "succeeded", scan.error
    assert scan.kind == "scan" and scan.params.online and scan.summary is not None
    stored = store.anomalies.list_page(metric_id, KeysetPage(None, None, 10_000))
    assert ids[290] in {a.reading_id for a in stored}
    assert len(stored) == scan.summary.anomalies_stored

    # Nothing new: the next sweep leaves the metric alone.
    assert scans_of([run_sweep(store, jobs, queue, settings)], jobs, metric_id) == []

    # New readings with a spike: only they are judged (earlier ones are history). The
    # spike comes after the quiet time (50 readings) of the alarm at 290.
    more = 50 + 10 * np.sin(2 * np.pi * np.arange(300, 360) / 48)
    more[45] += 40
    last = to_epoch_ms(recent_start(300, STEP) + 299 * STEP)
    store.readings.append(
        metric_id,
        [
            NewReading(id=f"n{i}", timestamp_ms=last + (i + 1) * 60_000, value=float(v))
            for i, v in enumerate(more)
        ],
    )
    second = scans_of([run_sweep(store, jobs, queue, settings)], jobs, metric_id)
    assert len(second) == 1
    rescan = finished(jobs, second[0].id)
    assert rescan.status == "succeeded" and rescan.summary is not None
    assert rescan.params.judge_from is not None and rescan.params.end is not None
    assert rescan.params.judge_from > scan.params.judge_from  # type: ignore[operator]
    after = store.anomalies.list_page(metric_id, KeysetPage(None, None, 10_000))
    assert "n45" in {a.reading_id for a in after}
    assert len(after) == len(stored) + rescan.summary.anomalies_stored
    assert len({a.id for a in after}) == len(after)


def start_beat(env: dict[str, str], directory: Path, name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "worker.celery_app:app", "beat",
         "--loglevel=INFO", f"--schedule={directory / name}", f"--pidfile={directory / name}.pid"],
        env={**env, "SCAN_INTERVAL_SECONDS": "1"},
        cwd=ROOT,
        stdout=(directory / f"{name}.log").open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip


def test_two_beats_store_anomalies_once_and_owner_sees_the_scan(
    client: httpx.Client,
    store: Repositories,
    service_env: dict[str, str],
    celery_worker: WorkerProcess,
    tmp_path: Path,
) -> None:
    values = seasonal_series(300, period=48, spike_at=295, seed=11)
    metric_id, ids = add_metric(client, store, values, start=recent_start(300, STEP), step=STEP)
    beats = [start_beat(service_env, tmp_path, f"beat{i}") for i in range(2)]
    try:

        def scan_jobs() -> list[dict[str, object]]:
            listed = client.get("/api/jobs", params={"kind": "scan", "limit": 100}).json()
            return [job for job in listed["jobs"] if job["metric_id"] == metric_id]

        done = wait_for(
            lambda: [j for j in scan_jobs() if j["status"] == "succeeded"], 60, "a scan job"
        )
        # Several more ticks of both beats: still the one scan of this window.
        deadline = datetime.now(UTC) + timedelta(seconds=4)
        while datetime.now(UTC) < deadline:
            assert all(beat.poll() is None for beat in beats), "a beat exited"
            assert len(scan_jobs()) == 1
            threading.Event().wait(0.5)
    finally:
        for beat in beats:
            beat.terminate()
            beat.wait(10)
    stored = store.anomalies.list_page(metric_id, KeysetPage(None, None, 10_000))
    assert ids[295] in {a.reading_id for a in stored}
    assert len(stored) == done[0]["summary"]["anomalies_stored"]  # type: ignore[index]
    assert all(a.job_id == done[0]["id"] for a in stored)
