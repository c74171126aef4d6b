"""Reading a job's stored result: only a succeeded job has one, and only for RESULT_TTL_SECONDS."""

from __future__ import annotations

from common.errors import ConflictError, GoneError
from common.jobs.models import JobRecord
from common.jobs.result_store import ResultStore
from common.jobs.results import PointColumns, ResultMeta


def job_url(job_id: str) -> str:
    """Where the API shows the job (errors and answers point there)."""
    return f"/api/jobs/{job_id}"


def read_result(
    results: ResultStore,
    record: JobRecord,
    offset: int = 0,
    limit: int | None = None,
    *,
    window: tuple[int, int] | None = None,
) -> tuple[ResultMeta, PointColumns]:
    """A succeeded job's result: its meta and points [offset, offset + limit) (all without
    a limit), or with `window` (epoch ms, end exclusive) the points of the chunks that hold
    that time window. ConflictError if the job has not succeeded (yet), GoneError if its
    result expired."""
    if record.status != "succeeded":
        if record.status == "failed":
            raise ConflictError(f"job {record.id} failed, so it has no result: {record.error}")
        raise ConflictError(
            f"job {record.id} is {record.status}; poll {job_url(record.id)} until it succeeds"
        )
    meta = results.meta(record.id)
    points = None
    if meta is not None:
        points = (
            results.points(meta, offset, limit)
            if window is None
            else results.points_in_window(meta, *window)
        )
    if meta is None or points is None:  # expired, possibly between the two reads
        expired_at = record.result_expires_at.isoformat() if record.result_expires_at else "?"
        raise GoneError(
            f"the result of job {record.id} expired (kept until {expired_at}); its summary "
            f"is still at {job_url(record.id)} and its anomalies in "
            f"/api/metrics/{record.metric_id}/anomalies. Submit the job again to recompute it."
        )
    return meta, points
