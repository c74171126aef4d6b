"""STL decomposition: each point against seasonal + trend, the band from the residuals' MAD.

LOESS settings follow R's `stl`: seasonal degree 0 (R's default; statsmodels' 1 fits a
line through the few cycles of a short series and interpolates its noise: with two
cycles, exactly), a seasonal window of 35 cycles (the pattern may drift over weeks of
daily cycles; on a few days it is nearly R's "periodic"), the trend and low-pass windows
statsmodels derives from the period, and each smoother evaluated every ceil(window / 10)
points with linear interpolation between (R's default jumps; statsmodels defaults to
every point, which on 10,000 points at period 288 is ~30× slower, 2 s against 66 ms,
for seasonal + trend that differ by at most 0.07 at noise sd 1).

Irregular times: the series is put on a grid of its median spacing (see `grid`), STL
runs on the grid, and seasonal + trend are read back at each reading's own time. A
period counts grid steps; without timestamps, points.

Offline: one fit on the whole series; the scale is 1.4826 × the MAD of all residuals.

Online (each point judged only from the points before it): the points are judged in
blocks of `block` points. For each block, STL is fitted on the `history` points before
it, and seasonal + trend are forecast over the block: the seasonal component repeats
its last season (read at the same phase, so irregular times work too) and the trend
stays at its last value. The scale is 1.4826 × the median absolute forecast error of the points
judged earlier within the history, once a season of them exists. Before that it is the
fit's own residual MAD widened by sqrt((k + 1) / (k - 1)) for k cycles averaged by the
seasonal smoother: in-sample residuals are smaller than forecast errors (a cycle mean
holds 1/k of each residual), and an unwidened band flags several percent of clean
points. Later fits see each judged point clipped to OUTLIER_SCALES scales of its
forecast, so that a spike does not come back a season later as a forecast error of the
opposite sign; a lasting shift still moves the fit, by up to that much per block.
One fit per block instead of per point: n / block fits on `history` points
each. Points before two periods of history are not judged. The period, if inferred, is
inferred once from the whole series: it is a property of the metric, like a period the
caller passes; values after a point never enter its expected value or band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from statsmodels.tsa.seasonal import STL

from common.detection.grid import Grid, regular_grid
from common.detection.result import DetectionError
from common.detection.spread import MAD_TO_STD

SEASONAL_WINDOW = 35
SEASONAL_DEGREE = 0
HISTORY_PERIODS = 4
# Beyond this many residual scales a reading is an outlier the offline fit must not follow.
OUTLIER_SCALES = 5.0


def _odd(value: int) -> int:
    return value if value % 2 else value + 1


@dataclass(frozen=True)
class StlSettings:
    """LOESS windows and jumps for one period; R's defaults (see module doc)."""

    period: int
    robust: bool
    r_jumps: bool = True

    @property
    def seasonal(self) -> int:
        return SEASONAL_WINDOW

    @property
    def trend(self) -> int:
        return _odd(math.ceil(1.5 * self.period / (1 - 1.5 / self.seasonal)))

    @property
    def low_pass(self) -> int:
        return _odd(self.period + 1)

    @property
    def inner_iterations(self) -> int:
        # R's stl: 1 inner pass per robustness pass when robust (statsmodels: 2, twice the
        # time for no visible gain on the residuals), 2 otherwise.
        return 1 if self.robust else 2

    @property
    def outer_iterations(self) -> int:
        return 15 if self.robust else 0

    def jump(self, window: int) -> int:
        return math.ceil(window / 10) if self.r_jumps else 1

    def as_params(self) -> dict[str, object]:
        return {
            "seasonal_window": self.seasonal,
            "seasonal_degree": SEASONAL_DEGREE,
            "trend_window": self.trend,
            "low_pass_window": self.low_pass,
            "seasonal_jump": self.jump(self.seasonal),
            "trend_jump": self.jump(self.trend),
            "low_pass_jump": self.jump(self.low_pass),
            "inner_iterations": self.inner_iterations,
            "outer_iterations": self.outer_iterations,
        }


def decompose(values: np.ndarray, settings: StlSettings) -> tuple[np.ndarray, np.ndarray]:
    """Seasonal and trend components of an evenly spaced series (at least two periods)."""
    fit = STL(
        values,
        period=settings.period,
        seasonal=settings.seasonal,
        seasonal_deg=SEASONAL_DEGREE,
        trend=settings.trend,
        low_pass=settings.low_pass,
        robust=settings.robust,
        seasonal_jump=settings.jump(settings.seasonal),
        trend_jump=settings.jump(settings.trend),
        low_pass_jump=settings.jump(settings.low_pass),
    ).fit(inner_iter=settings.inner_iterations, outer_iter=settings.outer_iterations)
    return np.asarray(fit.seasonal, dtype=np.float64), np.asarray(fit.trend, dtype=np.float64)


def _robust_scale(residuals: np.ndarray) -> float:
    return MAD_TO_STD * float(np.median(np.abs(residuals - np.median(residuals))))


def _on_grid(values: np.ndarray, times: np.ndarray | None, first: int = 0) -> Grid:
    """The series on a regular grid; without times it already is one, from point `first`."""
    if times is None:
        return Grid(start=float(first), step=1.0, values=values)
    return regular_grid(values, times)


def offline(
    values: np.ndarray, times: np.ndarray | None, settings: StlSettings
) -> tuple[np.ndarray, np.ndarray, Grid]:
    """Expected value and scale per point from a fit on the whole series.

    Two passes, so that an outlier cannot move the expected value of the readings it
    shares a phase with (on a few cycles a +15σ spike raised the seasonal by 15σ / k at
    its time of day every day): the first plain fit finds the grid points beyond
    OUTLIER_SCALES of its scale, each is replaced by trend + the mean of its phase in the
    other cycles (without outliers), and the second fit runs on that cleaned grid. The
    scale comes from the plain second fit's residuals, widened for the share of each
    residual that a seasonal averaged over k cycles absorbs (sqrt((k + 1) / (k - 1)), as
    online): a robust fit follows the bulk of the points more closely and its residuals
    understate the noise, which made its band too narrow on short series.
    """
    grid = _on_grid(values, times)
    _require_two_periods(grid.values.shape[0], settings.period)
    plain_settings = replace(settings, robust=False)
    seasonal, trend = decompose(grid.values, plain_settings)
    cleaned = _without_outliers(grid.values, seasonal, trend, settings.period)
    if cleaned is not grid.values:  # without outliers the first fit is the fit
        seasonal, trend = decompose(cleaned, plain_settings)
    plain = seasonal + trend
    fitted = plain
    if settings.robust:
        seasonal, trend = decompose(cleaned, settings)
        fitted = seasonal + trend
    expected = fitted if times is None else grid.at(fitted, times)
    plain_expected = plain if times is None else grid.at(plain, times)
    cycles = min(grid.values.shape[0] / settings.period, settings.seasonal)
    widen = math.sqrt((cycles + 1) / (cycles - 1))
    scale = np.full(values.shape[0], widen * _robust_scale(values - plain_expected))
    return expected, scale, grid


def _without_outliers(
    values: np.ndarray, seasonal: np.ndarray, trend: np.ndarray, period: int
) -> np.ndarray:
    """Grid values with outliers of a first fit replaced by trend + their phase's mean
    (the same array if there are none)."""
    residuals = values - seasonal - trend
    limit = OUTLIER_SCALES * _robust_scale(residuals)
    outliers = np.abs(residuals) > limit if limit > 0 else np.zeros(values.shape[0], bool)
    if not outliers.any():
        return values
    detrended = values - trend
    cleaned = values.copy()
    phases = np.arange(values.shape[0]) % period
    for index in np.flatnonzero(outliers).tolist():
        same = (phases == phases[index]) & ~outliers
        if same.any():
            cleaned[index] = trend[index] + float(np.mean(detrended[same]))
        else:
            cleaned[index] = seasonal[index] + trend[index]
    return cleaned


def online(
    values: np.ndarray,
    times: np.ndarray | None,
    settings: StlSettings,
    *,
    history: int,
    block: int,
    first: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Expected value and scale per point from fits on the points before it (module doc).

    Points before `first` are history only: not judged (NaN), which saves their fits.
    """
    n = values.shape[0]
    period = settings.period
    expected = np.full(n, np.nan)
    scale = np.full(n, np.nan)
    point_times = np.arange(n, dtype=np.float64) if times is None else times.astype(np.float64)
    # What later fits see: each judged point clipped to OUTLIER_SCALES of its forecast (below).
    fit_values = values.astype(np.float64)
    for start in range(max(2 * period, first), n, block):
        stop = min(n, start + block)
        first = max(0, start - history)
        past = slice(first, start)
        grid = _on_grid(fit_values[past], None if times is None else point_times[past], first)
        size = grid.values.shape[0]
        if size < 2 * period:  # duplicates shrank the grid below two seasons
            continue
        seasonal, trend = decompose(grid.values, settings)
        fitted = seasonal + trend
        past_expected = fitted if times is None else grid.at(fitted, point_times[past])
        # Phase of each new point, moved back by whole seasons into the last one fitted.
        ahead = grid.positions(point_times[start:stop])
        last = size - 1
        in_last_season = ahead - period * np.ceil((ahead - last) / period)
        index = np.arange(size, dtype=np.float64)
        expected[start:stop] = np.interp(in_last_season, index, seasonal) + trend[-1]
        errors = values[past] - expected[past]
        errors = errors[np.isfinite(errors)]
        if errors.shape[0] >= period:
            scale[start:stop] = MAD_TO_STD * float(np.median(np.abs(errors)))
        else:
            cycles = min(size / period, settings.seasonal)
            widen = math.sqrt((cycles + 1) / (cycles - 1))
            scale[start:stop] = widen * _robust_scale(values[past] - past_expected)
        # A spike must not enter the season it is judged against: unclipped, a +25 sigma
        # spike lifted its phase by a quarter of itself for the next four cycles (history
        # holds four), and each cycle alarmed on a normal reading there as a dip.
        limit = OUTLIER_SCALES * scale[start:stop]
        forecast = expected[start:stop]
        clipped = forecast + np.clip(values[start:stop] - forecast, -limit, limit)
        fit_values[start:stop] = np.where(np.isfinite(clipped), clipped, values[start:stop])
    return expected, scale


def _require_two_periods(points: int, period: int) -> None:
    if points < 2 * period:
        raise DetectionError(
            f"STL needs at least two periods of data: {2 * period} readings at period "
            f"{period}, got {points}"
        )
