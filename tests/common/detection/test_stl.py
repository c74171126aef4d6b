"""STL: anomalies found on a strongly seasonal series, period inference, irregular times."""

from __future__ import annotations

import time

import numpy as np
import pytest

from common.detection import DetectionError, detect, minimum_points
from common.detection.period import infer_period
from common.methods import MethodSettings


@pytest.mark.parametrize("robust", [False, True], ids=["plain", "robust"])
@pytest.mark.parametrize("online", [False, True], ids=["offline", "online"])
def test_finds_injected_anomalies(strongly_seasonal, score, online: bool, robust: bool) -> None:
    for series in strongly_seasonal:
        result = detect(
            series.values, None, MethodSettings(method="stl", online=online, robust=robust)
        )
        assert result.method == "stl"
        assert result.params["period"] == 288 and result.params["period_inferred"] is True
        found = score.of(result.is_anomaly, series.spans)
        assert all(found.found[: series.spikes]), f"a spike was missed: {found}"
        assert found.recall == 1.0, f"an injected anomaly was missed: {found}"
        assert found.precision >= 0.8, found


def test_online_uses_only_points_before(strongly_seasonal) -> None:
    values = strongly_seasonal[0].values[:1100]
    full = detect(values, None, MethodSettings(method="stl", online=True, period=288))
    cut = detect(values[:800], None, MethodSettings(method="stl", online=True, period=288))
    # Blocks start at the same points (576, 624, ...), so the fits are the same.
    np.testing.assert_allclose(full.expected[:768], cut.expected[:768], rtol=1e-12)
    assert np.isnan(full.expected[:576]).all() and np.isfinite(full.expected[576:]).all()
    assert full.params["block"] == 48 and full.params["window"] == 4 * 288


@pytest.mark.parametrize(("period", "days"), [(288, 3), (288, 7), (24, 10), (24, 3)])
def test_infers_period(period: int, days: int) -> None:
    rng = np.random.default_rng(period + days)
    t = np.arange(period * days)
    values = (
        10 * np.sin(2 * np.pi * t / period)
        + 4 * np.sin(4 * np.pi * t / period + 1)
        + 0.002 * t
        + rng.normal(0, 1, t.shape[0])
    )
    assert infer_period(values) == period


@pytest.mark.parametrize("n", [576, 600, 640, 800])
def test_a_season_is_located_to_the_reading_from_two_of_it(n: int) -> None:
    # Two to three days of 5-minute readings. A line through two seasons of a sine leaves
    # a slope that made the season look shorter (284-285); a parabola through the V of a
    # season with sharp edges (a level per quarter of the day) misplaced it by a reading.
    t = np.arange(n)
    rng = np.random.default_rng(n)
    sine = 50 + 20 * np.sin(2 * np.pi * t / 288) + rng.normal(0.0, 1.5, n)
    found = infer_period(sine)
    assert found is not None and abs(found - 288) <= 1
    quarters = np.array([20.0, 60.0, 80.0, 40.0])[(t % 288) // 72]
    assert infer_period(quarters) == 288
    assert infer_period(quarters + rng.normal(0.0, 0.5, n)) == 288


def test_no_period_in_noise_or_trend() -> None:
    rng = np.random.default_rng(0)
    assert infer_period(rng.normal(size=2000)) is None
    assert infer_period(np.arange(2000.0)) is None
    with pytest.raises(DetectionError, match="no season found"):
        detect(rng.normal(size=2000), None, MethodSettings(method="stl"))


def test_auto_forecasts_the_season_it_learns(strongly_seasonal) -> None:
    seasonal = detect(strongly_seasonal[0].values, None, MethodSettings(method="auto"))
    assert seasonal.method == "auto"
    seasons = seasonal.params["seasons"]
    assert isinstance(seasons, list) and len(seasons) == 1
    assert abs(seasons[0]["period"] - 288) <= 6  # a day of 5-minute readings, give or take
    noise = detect(np.random.default_rng(1).normal(size=1000), None, MethodSettings(method="auto"))
    assert noise.params["seasons"] == []


def test_too_few_points() -> None:
    values = np.sin(np.arange(300) * 2 * np.pi / 288)
    with pytest.raises(
        DetectionError,
        match="STL needs at least two periods of data: 576 readings at period 288, got 300",
    ):
        detect(values, None, MethodSettings(method="stl", period=288))
    assert minimum_points("stl", 288) == 576
    assert minimum_points("stl", 288, online=True) == 577


def test_r_jumps_are_fast_and_close() -> None:
    from common.detection.stl import StlSettings, decompose

    rng = np.random.default_rng(0)
    t = np.arange(10_000)
    values = 10 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 1, t.shape[0])
    started = time.perf_counter()
    seasonal, trend = decompose(values, StlSettings(period=288, robust=False))
    jumped = time.perf_counter() - started
    started = time.perf_counter()
    seasonal1, trend1 = decompose(values, StlSettings(period=288, robust=False, r_jumps=False))
    every_point = time.perf_counter() - started
    # Measured 0.065 (the seasonal jump of 4 over 35 cycles), against noise of sd 1.
    assert np.abs((seasonal + trend) - (seasonal1 + trend1)).max() < 0.1
    assert jumped < every_point / 3


def test_irregular_and_duplicate_timestamps() -> None:
    rng = np.random.default_rng(8)
    step = 300_000
    base = np.arange(288 * 5) * step
    times = np.sort(base + rng.integers(-60_000, 60_000, base.shape[0]))
    keep = rng.random(times.shape[0]) > 0.1  # drop a tenth: gaps
    times = times[keep]
    times = np.sort(np.concatenate((times, times[100:110])))  # and ten duplicates
    values = 10 * np.sin(2 * np.pi * times / (288 * step)) + rng.normal(0, 1, times.shape[0])
    spike = 900
    values[spike] += 10
    for online in (False, True):
        result = detect(values, times, MethodSettings(method="stl", online=online))
        assert result.is_anomaly[spike], online
        # Grid steps of the median spacing, which gaps and jitter move by a few percent.
        assert result.params["period"] == pytest.approx(288, rel=0.03)
        judged = result.judged
        assert result.is_anomaly[judged].mean() < 0.02
    offline = detect(values, times, MethodSettings(method="stl", period=288))
    assert offline.params["grid_step_ms"] == pytest.approx(step, rel=0.05)


def test_too_sparse_to_regularise() -> None:
    times = np.concatenate((np.arange(600) * 300_000, [10**12]))
    with pytest.raises(DetectionError, match="too sparse"):
        detect(np.zeros(601), times, MethodSettings(method="stl", period=288))


@pytest.mark.parametrize("days", [2, 4, 7])
@pytest.mark.parametrize("robust", [False, True])
def test_band_calibrated_on_short_noise(days: int, robust: bool) -> None:
    """At sigma 4, normal noise flags 6e-5 of its points: a few cycles must not narrow it."""
    flags = 0
    for seed in range(5):
        rng = np.random.default_rng(seed)
        t = np.arange(days * 288)
        values = 10 * np.sin(2 * np.pi * t / 288) + rng.normal(size=t.shape[0])
        result = detect(
            values, None, MethodSettings(method="stl", period=288, robust=robust, sigma=4)
        )
        flags += int(result.is_anomaly.sum())
    assert flags <= 5  # of 5 × days × 288 points


@pytest.mark.parametrize("robust", [False, True])
def test_spike_does_not_leak_into_other_days(robust: bool) -> None:
    rng = np.random.default_rng(1)
    t = np.arange(4 * 288)
    values = 10 * np.sin(2 * np.pi * t / 288) + rng.normal(size=t.shape[0])
    values[388] += 15
    result = detect(values, None, MethodSettings(method="stl", period=288, robust=robust, sigma=4))
    assert np.flatnonzero(result.is_anomaly).tolist() == [388]
