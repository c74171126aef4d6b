"""Jobs' response bodies: a job as its owner sees it, a page of its result."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from common.epoch import from_epoch_ms
from common.jobs.models import DetectionParams, JobKind, JobRecord, JobStatus, JobSummary
from common.jobs.results import PointColumns, ResultMeta
from common.jobs.service import job_url


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

    @classmethod
    def of(
        cls, job_id: str, meta: ResultMeta, columns: PointColumns, offset: int, limit: int
    ) -> JobResultPage:
        points = [
            ResultPoint(timestamp=from_epoch_ms(row.pop("timestamp_ms")), **row)
            for row in columns.rows()
        ]
        events = [
            ResultEvent(
                start=from_epoch_ms(event.start_ms),
                end=from_epoch_ms(event.end_ms),
                peak=from_epoch_ms(event.peak_ms),
                **event.model_dump(exclude={"start_ms", "end_ms", "peak_ms"}),
            )
            for event in meta.events
        ]
        end = offset + len(points)
        return cls(
            **meta.model_dump(include={"metric_id", "method", "method_params", "total", "flagged"}),
            job_id=job_id,
            offset=offset,
            limit=limit,
            next_offset=end if end < meta.total else None,
            events=events,
            points=points,
        )
