"""Celery tasks: thin. Each takes ids, calls one function in `common`, and decides
only whether to retry (graph store or Redis briefly unreachable) or give up."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import redis
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

from common.epoch import now_ms
from common.errors import DependencyUnavailableError
from common.jobs.detection_job import run_detection_job, worker_name
from common.maintenance.reach import apply_reach, requeue_pending
from common.metrics.compaction import maintain
from common.notifications.attempts import attempt_delivery
from common.notifications.dispatch import notify_incidents
from common.queue import (
    COMPACT_TASK,
    DELETE_TAKEN_AS_CUT_SHORT_AFTER_SECONDS,
    DELIVER_TASK,
    DETECT_TASK,
    FINISH_DELETES_TASK,
    FINISH_REACHES_TASK,
    INCIDENT_SWEEP_TASK,
    SCAN_BATCH_TASK,
    SCAN_TASK,
    WINDOW_REACH_TASK,
    JobQueue,
)
from common.redis_errors import REDIS
from common.scans.batch import BatchEntry, judge_batch
from common.scans.judging import horizon_ms
from common.scans.records import BatchTally
from common.scans.sweep import run_sweep
from worker import resources
from worker.celery_app import app

log = logging.getLogger(__name__)

TRANSIENT = (DependencyUnavailableError, redis.ConnectionError, redis.TimeoutError)
MAX_RETRIES = 5


def as_outage(exc: Exception) -> DependencyUnavailableError:
    """A transient error as the outage it is (its message names the dependency only)."""
    if isinstance(exc, DependencyUnavailableError):
        return exc
    return DependencyUnavailableError(REDIS, str(exc))


def backoff_seconds(retries: int) -> int:
    """1, 2, 4, 8, 16 s between attempts: about half a minute of outage in all."""
    return int(min(2**retries, 60))


def _fail_quietly(job_id: str, message: str) -> None:
    """Record a failure, unless Redis is down too (then the job stays as it was)."""
    try:
        resources.current().stores.jobs.mark_failed(job_id, message)
    except TRANSIENT:
        log.exception("could not record the failure of job %s", job_id)


class DetectionTask(Task):  # type: ignore[misc]
    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        # Runs in the worker's main process after a hard time limit killed the child, and
        # in the child for any error the task did not handle: the job must not stay running.
        job_id = args[0] if args else kwargs.get("job_id", task_id)
        if isinstance(exc, TimeLimitExceeded):
            message = (
                f"the job ran longer than {app.conf.task_time_limit} s and was stopped: "
                "try a shorter window"
            )
        else:
            message = f"internal error ({type(exc).__name__}); the worker log has the details"
        _fail_quietly(job_id, message)


@app.task(bind=True, name=DETECT_TASK, base=DetectionTask, max_retries=MAX_RETRIES)  # type: ignore[untyped-decorator]
def detect(self: Task, job_id: str) -> dict[str, Any]:
    """Run detection job `job_id` (see common.jobs.detection_job)."""
    worker = resources.current()
    try:
        stores = worker.stores
        record = run_detection_job(
            job_id, worker.repositories, stores.jobs, stores.results, worker.settings
        )
    except SoftTimeLimitExceeded:
        _fail_quietly(
            job_id,
            f"the job ran longer than {worker.settings.job_soft_time_limit_seconds} s "
            "and was stopped: try a shorter window",
        )
        return {"job_id": job_id, "status": "failed"}
    except TRANSIENT as exc:
        outage = as_outage(exc)
        retries = self.request.retries
        if retries >= MAX_RETRIES:
            waited = sum(backoff_seconds(r) for r in range(retries))
            _fail_quietly(
                job_id,
                f"the {outage.label} was unavailable through {retries + 1} attempts over "
                f"{waited} s: the job did not run; submit it again once it is back",
            )
            return {"job_id": job_id, "status": "failed"}
        countdown = backoff_seconds(retries)
        # If Redis itself is down, the retry below finds out.
        with contextlib.suppress(*TRANSIENT):
            worker.stores.jobs.mark_queued(job_id, f"retrying in {countdown} s: {outage}")
        raise self.retry(exc=exc, countdown=countdown) from exc
    return {"job_id": job_id, "status": None if record is None else record.status}


@app.task(bind=True, name=SCAN_TASK, max_retries=MAX_RETRIES)  # type: ignore[untyped-decorator]
def scan(self: Task) -> dict[str, Any]:
    """One periodic sweep: the metrics with new readings, queued in batches
    (common.scans.sweep). The task's id is the sweep's: a retry keeps its leases."""
    worker = resources.current()
    stores = worker.stores
    try:
        plan = run_sweep(
            worker.repositories,
            stores.scan_states,
            stores.sweeps,
            JobQueue(app),
            worker.settings,
            sweep_id=self.request.id,
        )
    except TRANSIENT as exc:
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries)) from exc
    return {"sweep_id": plan.sweep_id, "queued": plan.queued, "batches": plan.batches}


class ScanBatchTask(Task):  # type: ignore[misc]
    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        # The batch gave up (an outage outlasted its retries, a bug, a hard time limit):
        # its metrics go back to the next sweep, and its sweep's record says so.
        sweep_id, started_ms, raw = args
        entries = [BatchEntry.of_message(entry) for entry in raw]
        _give_back(sweep_id, started_ms, entries, exc)


def _give_back(
    sweep_id: str, started_ms: int, entries: list[BatchEntry], exc: BaseException
) -> None:
    """Release a failed batch's metrics to the next sweep, counted as failures (for each
    owner, saying so)."""
    reason = f"a batch of this sweep failed ({type(exc).__name__}): its metrics wait for the next"
    tally = BatchTally()
    for entry in entries:
        failed = tally.of(entry.owner_id)
        failed.failures += 1
        failed.last_error = reason
    try:
        stores = resources.current().stores
        ids = [entry.metric_id for entry in entries]
        stores.scan_states.release(ids, sweep_id)
        stores.scan_states.mark_behind(ids)
        stores.sweeps.record_batch(sweep_id, started_ms, now_ms(), worker_name(), tally)
    except TRANSIENT:
        log.exception("could not give back the metrics of a failed batch of sweep %s", sweep_id)
    log.error("sweep %s: %s (%d metrics)", sweep_id, reason, len(entries))


@app.task(bind=True, name=SCAN_BATCH_TASK, base=ScanBatchTask, max_retries=MAX_RETRIES)  # type: ignore[untyped-decorator]
def scan_batch(
    self: Task, sweep_id: str, sweep_started_ms: int, entries: list[Any]
) -> dict[str, Any]:
    """Judge one batch of a sweep (common.scans.batch)."""
    worker = resources.current()
    stores = worker.stores
    try:
        tally = judge_batch(
            sweep_id,
            sweep_started_ms,
            [BatchEntry.of_message(entry) for entry in entries],
            worker.repositories,
            stores.scan_states,
            stores.sweeps,
            worker.settings,
            worker_name(),
        )
    except TRANSIENT as exc:
        if self.request.retries >= MAX_RETRIES:
            raise
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries)) from exc
    total = tally.total()
    return {"metrics": total.metrics, "readings": total.readings, "anomalies": total.anomalies}


@app.task(bind=True, name=INCIDENT_SWEEP_TASK, max_retries=MAX_RETRIES)  # type: ignore[untyped-decorator]
def incident_sweep(self: Task) -> dict[str, Any]:
    """Resolve quiet incidents and queue the notifications of every change not yet sent."""
    worker = resources.current()
    try:
        report = notify_incidents(
            worker.repositories, worker.stores.deliveries, JobQueue(app), worker.settings
        )
    except TRANSIENT as exc:
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries)) from exc
    return {"resolved": len(report.resolved), "events": report.events}


@app.task(bind=True, name=COMPACT_TASK, max_retries=MAX_RETRIES)  # type: ignore[untyped-decorator]
def compact(self: Task) -> dict[str, Any]:
    """Compact readings that left the raw window; delete those past retention."""
    worker = resources.current()
    try:
        report = maintain(worker.repositories.readings, worker.settings)
    except TRANSIENT as exc:
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries)) from exc
    return {"metrics": report.metrics, "compacted": report.compacted}


@app.task(bind=True, name=FINISH_DELETES_TASK, max_retries=MAX_RETRIES)  # type: ignore[untyped-decorator]
def finish_deletes(self: Task) -> dict[str, Any]:
    """Finish the deletes of metrics and services that were cut short."""
    worker = resources.current()
    cut_short_before = now_ms() - DELETE_TAKEN_AS_CUT_SHORT_AFTER_SECONDS * 1000
    try:
        finished = worker.repositories.finish_interrupted_deletes(cut_short_before)
    except TRANSIENT as exc:
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries)) from exc
    return {"finished": finished}


# A retry after MAX_RETRIES outages gives up; the look for lost reaches queues it again.
@app.task(bind=True, name=WINDOW_REACH_TASK, max_retries=MAX_RETRIES)  # type: ignore[untyped-decorator]
def window_reach(self: Task, window_id: str) -> dict[str, Any]:
    """Apply a maintenance window's reach into the past (common.maintenance.reach)."""
    worker = resources.current()
    try:
        report = apply_reach(
            worker.repositories.maintenance,
            window_id,
            worker.stores.scan_states.held,
            horizon_ms(now_ms()),
        )
    except TRANSIENT as exc:
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries)) from exc
    if report is None:
        return {"window_id": window_id, "applied": None}
    return {
        "window_id": window_id,
        "applied": report.generation,
        "muted": report.muted,
        "resolved": len(report.resolved),
        "updated": len(report.updated),
        "relearnt": report.relearnt,
    }


@app.task(bind=True, name=FINISH_REACHES_TASK, max_retries=MAX_RETRIES)  # type: ignore[untyped-decorator]
def finish_window_reaches(self: Task) -> dict[str, Any]:
    """Queue again the windows' reaches whose task was lost."""
    worker = resources.current()
    try:
        queued = requeue_pending(worker.repositories.maintenance, JobQueue(app))
    except TRANSIENT as exc:
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries)) from exc
    return {"queued": len(queued)}


# max_retries=None: the delivery itself decides when to give up (WEBHOOK_RETRY_FOR_SECONDS).
# Routed to DELIVERY_QUEUE, with time limits of its own (common.queue.celery_config).
@app.task(bind=True, name=DELIVER_TASK, max_retries=None)  # type: ignore[untyped-decorator]
def deliver_webhook(self: Task, delivery_id: str) -> dict[str, Any]:
    """One attempt of a webhook delivery (common.notifications.attempts), retried with backoff."""
    worker = resources.current()
    try:
        outcome = attempt_delivery(
            delivery_id, worker.repositories.channels, worker.stores.deliveries, worker.settings
        )
    except TRANSIENT as exc:
        # Our own graph or Redis is down: not the receiver's fault, and not an attempt.
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries)) from exc
    if outcome.outcome == "retry":
        raise self.retry(countdown=outcome.retry_in_seconds)
    return {"delivery_id": delivery_id, "outcome": outcome.outcome}
