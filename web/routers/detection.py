"""Anomaly detection: submit a job for a metric (the seed's endpoint), list stored anomalies."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import AliasGenerator, BaseModel, ConfigDict, Field

from common.errors import InvalidRequestError, NotFoundError
from common.graph.store import GraphStore
from common.jobs import submission
from common.jobs.models import DetectionParams, JobRecord
from common.jobs.queue import JobQueue
from common.jobs.record_store import JobStore
from common.methods import MethodSettings
from common.models import Anomaly, Metric, from_epoch_ms, to_epoch_ms, utc_now
from common.settings import Settings
from web.deps import (
    CurrentUser,
    JobQueueDep,
    JobStoreDep,
    JobWaiterDep,
    OwnedMetric,
    SettingsDep,
    StoreDep,
    job_url,
)
from web.paging import PageDep, encode_cursor
from web.routers.jobs import JobPublic
from web.schemas import (
    AUTH_ERRORS,
    BAD_BODY,
    BAD_REQUEST,
    NOT_FOUND,
    Name,
    ObjectId,
    RequestModel,
    Timestamp,
)

router = APIRouter(prefix="/api/metrics", tags=["detection"], responses={**AUTH_ERRORS})


class DetectionOptions(RequestModel, MethodSettings):
    """The window is `start`..`end`, or `time_window_seconds` before `end` (default: now),
    or from `start` on; with none of them, every reading (the newest JOB_MAX_POINTS at most).
    """

    # The method's settings are a job's (MethodSettings), but sigma keeps the seed's name.
    model_config = ConfigDict(
        alias_generator=AliasGenerator(
            validation_alias=lambda name: "sigma_threshold" if name == "sigma" else name
        )
    )

    time_window_seconds: int | None = Field(default=None, gt=0, le=100 * 365 * 24 * 3600)
    start: Timestamp | None = Field(default=None, description="inclusive")
    end: Timestamp | None = Field(default=None, description="exclusive")


class DetectionByMetricId(DetectionOptions):
    metric_id: ObjectId


class DetectionByMetricName(DetectionOptions):
    """The seed's way of naming a metric."""

    service_id: ObjectId
    metric_name: Name


DetectionJobCreate = DetectionByMetricId | DetectionByMetricName


class JobAccepted(BaseModel):
    job_id: str
    status: str
    status_url: str = Field(description="poll this until the status is succeeded or failed")
    result_url: str
    job: JobPublic | None = Field(
        default=None, description="with ?wait=: the job as it was when the wait ended"
    )


class AnomalyPage(BaseModel):
    anomalies: list[Anomaly]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


def _target_metric(body: DetectionJobCreate, user_id: str, store: GraphStore) -> Metric:
    if isinstance(body, DetectionByMetricId):
        metric = store.get_metric(user_id, body.metric_id)
        missing = f"metric {body.metric_id} not found"
    else:
        metric = store.find_metric_by_name(user_id, body.service_id, body.metric_name)
        missing = f"service {body.service_id} has no metric named {body.metric_name!r}"
    if metric is None:
        raise NotFoundError(missing)
    return metric


def _window(body: DetectionJobCreate, newest: datetime) -> tuple[datetime | None, datetime]:
    """The window, fixed now so that every run of the job reads the same readings.

    `newest` is the timestamp of the metric's newest reading.
    """
    if body.end is not None:
        end = from_epoch_ms(to_epoch_ms(body.end))
    elif body.time_window_seconds is not None and body.start is None:
        end = utc_now()  # the seed's meaning: the last N seconds
    else:
        end = from_epoch_ms(to_epoch_ms(newest) + 1)
    start: datetime | None = None
    if body.start is not None:
        start = from_epoch_ms(to_epoch_ms(body.start))
        if body.time_window_seconds is not None and body.end is None:
            end = start + timedelta(seconds=body.time_window_seconds)
    elif body.time_window_seconds is not None:
        start = end - timedelta(seconds=body.time_window_seconds)
    # An empty window (start at or after end) is not refused here: the job fails saying so.
    return start, end


@router.post(
    "/anomaly-detection",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        **BAD_BODY,
        **NOT_FOUND,
        200: {"model": JobAccepted, "description": "with ?wait=: the job finished in time"},
    },
)
async def submit_detection(
    body: DetectionJobCreate,
    response: Response,
    user: CurrentUser,
    store: StoreDep,
    jobs: JobStoreDep,
    queue: JobQueueDep,
    waiter: JobWaiterDep,
    settings: SettingsDep,
    wait: Annotated[
        float | None,
        Query(ge=0, le=3600, description="wait up to this many seconds (capped by the server)"),
    ] = None,
) -> JobAccepted:
    """Start anomaly detection on a metric: 202 with the job's id and where to poll it.

    With `?wait=SECONDS` the answer comes when the job is finished (200, the job in `job`)
    or when the wait is over (202), whichever is first.
    """
    # The graph and the queue are blocking clients: off the event loop. The wait is not,
    # so a waiting client holds no thread.
    record = await run_in_threadpool(_submit, body, user.id, store, jobs, queue, settings)
    current = record
    if wait:
        limit = min(wait, settings.max_wait_seconds)
        current = await waiter.wait_finished(record.id, limit) or record
        if current.is_final:
            response.status_code = status.HTTP_200_OK
    url = job_url(record.id)
    return JobAccepted(
        job_id=record.id,
        status=current.status,
        status_url=url,
        result_url=f"{url}/result",
        job=JobPublic.of(current) if wait else None,
    )


def _submit(
    body: DetectionJobCreate,
    user_id: str,
    store: GraphStore,
    jobs: JobStore,
    queue: JobQueue,
    settings: Settings,
) -> JobRecord:
    """Store the job's record and queue it; the record as submitted."""
    metric = _target_metric(body, user_id, store)
    if metric.latest_reading is None:
        raise InvalidRequestError(f"metric {metric.id} has no readings yet: add some first")
    start, end = _window(body, metric.latest_reading.timestamp)
    return submission.submit_detection(
        jobs,
        queue,
        kind="detect",
        owner_id=user_id,
        metric_id=metric.id,
        params=DetectionParams(
            **body.model_dump(include=set(MethodSettings.model_fields)),
            start=start,
            end=end,
            max_points=settings.job_max_points,
        ),
    )


@router.get("/{metric_id}/anomalies", responses={**NOT_FOUND, **BAD_REQUEST})
def list_anomalies(metric: OwnedMetric, store: StoreDep, paging: PageDep) -> AnomalyPage:
    """List the anomalies stored for a metric in time order (follow `next_cursor`)."""
    # One more than a page is read to know whether a next page exists: the last page has no
    # cursor.
    rows = store.list_anomalies(metric.id, paging.start, paging.end, paging.size + 1, paging.after)
    page = rows[: paging.size]
    next_cursor = None
    if len(rows) > paging.size:
        next_cursor = encode_cursor(to_epoch_ms(page[-1].timestamp), page[-1].id)
    return AnomalyPage(anomalies=page, next_cursor=next_cursor)
