"""Submitting a detection job: one way for every request that starts one.

The record is stored before the message is queued, so a worker never receives a job it
cannot read; if the queue is down the record is marked failed (saying why) and the
outage propagates, for the caller to answer 503 or to let the next sweep try again.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from common.epoch import from_epoch_ms, now_ms, optional_moment, to_epoch_ms, utc_now
from common.errors import DependencyUnavailableError, InvalidRequestError, NotFoundError
from common.ids import new_id
from common.jobs.models import DetectionParams, JobKind, JobRecord
from common.jobs.record_store import JobStore
from common.jobs.window import WindowRequest, detection_window
from common.methods import MethodSettings
from common.metrics.models import Metric
from common.metrics.repository import MetricRepository
from common.queue import JobQueue


def submit_detection(
    jobs: JobStore,
    queue: JobQueue,
    *,
    kind: JobKind,
    owner_id: str,
    metric_id: str,
    params: DetectionParams,
    job_id: str | None = None,
) -> JobRecord:
    """Store the job's record and queue it; the record as submitted."""
    record = JobRecord(
        id=job_id or new_id(),
        kind=kind,
        owner_id=owner_id,
        metric_id=metric_id,
        submitted_at=utc_now(),
        params=params,
    )
    jobs.create(record)
    try:
        queue.enqueue_detection(record.id)
    except DependencyUnavailableError as exc:
        with contextlib.suppress(DependencyUnavailableError):
            jobs.mark_failed(record.id, f"the {kind} job could not be queued: {exc}")
        raise
    return record


@dataclass(frozen=True)
class MetricById:
    metric_id: str


@dataclass(frozen=True)
class MetricByName:
    """The seed's way of naming a metric."""

    service_id: str
    metric_name: str


MetricTarget = MetricById | MetricByName


def target_metric(metrics: MetricRepository, owner_id: str, target: MetricTarget) -> Metric:
    if isinstance(target, MetricById):
        metric = metrics.get(owner_id, target.metric_id)
        missing = f"metric {target.metric_id} not found"
    else:
        metric = metrics.find_by_name(owner_id, target.service_id, target.metric_name)
        missing = f"service {target.service_id} has no metric named {target.metric_name!r}"
    if metric is None:
        raise NotFoundError(missing)
    return metric


def submit_request(
    metrics: MetricRepository,
    jobs: JobStore,
    queue: JobQueue,
    *,
    owner_id: str,
    target: MetricTarget,
    window: WindowRequest,
    method: MethodSettings,
    max_points: int,
) -> JobRecord:
    """A person's detection job: its metric found, its window fixed, stored and queued.
    What the request leaves unset of the metric's own detection settings, the metric's give."""
    metric = target_metric(metrics, owner_id, target)
    if metric.latest_reading is None:
        raise InvalidRequestError(f"metric {metric.id} has no readings yet: add some first")
    newest_ms = to_epoch_ms(metric.latest_reading.timestamp)
    start_ms, end_ms = detection_window(window, newest_ms, now_ms())
    params = DetectionParams(
        **metric.detection.under(method).model_dump(),
        start=optional_moment(start_ms),
        end=from_epoch_ms(end_ms),
        max_points=max_points,
    )
    return submit_detection(
        jobs, queue, kind="detect", owner_id=owner_id, metric_id=metric.id, params=params
    )
