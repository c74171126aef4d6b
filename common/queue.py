"""Celery's configuration, and sending work to the workers by task name.

The web, the scans and the incident sweep enqueue through `JobQueue`, which only needs the
broker: they never import the worker's tasks (nor numpy/statsmodels code paths they would
pull in).

Queues, in one place (`task_routes` below; supervisor and docker-compose name them too):
- JOB_QUEUE: the detection jobs people submit, which may run for minutes.
- DELIVERY_QUEUE: webhook delivery attempts, which wait on receivers; only the workers
  started with `-Q DELIVERY_QUEUE` (`neonomaly up`'s and compose's `deliveries`) take it.
- SWEEP_QUEUE: periodic work: the scan sweep, its batches and the incident sweep, and a
  maintenance window's reach into the past (bounded graph writes over what sweeps judged,
  which must not wait behind people's long jobs, and are not deliveries waiting on other
  people's servers). The jobs' `worker` takes it beside JOB_QUEUE (as does a worker started
  without `-Q`); `sweeper` (`neonomaly up`'s and compose's) takes only this one, so long
  jobs never hold it up. Within it the sweeps and reaches go first (Redis serves priority 0
  before the batches' BATCH_PRIORITY), so an incident sweep or a window's reach waits at
  most for one running batch, never behind a sweep's backlog.
"""

from __future__ import annotations

import math
from typing import Any

import redis
from celery import Celery
from kombu.entity import Exchange, Queue
from kombu.exceptions import OperationalError

from common.errors import DependencyUnavailableError
from common.settings import Settings

DETECT_TASK = "neonomaly.detect"
SCAN_TASK = "neonomaly.scan"
SCAN_SCHEDULE_ENTRY = "scan-metrics"
INCIDENT_SWEEP_TASK = "neonomaly.incident-sweep"
INCIDENT_SWEEP_SCHEDULE_ENTRY = "incident-sweep"
DELIVER_TASK = "neonomaly.deliver-webhook"
SCAN_BATCH_TASK = "neonomaly.scan-batch"
# Redis serves a queue's priority 0 first, then 3, 6, 9 (kombu's priority steps).
BATCH_PRIORITY = 6
COMPACT_TASK = "neonomaly.compact"
COMPACT_SCHEDULE_ENTRY = "compact-readings"
WINDOW_REACH_TASK = "neonomaly.window-reach"
FINISH_REACHES_TASK = "neonomaly.finish-window-reaches"
FINISH_REACHES_SCHEDULE_ENTRY = "finish-window-reaches"
# How often beat looks for maintenance windows' reaches whose task was lost.
FINISH_REACHES_EVERY_SECONDS = 60.0
FINISH_DELETES_TASK = "neonomaly.finish-deletes"
FINISH_DELETES_SCHEDULE_ENTRY = "finish-deletes"
# How often beat looks for deletes cut short, and how old a mark must be to be one (a
# delete still running is left to its caller; a second deleter would only repeat work).
FINISH_DELETES_EVERY_SECONDS = 60.0
DELETE_TAKEN_AS_CUT_SHORT_AFTER_SECONDS = 120
# A delivery attempt's time beyond its HTTP deadline (WEBHOOK_TIMEOUT_SECONDS): resolving
# the receiver's host, reading and saving the delivery.
DELIVERY_OVERHEAD_SECONDS = 20


def task_routes(settings: Settings) -> dict[str, dict[str, str]]:
    """Which queue each task goes to."""
    sweeps = {"queue": settings.sweep_queue}
    return {
        DETECT_TASK: {"queue": settings.job_queue},
        FINISH_DELETES_TASK: {"queue": settings.job_queue},
        COMPACT_TASK: {"queue": settings.job_queue},
        # Webhook deliveries wait on other people's servers: a queue of their own, consumed
        # by workers of their own, so that slow receivers never hold up jobs or sweeps.
        DELIVER_TASK: {"queue": settings.delivery_queue},
        SCAN_TASK: sweeps,
        SCAN_BATCH_TASK: sweeps,
        INCIDENT_SWEEP_TASK: sweeps,
        WINDOW_REACH_TASK: sweeps,
        FINISH_REACHES_TASK: sweeps,
    }


def delivery_time_limits(settings: Settings) -> tuple[int, int]:
    """(soft, hard) time limits of one delivery attempt's task, in seconds."""
    soft = math.ceil(settings.webhook_timeout_seconds) + DELIVERY_OVERHEAD_SECONDS
    return soft, soft + 10


def celery_config(settings: Settings, redis_url: str) -> dict[str, Any]:
    """The configuration every Celery app of Neonomaly uses (worker, beat, web, Flower)."""
    if settings.job_time_limit_seconds >= settings.broker_visibility_timeout_seconds:
        # Otherwise Redis would hand a job still running to a second worker.
        raise ValueError(
            "JOB_TIME_LIMIT_SECONDS must be below BROKER_VISIBILITY_TIMEOUT_SECONDS "
            f"({settings.job_time_limit_seconds} >= {settings.broker_visibility_timeout_seconds})"
        )
    if settings.job_soft_time_limit_seconds >= settings.job_time_limit_seconds:
        raise ValueError("JOB_SOFT_TIME_LIMIT_SECONDS must be below JOB_TIME_LIMIT_SECONDS")
    if settings.webhook_retry_max_seconds >= settings.broker_visibility_timeout_seconds:
        # A retry is a message with a countdown; one due after the visibility timeout is
        # handed to a second worker, and the webhook would be sent twice.
        raise ValueError(
            "WEBHOOK_RETRY_MAX_SECONDS must be below BROKER_VISIBILITY_TIMEOUT_SECONDS"
        )
    return {
        "broker_url": redis_url,
        "result_backend": redis_url,
        "broker_transport_options": {
            "visibility_timeout": settings.broker_visibility_timeout_seconds
        },
        "result_backend_transport_options": {
            "visibility_timeout": settings.broker_visibility_timeout_seconds
        },
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 2,
        # A publish to a Redis that is down fails fast: the web answers 503 instead of hanging.
        "task_publish_retry_policy": {
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_default_queue": settings.job_queue,
        "task_routes": task_routes(settings),
        # What a worker started without -Q consumes: jobs and sweeps, never deliveries.
        "task_queues": [
            Queue(name, Exchange(name), routing_key=name)  # type: ignore[no-untyped-call]
            for name in (settings.job_queue, settings.sweep_queue)
        ],
        "task_annotations": {
            DELIVER_TASK: dict(
                zip(("soft_time_limit", "time_limit"), delivery_time_limits(settings), strict=True)
            )
        },
        # Jobs are idempotent (see common.jobs.detection_job), so a job is acknowledged
        # only once done, and one whose worker died is handed out again.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": settings.job_soft_time_limit_seconds,
        "task_time_limit": settings.job_time_limit_seconds,
        # Celery's own result is a small status; the detection result lives in the result store.
        "result_expires": settings.result_ttl_seconds,
        # Events for Flower.
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "timezone": "UTC",
        "enable_utc": True,
        "beat_schedule": {
            SCAN_SCHEDULE_ENTRY: {
                "task": SCAN_TASK,
                "schedule": settings.scan_interval_seconds,
                # A sweep not started within one interval is superseded by the next one.
                "options": {"expires": settings.scan_interval_seconds},
            },
            COMPACT_SCHEDULE_ENTRY: {
                "task": COMPACT_TASK,
                "schedule": settings.compaction_interval_seconds,
                "options": {"expires": settings.compaction_interval_seconds},
            },
            INCIDENT_SWEEP_SCHEDULE_ENTRY: {
                "task": INCIDENT_SWEEP_TASK,
                "schedule": settings.incident_sweep_seconds,
                "options": {"expires": settings.incident_sweep_seconds},
            },
            FINISH_REACHES_SCHEDULE_ENTRY: {
                "task": FINISH_REACHES_TASK,
                "schedule": FINISH_REACHES_EVERY_SECONDS,
                "options": {"expires": FINISH_REACHES_EVERY_SECONDS},
            },
            FINISH_DELETES_SCHEDULE_ENTRY: {
                "task": FINISH_DELETES_TASK,
                "schedule": FINISH_DELETES_EVERY_SECONDS,
                "options": {"expires": FINISH_DELETES_EVERY_SECONDS},
            },
        },
    }


def producer_app(settings: Settings, redis_url: str) -> Celery:
    """A Celery app that only sends tasks (for the web)."""
    app = Celery("neonomaly", set_as_current=False)
    app.conf.update(celery_config(settings, redis_url))
    return app


class JobQueue:
    """Sends job ids to the workers."""

    def __init__(self, app: Celery):
        self.app = app
        # Celery makes its broker connection and producer pools on first use, without a
        # lock: made here, before request threads can race to make two of each.
        _ = app.amqp.producer_pool

    def enqueue_detection(self, job_id: str) -> None:
        try:
            # The Celery task id is the job id: Flower and the job API name the same thing.
            self.app.send_task(DETECT_TASK, args=[job_id], task_id=job_id)
        except OperationalError as exc:
            raise DependencyUnavailableError("redis", f"cannot queue the job: {exc}") from exc

    def enqueue_scan_batch(
        self, sweep_id: str, sweep_started_ms: int, entries: list[list[object]]
    ) -> None:
        """One batch of a sweep, behind the sweeps themselves (BATCH_PRIORITY)."""
        try:
            self.app.send_task(
                SCAN_BATCH_TASK,
                args=[sweep_id, sweep_started_ms, entries],
                priority=BATCH_PRIORITY,
            )
        except OperationalError as exc:
            raise DependencyUnavailableError("redis", f"cannot queue a scan batch: {exc}") from exc

    def enqueue_window_reach(self, window_id: str) -> None:
        """A maintenance window's reach into the past (common.maintenance.reach)."""
        try:
            self.app.send_task(WINDOW_REACH_TASK, args=[window_id])
        except OperationalError as exc:
            raise DependencyUnavailableError(
                "redis", f"cannot queue a window's reach: {exc}"
            ) from exc

    def enqueue_delivery(self, delivery_id: str) -> None:
        try:
            self.app.send_task(DELIVER_TASK, args=[delivery_id])
        except OperationalError as exc:
            raise DependencyUnavailableError("redis", f"cannot queue the delivery: {exc}") from exc


# Kombu's Redis transport keeps a queue as one list per priority step (0, 3, 6, 9), the
# default step's under the queue's own name.
_PRIORITY_SEPARATOR = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)


def queue_depth(client: redis.Redis, queue: str) -> int:
    """Messages waiting in a Celery queue on the Redis broker (not those being worked on)."""
    names = [queue, *(f"{queue}{_PRIORITY_SEPARATOR}{step}" for step in _PRIORITY_STEPS)]
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.llen(name)
    return int(sum(pipe.execute()))
