"""A metric's series for charts: its readings, or min/max buckets of them, with a job's band."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from common.errors import InvalidRequestError
from common.jobs.record_store import JobStore
from common.jobs.result_store import ResultStore
from common.jobs.results import json_floats
from common.models import Metric, ReadingSeries, from_epoch_ms, to_epoch_ms
from common.series import bucket_width, slot_extreme, slot_mean, slot_positions
from web.deps import CurrentUser, JobStoreDep, OwnedMetric, ResultStoreDep, StoreDep, read_result
from web.schemas import AUTH_ERRORS, BAD_REQUEST, NO_RESULT, NOT_FOUND, ObjectId, Timestamp

router = APIRouter(prefix="/api/metrics", tags=["metrics"], responses={**AUTH_ERRORS})


class SeriesBand(BaseModel):
    """A detection job's result on the same x values: per slot the mean expected value, the
    lowest lower bound, the highest upper bound and the highest score (null: not judged)."""

    job_id: str
    method: str
    expected: list[float | None]
    lower: list[float | None]
    upper: list[float | None]
    score: list[float | None]


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


@router.get("/{metric_id}/series", responses={**NOT_FOUND, **BAD_REQUEST, **NO_RESULT})
def get_series(
    metric: OwnedMetric,
    user: CurrentUser,
    store: StoreDep,
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
    # Bounds not given: after the newest reading (the metric knows it), from the oldest one.
    latest = metric.latest_reading
    end_ms = to_epoch_ms(end) if end is not None else None
    if end_ms is None and latest is not None:
        end_ms = to_epoch_ms(latest.timestamp) + 1
    start_ms = to_epoch_ms(start) if start is not None else None
    if start_ms is None and latest is not None:
        start_ms = store.first_timestamp(metric.id, None, end)
    span = (start_ms, end_ms) if start_ms is not None and end_ms is not None else None
    if span is not None and span[0] >= span[1]:
        span = None
    readings = 0
    buckets = None
    bucket_ms = None
    if span is not None:
        bucket_ms = bucket_width(span[0], span[1], points)
        buckets = store.window_buckets(metric.id, span[0], span[1], bucket_ms)
        readings = int(buckets.readings.sum())
    # (first slot's time, bucket width) when the window is sent as buckets.
    bucketing: tuple[int, int] | None = None
    if span is not None and buckets is not None and bucket_ms is not None and readings > points:
        bucketing = (span[0], bucket_ms)
        slot_keys = buckets.index
        timestamps = span[0] + buckets.index * bucket_ms
        low, high, count = buckets.low, buckets.high, buckets.readings
    else:  # few enough to send as they are (the bucket query only counted them)
        window = ReadingSeries(ids=[], timestamps_ms=np.array([], np.int64), values=np.array([]))
        if span is not None and readings:
            window = store.read_window(metric.id, from_epoch_ms(span[0]), from_epoch_ms(span[1]))
        slot_keys = timestamps = window.timestamps_ms
        low = high = window.values
        count = np.ones(len(window), dtype=np.int64)
        readings = len(window)
    band = None
    if job_id is not None:
        band = _job_band(jobs, results, user.id, metric, job_id, span, slot_keys, bucketing)
    return MetricSeries(
        metric_id=metric.id,
        start=None if start_ms is None else from_epoch_ms(start_ms),
        end=None if end_ms is None else from_epoch_ms(end_ms),
        readings=readings,
        downsampled=bucketing is not None,
        bucket_ms=None if bucketing is None else bucketing[1],
        timestamps_ms=timestamps.tolist(),
        min=low.tolist(),
        max=high.tolist(),
        count=count.tolist(),
        band=band,
    )


def _job_band(
    jobs: JobStore,
    results: ResultStore,
    owner_id: str,
    metric: Metric,
    job_id: str,
    span: tuple[int, int] | None,
    slot_keys: np.ndarray,
    bucketing: tuple[int, int] | None,
) -> SeriesBand:
    """The job's per-reading result in the window `span` (epoch ms, end exclusive; None: no
    readings) gathered onto the series' slots."""
    record = jobs.get_owned(owner_id, job_id)
    if record.metric_id != metric.id:
        raise InvalidRequestError(
            f"job {job_id} ran on metric {record.metric_id}, not on {metric.id}: "
            "pass a job of this metric"
        )
    # Only the chunks the window overlaps: a zoomed chart of a long result reads a few.
    start_ms, end_ms = span or (0, 0)
    meta, points = read_result(results, record, window=(start_ms, end_ms))
    timestamps = np.array(points.timestamp_ms, dtype=np.int64)
    if bucketing is None:
        keys = timestamps
    else:
        first_ms, bucket_ms = bucketing
        keys = (timestamps - first_ms) // bucket_ms
    positions = slot_positions(slot_keys, keys)
    # Those chunks hold points on either side of the window, and the last bucket (its width
    # rounded up) can reach past the window's end: only points inside it count.
    positions[(timestamps < start_ms) | (timestamps >= end_ms)] = -1
    slots = len(slot_keys)

    def column(values: list[float | None]) -> np.ndarray:
        return np.array(values, dtype=np.float64)  # null (not judged) becomes NaN

    return SeriesBand(
        job_id=job_id,
        method=meta.method,
        expected=json_floats(slot_mean(positions, column(points.expected), slots)),
        lower=json_floats(slot_extreme(positions, column(points.lower), slots, highest=False)),
        upper=json_floats(slot_extreme(positions, column(points.upper), slots, highest=True)),
        score=json_floats(slot_extreme(positions, column(points.score), slots, highest=True)),
    )
