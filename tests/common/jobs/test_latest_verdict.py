"""The seed's verdict on a job's newest reading stays a number at the float limits."""

from __future__ import annotations

import math

import numpy as np

from common.jobs.detection_job import latest_verdict
from common.metrics.models import ReadingSeries


class Output:
    is_anomaly = np.array([False, False, False])


def verdict_of(values: list[float]) -> tuple[float, float]:
    series = ReadingSeries(
        ids=["a", "b", "c"], timestamps_ms=np.array([1, 2, 3]), values=np.array(values)
    )
    verdict = latest_verdict(series, Output(), 3.0)
    return verdict.window_mean, verdict.window_std_dev


def test_huge_readings_keep_a_finite_mean_and_spread() -> None:
    # A plain sum of these is inf, which JSON stores as null and the job record refuses.
    mean, std = verdict_of([1.797e308, 1.797e308, 1.0])
    assert math.isfinite(mean) and math.isfinite(std)
    assert abs(mean / (1.797e308 / 3 * 2) - 1) < 1e-9
    mean, std = verdict_of([-1.7e308, 1.7e308, 0.0])
    assert mean == 0.0 and abs(std / 1.7e308 - 1) < 1e-9


def test_ordinary_readings_as_before() -> None:
    assert verdict_of([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert verdict_of([0.0, 0.0, 0.0]) == (0.0, 0.0)
