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
from datetime import datetime, timedelta

from common.errors import DependencyUnavailableError
from common.graph.store import GraphStore
from common.ids import new_id
from common.jobs import keys
from common.jobs.models import DetectionParams, JobRecord
from common.jobs.queue import JobQueue
from common.jobs.record_store import JobStore
from common.jobs.submission import submit_detection
from common.models import MetricRef, from_epoch_ms, to_epoch_ms, utc_now
from common.redis_errors import redis_errors
from common.settings import Settings

log = logging.getLogger(__name__)

# A sweep looks at appends since the previous sweep started, minus this much: an append
# whose server time was taken just before that sweep may have landed just after its query.
APPEND_SLACK = timedelta(seconds=60)
CLAIM_TTL_SECONDS = 24 * 3600

# SET key to ARGV[1] if it is unset or holds a smaller number; ARGV[2] is the TTL.
SET_IF_GREATER = """
local current = redis.call('GET', KEYS[1])
if (not current) or tonumber(current) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
return 0
"""


@dataclass
class ScanReport:
    started_at: datetime
    since: datetime
    metrics_seen: int = 0
    job_ids: list[str] = field(default_factory=list)
    already_scanned: int = 0


def run_scan(
    store: GraphStore,
    jobs: JobStore,
    queue: JobQueue,
    settings: Settings,
    now: datetime | None = None,
) -> ScanReport:
    """One sweep: a scan job for each metric with readings not yet scanned."""
    started = now or utc_now()
    client = jobs.redis
    with redis_errors():
        cursor = client.get(keys.scan_cursor())
    since = (
        from_epoch_ms(int(cursor)) - APPEND_SLACK
        if cursor is not None
        else started - timedelta(seconds=settings.scan_window_seconds)
    )
    report = ScanReport(started_at=started, since=since)
    for metric in store.metrics_with_readings_since(since):
        report.metrics_seen += 1
        job_id = scan_metric(metric, jobs, queue, settings)
        if job_id is None:
            report.already_scanned += 1
        else:
            report.job_ids.append(job_id)
    with redis_errors():
        client.eval(
            SET_IF_GREATER,
            1,
            keys.scan_cursor(),
            to_epoch_ms(started),
            settings.job_record_ttl_seconds,
        )
    log.info(
        "scan since %s: %d metrics with new readings, %d jobs, %d already scanned",
        since.isoformat(),
        report.metrics_seen,
        len(report.job_ids),
        report.already_scanned,
    )
    return report


def scan_metric(
    metric: MetricRef, jobs: JobStore, queue: JobQueue, settings: Settings
) -> str | None:
    """Create and queue the scan job of one metric; None if its window is already scanned."""
    if metric.latest_timestamp is None:
        return None
    window_end_ms = to_epoch_ms(metric.latest_timestamp) + 1
    client = jobs.redis
    through_key = keys.scan_scanned_through(metric.id)
    claim_key = keys.scan_window_claim(metric.id, window_end_ms)
    with redis_errors():
        through_raw = client.get(through_key)
        through_ms = int(through_raw) if through_raw is not None else None
        if through_ms is not None and window_end_ms <= through_ms:
            return None
        job_id = new_id()
        if not client.set(claim_key, job_id, nx=True, ex=CLAIM_TTL_SECONDS):
            return None
    history_start_ms = window_end_ms - settings.scan_window_seconds * 1000
    judge_from_ms = max(through_ms or history_start_ms, history_start_ms)
    params = DetectionParams(
        method=settings.scan_method,
        sigma=settings.scan_sigma,
        sensitivity=settings.scan_sensitivity,
        online=True,
        start=from_epoch_ms(history_start_ms),
        end=from_epoch_ms(window_end_ms),
        judge_from=from_epoch_ms(judge_from_ms),
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
        # Let the next sweep claim this window again.
        with redis_errors():
            client.delete(claim_key)
        raise
    return job_id


def record_scan_done(jobs: JobStore, record: JobRecord, settings: Settings) -> None:
    """Mark a scan's window scanned, once its job has succeeded.

    Not when it is queued: the readings of a scan that fails are judged again by the
    metric's next scan. Idempotent (a re-run of the task marks the same window).
    """
    if record.kind != "scan" or record.status != "succeeded" or record.params.end is None:
        return
    with redis_errors():
        jobs.redis.eval(
            SET_IF_GREATER,
            1,
            keys.scan_scanned_through(record.metric_id),
            to_epoch_ms(record.params.end),
            2 * settings.scan_window_seconds,
        )
