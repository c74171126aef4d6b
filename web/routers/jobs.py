"""Detection jobs: status, result (paged), plot, and the caller's recent jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from common.jobs.models import JobKind
from common.jobs.service import read_result
from web.deps import CurrentUser, JobStoreDep, ResultStoreDep
from web.schemas.jobs import JobList, JobPublic, JobResultPage
from web.schemas.responses import AUTH_ERRORS, BAD_REQUEST, NO_RESULT, NOT_FOUND

router = APIRouter(prefix="/api/jobs", tags=["jobs"], responses={**AUTH_ERRORS, **BAD_REQUEST})


@router.get("")
def list_jobs(
    user: CurrentUser,
    jobs: JobStoreDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    kind: JobKind | None = None,
) -> JobList:
    """List the caller's recent detection jobs, newest first (follow `next_offset`)."""
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
    return JobResultPage.of(job_id, meta, columns, offset, limit)


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
