"""A detection job's result drawn on a metric's chart: its band on the series' slots."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.errors import InvalidRequestError
from common.jobs.record_store import JobStore
from common.jobs.result_store import ResultStore
from common.jobs.service import read_result
from common.metrics.series import ChartSeries, SlotBand, band_on_slots


@dataclass(frozen=True)
class JobBand:
    job_id: str
    method: str
    slots: SlotBand


def _column(values: list[float | None]) -> np.ndarray:
    return np.array(values, dtype=np.float64)  # null (not judged) becomes NaN


def job_band(
    jobs: JobStore, results: ResultStore, owner_id: str, job_id: str, series: ChartSeries
) -> JobBand:
    """The owner's job's per-reading result in the series' window, gathered onto its slots."""
    record = jobs.get_owned(owner_id, job_id)
    if record.metric_id != series.metric_id:
        raise InvalidRequestError(
            f"job {job_id} ran on metric {record.metric_id}, not on {series.metric_id}: "
            "pass a job of this metric"
        )
    # Only the chunks the window overlaps: a zoomed chart of a long result reads a few.
    # (No readings in the window: an empty one, so no points either.)
    meta, points = read_result(results, record, window=series.span or (0, 0))
    slots = band_on_slots(
        series,
        np.array(points.timestamp_ms, dtype=np.int64),
        _column(points.expected),
        _column(points.lower),
        _column(points.upper),
        _column(points.score),
    )
    return JobBand(job_id=job_id, method=meta.method, slots=slots)
