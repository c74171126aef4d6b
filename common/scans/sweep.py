"""Periodic scans: online detection on every metric that received readings since the last.

Each sweep (the `neonomaly.scan` task, sent by celery beat every SCAN_INTERVAL_SECONDS)
creates one ordinary detection job of kind "scan" per metric with new readings, owned by
the metric's owner, so it shows in their `GET /api/jobs`. A metric's window ends just after
its newest reading; a sweep claims (metric, window end) with SET NX before creating the
job, so two beats (or two overlapping sweeps) never scan the same window twice.

A window counts as scanned once its job has succeeded (`record_scan_done`, called by the
worker): the readings of a failed scan are judged again by the metric's next scan. Readings
spliced in before a window already scanned (late arrivals) are not re-scanned by sweeps;
submit a job for that range to judge them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from common.epoch import from_epoch_ms, now_ms, optional_moment
from common.errors import DependencyUnavailableError
from common.ids import new_id
from common.jobs.models import DetectionParams, JobRecord
from common.jobs.record_store import JobStore
from common.jobs.submission import submit_detection
from common.jobs.window import WindowRequest, detection_window
from common.metrics.models import MetricRef
from common.metrics.repository import MetricRepository
from common.own_metrics import SCAN_LAG, SWEEP_DURATION, SWEEP_METRICS_JUDGED
from common.queue import JobQueue
from common.scans.marks import ScanMarks
from common.settings import Settings

log = logging.getLogger(__name__)

# A sweep looks at appends since the previous sweep started, minus this much: an append
# whose server time was taken just before that sweep may have landed just after its query.
APPEND_SLACK_MS = 60_000


@dataclass
class ScanReport:
    started_ms: int
    since_ms: int
    metrics_seen: int = 0
    job_ids: list[str] = field(default_factory=list)
    already_scanned: int = 0


def run_scan(
    metrics: MetricRepository,
    marks: ScanMarks,
    jobs: JobStore,
    queue: JobQueue,
    settings: Settings,
    started_ms: int | None = None,
) -> ScanReport:
    """One sweep: a scan job for each metric with readings not yet scanned."""
    started = now_ms() if started_ms is None else started_ms
    cursor = marks.cursor()
    since = (
        cursor - APPEND_SLACK_MS
        if cursor is not None
        else started - settings.scan_window_seconds * 1000
    )
    report = ScanReport(started_ms=started, since_ms=since)
    for metric in metrics.appended_since(since):
        report.metrics_seen += 1
        job_id = scan_metric(metric, marks, jobs, queue, settings)
        if job_id is None:
            report.already_scanned += 1
        else:
            report.job_ids.append(job_id)
    marks.advance_cursor(started, settings.job_record_ttl_seconds)
    SWEEP_DURATION.observe((now_ms() - started) / 1000)
    SWEEP_METRICS_JUDGED.inc(len(report.job_ids))
    log.info(
        "scan since %s: %d metrics with new readings, %d jobs, %d already scanned",
        from_epoch_ms(since).isoformat(),
        report.metrics_seen,
        len(report.job_ids),
        report.already_scanned,
    )
    return report


def scan_metric(
    metric: MetricRef, marks: ScanMarks, jobs: JobStore, queue: JobQueue, settings: Settings
) -> str | None:
    """Create and queue the scan job of one metric; None if its window is already scanned."""
    if metric.latest_ms is None:
        return None
    # The window every job uses, ending just after the newest reading.
    window = WindowRequest(end_ms=metric.latest_ms + 1, seconds=settings.scan_window_seconds)
    start_ms, window_end_ms = detection_window(window, metric.latest_ms, now_ms())
    through_ms = marks.scanned_through(metric.id)
    if through_ms is not None and window_end_ms <= through_ms:
        return None
    job_id = new_id()
    if not marks.claim(metric.id, window_end_ms, job_id):
        return None
    # Readings before the window's start, or already scanned, are history for the judge.
    judge_from_ms = start_ms
    if through_ms is not None and start_ms is not None:
        judge_from_ms = max(through_ms, start_ms)
    params = DetectionParams(
        method=settings.scan_method,
        sigma=settings.scan_sigma,
        sensitivity=settings.scan_sensitivity,
        online=True,
        start=optional_moment(start_ms),
        end=from_epoch_ms(window_end_ms),
        judge_from=optional_moment(judge_from_ms),
        max_points=settings.job_max_points,
    )
    try:
        submit_detection(
            jobs,
            queue,
            kind="scan",
            owner_id=metric.owner_id,
            metric_id=metric.id,
            params=params,
            job_id=job_id,
        )
    except DependencyUnavailableError:
        marks.release(metric.id, window_end_ms)  # let the next sweep claim this window again
        raise
    return job_id


def record_scan_done(marks: ScanMarks, record: JobRecord, settings: Settings) -> None:
    """Mark a scan's window scanned, once its job has succeeded.

    Not when it is queued: the readings of a scan that fails are judged again by the
    metric's next scan. Idempotent (a re-run of the task marks the same window).
    """
    end_ms = record.params.end_ms
    if record.kind != "scan" or record.status != "succeeded" or end_ms is None:
        return
    marks.advance_scanned_through(record.metric_id, end_ms, 2 * settings.scan_window_seconds)
    # The newest reading's time to now: for live metrics, how far scans trail arrivals.
    SCAN_LAG.observe(max(0, now_ms() - end_ms) / 1000)
