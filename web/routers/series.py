"""A metric's series for charts: its readings, or min/max buckets of them, with a job's band."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from common.epoch import to_epoch_ms
from common.jobs.band import job_band
from common.metrics.series import chart_series
from web.deps import CurrentUser, JobStoreDep, OwnedMetric, RepositoriesDep, ResultStoreDep
from web.schemas.fields import ObjectId, Timestamp
from web.schemas.responses import AUTH_ERRORS, BAD_REQUEST, NO_RESULT, NOT_FOUND
from web.schemas.series import MetricSeries

router = APIRouter(prefix="/api/metrics", tags=["metrics"], responses={**AUTH_ERRORS})


@router.get("/{metric_id}/series", responses={**NOT_FOUND, **BAD_REQUEST, **NO_RESULT})
def get_series(
    metric: OwnedMetric,
    user: CurrentUser,
    repositories: RepositoriesDep,
    jobs: JobStoreDep,
    results: ResultStoreDep,
    start: Annotated[Timestamp | None, Query(description="inclusive; default: first reading")] = (
        None
    ),
    end: Annotated[Timestamp | None, Query(description="exclusive; default: after the last")] = (
        None
    ),
    points: Annotated[
        int, Query(ge=2, le=10_000, description="at most this many slots (about the pixels)")
    ] = 1000,
    job_id: Annotated[
        ObjectId | None, Query(description="a succeeded detection job of this metric: its band")
    ] = None,
) -> MetricSeries:
    """A metric's series for a chart: the readings themselves when the window holds at most
    `points`, else `points` equal time buckets with each one's min and max (so a spike shows),
    and with `job_id` that job's expected value, bounds and score on the same slots."""
    series = chart_series(
        repositories.readings,
        metric,
        None if start is None else to_epoch_ms(start),
        None if end is None else to_epoch_ms(end),
        points,
    )
    band = None if job_id is None else job_band(jobs, results, user.id, job_id, series)
    return MetricSeries.of(series, band)
