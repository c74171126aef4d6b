"""A scan window counts as scanned only once its job has succeeded.

These tests drive one metric's scans directly (scan_metric) on a queue no worker reads,
and move the jobs along through the JobStore as a worker would, so that nothing else in
the session is scanned or run by them.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import httpx
import pytest

from common import redis_keys as keys
from common.epoch import to_epoch_ms
from common.jobs.models import JobRecord, JobSummary
from common.jobs.record_store import JobStore
from common.metrics.models import NewReading
from common.queue import JobQueue, producer_app
from common.scans.marks import ScanMarks
from common.scans.sweep import record_scan_done, scan_metric
from common.settings import Settings
from common.stores import Repositories
from tests.worker.support import add_metric, recent_start, seasonal_series

STEP = timedelta(minutes=1)


@pytest.fixture
def unread_queue(settings: Settings) -> JobQueue:
    unread = settings.model_copy(update={"job_queue": f"test-unread-{uuid.uuid4().hex}"})
    return JobQueue(producer_app(unread, settings.redis_url or ""))


@pytest.fixture
def recent_metric(client: httpx.Client, store: Repositories) -> tuple[str, datetime]:
    """A metric of 100 readings a minute apart, the newest about now; (its id, its start)."""
    start = recent_start(100, STEP)
    metric_id, _ = add_metric(client, store, seasonal_series(100), start=start, step=STEP)
    return metric_id, start


def scan(store: Repositories, metric_id: str, jobs: JobStore, queue: JobQueue, settings: Settings):  # type: ignore[no-untyped-def]
    metric = store.metrics.get_ref(metric_id)
    assert metric is not None
    job_id = scan_metric(metric, ScanMarks(jobs.redis), jobs, queue, settings)
    return None if job_id is None else jobs.get(job_id)


def succeed(jobs: JobStore, record: JobRecord, settings: Settings) -> None:
    jobs.mark_running(record.id, "test:1")
    summary = JobSummary(
        method="rolling-online", method_params={}, points=1, flagged=0, events=0,
        anomalies_stored=0, window_start=None, window_end=None, latest=None,
    )  # fmt: skip
    done = jobs.mark_succeeded(record.id, summary, None)
    assert done is not None
    record_scan_done(ScanMarks(jobs.redis), done, settings)


def append_after(store: Repositories, metric_id: str, last: datetime, count: int) -> datetime:
    readings = [
        NewReading(id=f"n{to_epoch_ms(last)}-{i}", timestamp_ms=to_epoch_ms(last + (i + 1) * STEP),
                   value=50.0)
        for i in range(count)
    ]  # fmt: skip
    store.readings.append(metric_id, readings)
    return last + count * STEP


def test_a_failed_scan_is_judged_again_by_the_next_scan(
    recent_metric: tuple[str, datetime],
    store: Repositories,
    jobs: JobStore,
    unread_queue: JobQueue,
    settings: Settings,
) -> None:
    metric_id, start = recent_metric
    first = scan(store, metric_id, jobs, unread_queue, settings)
    assert first is not None
    assert jobs.redis.get(keys.scan_scanned_through(metric_id)) is None  # queued: not scanned
    jobs.mark_failed(first.id, "the worker failed it")

    append_after(store, metric_id, start + 99 * STEP, 5)
    second = scan(store, metric_id, jobs, unread_queue, settings)
    assert second is not None
    # The failed window's readings are judged again, not taken as history.
    assert second.params.judge_from is not None and second.params.judge_from <= start
    assert second.params.end is not None and first.params.end is not None
    assert second.params.end > first.params.end


def test_after_a_succeeded_scan_only_newer_readings_are_judged(
    recent_metric: tuple[str, datetime],
    store: Repositories,
    jobs: JobStore,
    unread_queue: JobQueue,
    settings: Settings,
) -> None:
    metric_id, start = recent_metric
    first = scan(store, metric_id, jobs, unread_queue, settings)
    assert first is not None and first.params.end is not None
    succeed(jobs, first, settings)
    assert scan(store, metric_id, jobs, unread_queue, settings) is None  # nothing new

    append_after(store, metric_id, start + 99 * STEP, 5)
    second = scan(store, metric_id, jobs, unread_queue, settings)
    assert second is not None
    assert second.params.judge_from == first.params.end
