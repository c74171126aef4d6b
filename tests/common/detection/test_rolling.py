"""Rolling mean/std and median/MAD: anomalies found on a mildly seasonal series, edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from common.detection import DetectionError, detect, minimum_points
from common.detection.rolling import mean_std, median_mad
from common.methods import MethodSettings

# At sigma 3 a window of 60 flags 0.4-0.6% of pure noise (the window's own mean and
# scale are estimates: t-like tails; see test_false_positive_rate_on_noise), which on
# 2,016 points outnumbers the injected anomalies' points. Sigma 4 keeps that near zero.
SIGMA = 4.0


@pytest.mark.parametrize("robust", [False, True], ids=["mean-std", "median-mad"])
@pytest.mark.parametrize("online", [False, True], ids=["offline", "online"])
def test_finds_injected_anomalies(mildly_seasonal, score, online: bool, robust: bool) -> None:
    for series in mildly_seasonal:
        result = detect(
            series.values,
            None,
            MethodSettings(method="rolling", online=online, robust=robust, sigma=SIGMA, window=60),
        )
        found = score.of(result.is_anomaly, series.spans)
        assert all(found.found[: series.spikes]), f"a spike was missed: {found}"
        assert found.recall == 1.0, f"an injected anomaly was missed: {found}"
        assert found.precision >= 0.75, found


@pytest.mark.parametrize("robust", [False, True])
def test_false_positive_rate_on_noise(robust: bool) -> None:
    rng = np.random.default_rng(7)
    values = rng.normal(0, 1, 20_000)
    result = detect(
        values, None, MethodSettings(method="rolling", online=True, robust=robust, window=60)
    )
    rate = result.is_anomaly.sum() / result.judged.sum()
    # Gaussian tails alone: 0.27%; measured 0.41% (mean/std) and 0.57% (median/MAD).
    assert 0.001 < rate < 0.008


def test_online_uses_only_points_before() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(10, 1, 300)
    for robust in (False, True):
        full = detect(
            values, None, MethodSettings(online=True, window=20, robust=robust, method="rolling")
        )
        cut = detect(
            values[:200],
            None,
            MethodSettings(online=True, window=20, robust=robust, method="rolling"),
        )
        # Equal up to rounding: mean/std centre the series on its median before summing.
        np.testing.assert_allclose(full.expected[:200], cut.expected, rtol=1e-12)
        np.testing.assert_allclose(full.upper[:200], cut.upper, rtol=1e-12)
        changed = values.copy()
        changed[150] += 100  # changing a point must not change its own verdict's band
        again = detect(
            changed, None, MethodSettings(online=True, window=20, robust=robust, method="rolling")
        )
        assert again.expected[150] == full.expected[150]
        assert again.is_anomaly[150]


def test_mean_std_matches_numpy() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(1e9, 5, 500)  # a large offset must not cost precision
    expected, scale = mean_std(values, 30, online=True)
    for i in (30, 31, 250, 499):
        window = values[i - 30 : i]
        assert expected[i] == pytest.approx(window.mean(), abs=1e-6)
        assert scale[i] == pytest.approx(window.std(ddof=1), rel=1e-6)
    assert np.isnan(expected[:30]).all()
    expected, scale = mean_std(values, 30, online=False)
    window = np.delete(values[:31], 5)  # the first points: first 31 points less itself
    assert expected[5] == pytest.approx(window.mean(), abs=1e-6)
    assert scale[5] == pytest.approx(window.std(ddof=1), rel=1e-6)


def test_median_mad_matches_numpy_on_noise() -> None:
    rng = np.random.default_rng(2)
    values = rng.normal(0, 2, 3000)
    expected, scale = median_mad(values, 41, online=True)
    assert np.isnan(expected[: 2 * 41 - 1]).all()
    for i in (81, 1000, 2999):
        window = values[i - 41 : i]
        assert expected[i] == pytest.approx(np.median(window))
        exact = 1.4826 * np.median(np.abs(window - np.median(window)))
        # The scale is a filter-friendly MAD (module doc): close to the exact one on noise.
        assert scale[i] == pytest.approx(exact, rel=0.35)
    assert np.median(scale[81:]) == pytest.approx(2.0, rel=0.1)


def test_flat_line_flags_only_the_spike() -> None:
    values = np.full(500, 42.0)
    values[300] = 43.0
    for robust in (False, True):
        for online in (False, True):
            result = detect(
                values,
                None,
                MethodSettings(window=30, robust=robust, online=online, method="rolling"),
            )
            assert np.flatnonzero(result.is_anomaly).tolist() == [300], (robust, online)
            assert np.isfinite(result.score).all()


def test_constant_series_flags_nothing() -> None:
    result = detect(np.full(100, 5.0), None, MethodSettings(window=10, method="rolling"))
    assert not result.is_anomaly.any()
    assert result.events == []


def test_too_few_points() -> None:
    with pytest.raises(DetectionError, match="at least 41 readings with a window of 40, got 40"):
        detect(np.zeros(40), None, MethodSettings(method="rolling", window=40))
    with pytest.raises(DetectionError, match="at least 3 readings with a window of 2, got 2"):
        detect(np.zeros(2), None, MethodSettings(method="rolling"))
    with pytest.raises(DetectionError, match="at least 20 readings"):
        detect(np.arange(15.0), None, MethodSettings(window=10, robust=True, method="rolling"))
    assert minimum_points("rolling", window=10) == 11
    assert minimum_points("rolling", window=10, robust=True) == 20
    assert len(detect(np.arange(11.0), None, MethodSettings(window=10, method="rolling"))) == 11


@pytest.mark.parametrize("robust", [False, True])
@pytest.mark.parametrize("readings", [59, 60, 4])
def test_the_default_window_fits_a_short_series(readings: int, robust: bool) -> None:
    """The seed's request on per-minute data: an hour holds 59 or 60 readings, one short
    of what the default window of 60 needs. The window shrinks to fit; the spike at the
    end is judged and flagged."""
    values = np.sin(np.arange(readings) / 5.0)
    values[-1] = 40.0
    result = detect(values, None, MethodSettings(method="rolling", robust=robust))
    window = readings // 2 if robust else readings - 1
    assert result.params["window"] == window
    assert f"window {window}" in str(result.params["window_fitted"])
    assert bool(result.is_anomaly[-1]) and result.score[-1] > 1
    seed = detect(values, None, MethodSettings(sigma=3))  # the seed's body: auto → rolling
    assert seed.params["window"] == readings - 1 and bool(seed.is_anomaly[-1])
    # A window asked for is kept, or refused: it is not shrunk.
    with pytest.raises(DetectionError, match="pass a smaller window"):
        detect(values, None, MethodSettings(method="rolling", window=readings))


def test_refuses_bad_input() -> None:
    with pytest.raises(DetectionError, match="index 3 is nan"):
        detect(np.array([1.0, 2.0, 3.0, np.nan] * 20), None, MethodSettings(method="rolling"))
    with pytest.raises(DetectionError, match="in time order"):
        detect(np.zeros(100), np.arange(100)[::-1], MethodSettings(method="rolling"))
    with pytest.raises(DetectionError, match="timestamps for 100 values"):
        detect(np.zeros(100), np.arange(99), MethodSettings(method="rolling"))
    with pytest.raises(DetectionError, match="sigma"):
        detect(np.zeros(100), None, MethodSettings.model_construct(sigma=0, method="rolling"))
    with pytest.raises(DetectionError, match="unknown method"):
        detect(np.zeros(100), None, MethodSettings.model_construct(method="magic"))  # type: ignore[arg-type]


def test_duplicate_and_irregular_timestamps() -> None:
    rng = np.random.default_rng(4)
    values = rng.normal(0, 1, 400)
    values[250] += 12
    times = np.cumsum(rng.integers(0, 600_000, 400))  # zero steps: duplicates
    result = detect(values, times, MethodSettings(window=30, method="rolling"))
    assert result.is_anomaly[250]
    assert result.params["window"] == 30


@pytest.mark.parametrize("online", [False, True], ids=["offline", "online"])
@pytest.mark.parametrize("position", [100, 200], ids=["middle", "last"])
def test_one_huge_value_blinds_only_the_windows_that_hold_it(online: bool, position: int) -> None:
    # The API accepts values up to 1e308; squared, anything above ~1e154 overflows.
    rng = np.random.default_rng(5)
    values = rng.normal(50, 1, 201)
    values[position] = 1e300
    settings = MethodSettings(method="rolling", online=online, window=60)
    result = detect(values, None, settings)
    assert result.is_anomaly[position]
    assert np.isfinite(result.score).all() and np.isfinite(result.expected[60:]).all()
    # Every point whose window does not hold the huge value is judged as if it were not
    # there: with a normal value in its place, the same band.
    calm = values.copy()
    calm[position] = 50.0
    reference = detect(calm, None, settings)
    untouched = np.array([not (i - 60 <= position < i) for i in range(201)])
    untouched[position] = False
    untouched[: 60 if online else 0] = False
    np.testing.assert_allclose(result.expected[untouched], reference.expected[untouched], rtol=1e-9)
    np.testing.assert_allclose(result.upper[untouched], reference.upper[untouched], rtol=1e-9)
    assert (result.is_anomaly[untouched] == reference.is_anomaly[untouched]).all()
    # Those that hold it see a window of mean about 1e300 / 60, and flag nothing.
    holding = np.array([i - 60 <= position < i for i in range(201)])
    assert holding.sum() == min(60, 200 - position)
    if holding.any():
        assert np.allclose(result.expected[holding], 1e300 / 60, rtol=0.01)
        assert not result.is_anomaly[holding].any()


def test_mean_std_of_windows_at_the_float_limit() -> None:
    values = np.tile([1e308, -1e308, 5.0, -1.7e308], 50)
    expected, scale = mean_std(values, 8, online=True)
    assert np.isfinite(expected[8:]).all() and np.isfinite(scale[8:]).all()
    window = values[8:16] / 1e308
    assert expected[16] == pytest.approx(window.mean() * 1e308, rel=1e-9)
    assert scale[16] == pytest.approx(window.std(ddof=1) * 1e308, rel=1e-9)
