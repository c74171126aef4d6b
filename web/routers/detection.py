"""Anomaly detection: submit a job for a metric (the seed's endpoint), list stored anomalies."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.concurrency import run_in_threadpool

from common.epoch import to_epoch_ms
from common.jobs.models import JobRecord
from common.jobs.service import job_url
from common.jobs.submission import submit_request
from web.deps import (
    CurrentUser,
    JobQueueDep,
    JobStoreDep,
    JobWaiterDep,
    OwnedMetric,
    RepositoriesDep,
    SettingsDep,
)
from web.paging import PageDep, encode_cursor
from web.schemas.anomalies import AnomalyPage
from web.schemas.detection import DetectionJobCreate, JobAccepted
from web.schemas.jobs import JobPublic
from web.schemas.responses import AUTH_ERRORS, BAD_BODY, BAD_REQUEST, NOT_FOUND

router = APIRouter(prefix="/api/metrics", tags=["detection"], responses={**AUTH_ERRORS})


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
    repositories: RepositoriesDep,
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

    def submit() -> JobRecord:
        return submit_request(
            repositories.metrics,
            jobs,
            queue,
            owner_id=user.id,
            target=body.target(),
            window=body.window_request(),
            method=body.method_settings(),
            max_points=settings.job_max_points,
        )

    # The graph and the queue are blocking clients: off the event loop. The wait is not,
    # so a waiting client holds no thread.
    record = await run_in_threadpool(submit)
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


@router.get("/{metric_id}/anomalies", responses={**NOT_FOUND, **BAD_REQUEST})
def list_anomalies(
    metric: OwnedMetric, repositories: RepositoriesDep, paging: PageDep
) -> AnomalyPage:
    """List the anomalies stored for a metric in time order (follow `next_cursor`)."""
    # One more than a page is read to know whether a next page exists: the last page has no
    # cursor.
    rows = repositories.anomalies.list_page(metric.id, replace(paging, size=paging.size + 1))
    page = rows[: paging.size]
    next_cursor = None
    if len(rows) > paging.size:
        next_cursor = encode_cursor(to_epoch_ms(page[-1].timestamp), page[-1].id)
    return AnomalyPage(anomalies=page, next_cursor=next_cursor)
