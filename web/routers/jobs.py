"""Detection jobs: status, result (paged), plot, and the caller's recent jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from common.jobs.models import DetectionParams, JobKind, JobRecord, JobStatus, JobSummary
from common.models import from_epoch_ms
from web.deps import CurrentUser, JobStoreDep, ResultStoreDep, job_url, read_result
from web.schemas import AUTH_ERRORS, BAD_REQUEST, NO_RESULT, NOT_FOUND

router = APIRouter(prefix="/api/jobs", tags=["jobs"], responses={**AUTH_ERRORS, **BAD_REQUEST})


class JobPublic(BaseModel):
    """A job as its owner sees it."""

    id: str
    kind: JobKind
    metric_id: str
    status: JobStatus
    progress: float
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    params: DetectionParams
    summary: JobSummary | None
    attempts: int
    result_expires_at: datetime | None
    result_expired: bool
    status_url: str
    result_url: str
    plot_url: str

    @classmethod
    def of(cls, record: JobRecord) -> JobPublic:
        fields = record.model_dump(exclude={"owner_id", "worker"})
        url = job_url(record.id)
        return cls(**fields, status_url=url, result_url=f"{url}/result", plot_url=f"{url}/plot.png")


class JobList(BaseModel):
    jobs: list[JobPublic]
    next_offset: int | None = Field(description="pass as ?offset= for the next page")


class ResultPoint(BaseModel):
    timestamp: datetime
    reading_id: str
    value: float | None
    expected: float | None
    lower: float | None
    upper: float | None
    score: float | None
    probability: float | None = Field(
        default=None, description="how often the series' normal behaviour deviates this much"
    )
    is_anomaly: bool


class ResultEvent(BaseModel):
    """Consecutive flagged readings; indexes are positions in the result's points."""

    start: datetime
    end: datetime
    peak: datetime
    start_index: int
    end_index: int
    peak_index: int
    peak_score: float | None
    kind: str | None = Field(
        default=None,
        description="spike, dip, level_shift_up, level_shift_down, variance_change, "
        "seasonal_break or trend_change",
    )
    summary: str | None = Field(default=None, description="the kind in words and numbers")
    magnitude: float | None = Field(default=None, description="size in the metric's units")
    sigmas: float | None = Field(
        default=None, description="size in noise units (variance change: the spread ratio)"
    )


class JobResultPage(BaseModel):
    job_id: str
    metric_id: str
    method: str
    method_params: dict[str, Any]
    total: int
    flagged: int
    offset: int
    limit: int
    next_offset: int | None
    events: list[ResultEvent]
    points: list[ResultPoint]


@router.get("")
def list_jobs(
    user: CurrentUser,
    jobs: JobStoreDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    kind: JobKind | None = None,
) -> JobList:
    """List the caller's recent jobs (submitted and scans), newest first (follow `next_offset`)."""
    page = jobs.list_owned(user.id, limit=limit, offset=offset, kind=kind)
    return JobList(
        jobs=[JobPublic.of(record) for record in page.records], next_offset=page.next_offset
    )


@router.get("/{job_id}", responses=NOT_FOUND)
def get_job(job_id: str, user: CurrentUser, jobs: JobStoreDep) -> JobPublic:
    """Get a job's status, progress, times, and its error or summary."""
    return JobPublic.of(jobs.get_owned(user.id, job_id))


@router.get("/{job_id}/result", responses={**NOT_FOUND, **NO_RESULT})
def get_job_result(
    job_id: str,
    user: CurrentUser,
    jobs: JobStoreDep,
    results: ResultStoreDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> JobResultPage:
    """Get a succeeded job's per-reading series (paged by offset/limit) and its events."""
    meta, columns = read_result(results, jobs.get_owned(user.id, job_id), offset, limit)
    points = [
        ResultPoint(timestamp=from_epoch_ms(row.pop("timestamp_ms")), **row)
        for row in columns.rows()
    ]
    events = [
        ResultEvent(
            start=from_epoch_ms(event.start_ms),
            end=from_epoch_ms(event.end_ms),
            peak=from_epoch_ms(event.peak_ms),
            start_index=event.start_index,
            end_index=event.end_index,
            peak_index=event.peak_index,
            peak_score=event.peak_score,
            kind=event.kind,
            summary=event.summary,
            magnitude=event.magnitude,
            sigmas=event.sigmas,
        )
        for event in meta.events
    ]
    end = offset + len(points)
    return JobResultPage(
        job_id=job_id,
        metric_id=meta.metric_id,
        method=meta.method,
        method_params=meta.method_params,
        total=meta.total,
        flagged=meta.flagged,
        offset=offset,
        limit=limit,
        next_offset=end if end < meta.total else None,
        events=events,
        points=points,
    )


@router.get(
    "/{job_id}/plot.png",
    responses={
        **NOT_FOUND,
        **NO_RESULT,
        200: {"content": {"image/png": {}}, "description": "the series, bounds and anomalies"},
    },
    response_class=Response,
)
def get_job_plot(
    job_id: str, user: CurrentUser, jobs: JobStoreDep, results: ResultStoreDep
) -> Response:
    """Draw a succeeded job's result: readings, expected band, flagged readings."""
    from common.jobs.plots import render_result_png

    meta, columns = read_result(results, jobs.get_owned(user.id, job_id))
    png = render_result_png(columns, meta)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=60"})
