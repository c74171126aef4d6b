"""A metric's series for a chart, with a job's band on the same slots."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from common.epoch import optional_moment
from common.jobs.band import JobBand
from common.jobs.results import json_floats
from common.metrics.series import ChartSeries


class SeriesBand(BaseModel):
    """A detection job's result on the same x values: per slot the mean expected value, the
    lowest lower bound, the highest upper bound and the highest score (null: not judged)."""

    job_id: str
    method: str
    expected: list[float | None]
    lower: list[float | None]
    upper: list[float | None]
    score: list[float | None]

    @classmethod
    def of(cls, band: JobBand) -> SeriesBand:
        return cls(
            job_id=band.job_id,
            method=band.method,
            expected=json_floats(band.slots.expected),
            lower=json_floats(band.slots.lower),
            upper=json_floats(band.slots.upper),
            score=json_floats(band.slots.score),
        )


class MetricSeries(BaseModel):
    """Columns of equal length, one entry per slot: a reading, or a bucket of readings."""

    metric_id: str
    start: datetime | None = Field(description="the window's start (inclusive)")
    end: datetime | None = Field(description="the window's end (exclusive)")
    readings: int = Field(description="readings in the window")
    downsampled: bool = Field(description="true: each slot is a bucket of bucket_ms")
    bucket_ms: int | None
    timestamps_ms: list[int] = Field(
        description="epoch ms: the reading's timestamp, or the bucket's start"
    )
    min: list[float] = Field(description="the reading's value, or the bucket's lowest")
    max: list[float] = Field(description="the reading's value, or the bucket's highest")
    count: list[int] = Field(description="readings in the slot")
    band: SeriesBand | None = Field(description="the job's result, with ?job_id=")

    @classmethod
    def of(cls, series: ChartSeries, band: JobBand | None) -> MetricSeries:
        return cls(
            metric_id=series.metric_id,
            start=optional_moment(series.start_ms),
            end=optional_moment(series.end_ms),
            readings=series.readings,
            downsampled=series.bucketing is not None,
            bucket_ms=None if series.bucketing is None else series.bucketing[1],
            timestamps_ms=series.timestamps_ms.tolist(),
            min=series.low.tolist(),
            max=series.high.tolist(),
            count=series.count.tolist(),
            band=None if band is None else SeriesBand.of(band),
        )
