"""`detect`: one entry point over the default detector (`auto`) and the rolling and STL methods.

`auto` (the default) is `adaptive`: a calibrated "how unusual for this series" probability
from the series' own past, alarms only in its far tail (`sensitivity`), each event typed.
`rolling` and `stl` are the building blocks on their own, with a fixed band of `sigma`
scale units (the seed's rule); they are kept for users who want exactly that.

Input rules (the service never stores non-finite values, so these are refusals, not
repairs): values finite, 1-D; timestamps, if given, the same length and non-decreasing
(duplicates are allowed). Anything else raises DetectionError saying what is wrong.

Band and score of rolling and STL: each gives an expected value and a scale per point;
the band is expected ± sigma × scale and score = |value − expected| / (sigma × scale), so a point is
anomalous exactly when it leaves the band (score ≥ 1). The scale is floored at
SCALE_FLOOR × the spread of the whole series (its MAD, else its std), so a window of
identical values does not give a zero band: a flat line flags its one spike and nothing
else. (The floor is the one thing online mode takes from the whole series: a thousandth
of its spread, which only matters where a window is flat.)
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from scipy import special  # type: ignore[import-untyped]

from common.detection import adaptive, rolling, stl
from common.detection.events import group_events
from common.detection.gate import Taught, gate
from common.detection.grid import regular_grid
from common.detection.kinds import describe_all
from common.detection.period import infer_period
from common.detection.result import AnomalyEvent, DetectionError, DetectionResult
from common.detection.spread import MAD_TO_STD
from common.methods import METHODS, Method, MethodSettings

DEFAULT_WINDOW = 60
DEFAULT_SIGMA = 3.0
MIN_WINDOW = 2
SCALE_FLOOR = 1e-3
SPREAD_SAMPLE = 10_000


def default_block(period: int) -> int:
    """Online STL refits every this many points: a sixth of a season, four hours of a day.

    Smaller blocks follow a changing trend sooner, at one STL fit per block.
    """
    return max(1, period // 6)


def minimum_points(
    method: str,
    period: int | None = None,
    window: int | None = None,
    *,
    robust: bool = False,
    online: bool = False,
) -> int:
    """Fewest readings `detect` accepts with these settings.

    STL: two periods (online: two periods plus a point to judge); without a period the
    smallest a period can be (2), since any longer one is only known from the data.
    Rolling: the window plus one point (median/MAD: two windows, see `rolling`).
    Auto: what rolling needs: below a level window and a hundred of its errors
    (`adaptive.minimum_points`), auto falls back to rolling.
    """
    if method == "stl":
        season = 2 if period is None else period
        return 2 * season + (1 if online else 0)
    size = DEFAULT_WINDOW if window is None else window
    if method == "rolling" and robust:
        return 2 * size
    return size + 1


def fitted_window(readings: int, *, robust: bool = False) -> int:
    """The largest rolling window `readings` can fill: DEFAULT_WINDOW, or fewer when the
    series is shorter than it needs (at least MIN_WINDOW, which may still be too many)."""
    largest = readings // 2 if robust else readings - 1
    return max(MIN_WINDOW, min(DEFAULT_WINDOW, largest))


def detect(
    values: np.ndarray,
    timestamps_ms: np.ndarray | None = None,
    settings: MethodSettings | None = None,
    *,
    learn: np.ndarray | None = None,
    taught: Taught | None = None,
) -> DetectionResult:
    """Judge every point of a series with `settings` (default: `auto` with its defaults);
    see the module docs of `adaptive`, `rolling`, `stl`. The settings:

    `auto`: `sensitivity` is the alarm probability (default 3e-4: at most about 3
    alarms per 10,000 readings of normal behaviour, see `adaptive`); a `sigma` instead
    means the same tail as sigma standard deviations of normal noise (3 → 0.0027).
    `quiet`: readings without a new alarm after one (default 35). `window`: the level
    forecaster's window (default 120). `period`: the season in points instead of
    inferring it. `online` changes nothing: auto always judges each reading from the
    ones before it. Below `adaptive.minimum_points()` readings (225) it falls back to
    rolling (`result.params["auto"]` says so).

    rolling / STL: `sigma` the band half-width in scale units (default 3); `window`:
    rolling, the window in points (default 60, or fewer on a shorter series: see
    `fitted_window`; `params["window_fitted"]` says so); STL online, the history each block is
    fitted on (default four periods). `period`: STL season in points (grid steps of the
    median spacing when timestamps are given); None infers it.

    Every method: `direction`, `min_deviation` and `min_relative_deviation` keep only the
    flags whose deviation from the expected value passes them, and `taught` drops events
    a person's false-positive verdicts taught to be normal (see `gate`).

    `learn` (auto only; one bool per reading): False for readings judged but not learnt
    from (confirmed anomalies, open incidents, maintenance windows: `adaptive`, step 7).
    Rolling and STL learn nothing beyond their window and ignore it.
    """
    settings = settings or MethodSettings()
    result = _judged(values, timestamps_ms, settings, learn)
    return gate(
        result,
        np.asarray(values, dtype=np.float64),
        settings.direction,
        settings.min_deviation,
        settings.min_relative_deviation,
        taught=taught,
    )


def _judged(
    values: np.ndarray,
    timestamps_ms: np.ndarray | None,
    settings: MethodSettings,
    learn: np.ndarray | None,
) -> DetectionResult:
    method: Method = settings.method
    sigma, window, period = settings.sigma, settings.window, settings.period
    online, robust = settings.online, settings.robust
    series, times = _validated(values, timestamps_ms)
    _check_settings(method, sigma, window, period)
    n = series.shape[0]
    params: dict[str, object] = {}
    if method == "auto":
        needed = adaptive.minimum_points(window)
        if n >= needed:
            # One pass of the same algorithm a scan advances reading by reading: params and
            # events (typed) included.
            found = adaptive.judge(
                series, times, adaptive_settings(settings), period=period, learn=learn
            )
            return found.with_capped_scores()
        # Too short to learn what is unusual for this series: the seed's rule (a band of
        # sigma around a trailing mean) is the best there is, and says so.
        method, window = "rolling", None
        params["auto"] = (
            f"rolling: {n} readings, the default detector needs {needed} (a level window and "
            f"{adaptive.MIN_TAIL_HISTORY} of its errors) to judge one"
        )
    sigma = DEFAULT_SIGMA if sigma is None else sigma
    params.update({"sigma": float(sigma), "robust": bool(robust), "online": online})
    params["method"] = method
    if method == "stl":
        season = period if period is not None else _infer(series, times)
        if season is None:
            raise DetectionError(
                "no season found in the data (no clear autocorrelation peak): pass the "
                "period in points, or use method 'rolling'"
            )
        expected, scale = _stl(series, times, season, robust, online, window, params)
        params["period"] = season
        params["period_inferred"] = period is None
    else:
        size = DEFAULT_WINDOW if window is None else window
        needed = minimum_points("rolling", window=size, robust=robust, online=online)
        if n < needed and window is None:
            # No window asked for: the default one shrinks to the readings there are, so
            # that the seed's request (an hour of per-minute readings, 59 or 60 of them)
            # is judged rather than refused. An explicit window is kept, or refused.
            size = fitted_window(n, robust=robust)
            needed = minimum_points("rolling", window=size, robust=robust, online=online)
            params["window_fitted"] = (
                f"{n} readings, fewer than the default window of {DEFAULT_WINDOW} needs: "
                f"window {size}"
            )
        if n < needed:
            advice = (
                "add readings or widen the window" if window is None else "pass a smaller window"
            )
            raise DetectionError(
                f"rolling {'median/MAD' if robust else 'mean/std'} needs at least {needed} "
                f"readings with a window of {size}, got {n}: {advice}"
            )
        judge = rolling.median_mad if robust else rolling.mean_std
        expected, scale = judge(series, size, online=online)
        params["window"] = size
        params["window_kind"] = "trailing, the points before each point"
    result = _scored(series, expected, scale, float(sigma), method, params)
    return _with_kinds(result, series, times, seasonal=method == "stl").with_capped_scores()


def adaptive_settings(settings: MethodSettings) -> adaptive.AdaptiveSettings:
    """The default detector's settings for a user's choice (`auto`'s; see `detect`)."""
    defaults = adaptive.AdaptiveSettings()
    sensitivity = settings.sensitivity
    if sensitivity is None:
        # sigma standard deviations of normal noise, either side: the same tail probability.
        sigma = settings.sigma
        sensitivity = (
            defaults.sensitivity if sigma is None else float(special.erfc(sigma / math.sqrt(2)))
        )
    return replace(
        defaults,
        sensitivity=sensitivity,
        quiet=defaults.quiet if settings.quiet is None else settings.quiet,
        level_window=defaults.level_window if settings.window is None else settings.window,
    )


def _with_kinds(
    result: DetectionResult,
    series: np.ndarray,
    times: np.ndarray | None,
    *,
    seasonal: bool | np.ndarray,
) -> DetectionResult:
    """The result with each event's kind described (see `kinds`)."""
    if not result.events:
        return result
    kinds = describe_all(
        series,
        result.expected,
        np.array([event.start_index for event in result.events]),
        np.array([event.peak_index for event in result.events]),
        times_ms=times,
        seasonal=np.full(series.shape[0], seasonal) if isinstance(seasonal, bool) else seasonal,
    )
    events = [
        AnomalyEvent(e.start_index, e.end_index, e.peak_index, e.peak_score, kind)
        for e, kind in zip(result.events, kinds, strict=True)
    ]
    return replace(result, events=events)


def _stl(
    series: np.ndarray,
    times: np.ndarray | None,
    season: int,
    robust: bool,
    online: bool,
    window: int | None,
    params: dict[str, object],
) -> tuple[np.ndarray, np.ndarray]:
    n = series.shape[0]
    needed = minimum_points("stl", season, online=online)
    if n < needed:
        raise DetectionError(
            f"STL needs at least two periods of data: {needed} readings at period {season}, "
            f"got {n}" + (" (online: two periods before the first point judged)" if online else "")
        )
    settings = stl.StlSettings(period=season, robust=robust)
    params.update(settings.as_params())
    if not online:
        expected, scale, grid = stl.offline(series, times, settings)
        if times is not None:
            params["grid_step_ms"] = grid.step
        return expected, scale
    history = stl.HISTORY_PERIODS * season if window is None else window
    if history < 2 * season:
        raise DetectionError(
            f"online STL needs a history window of at least two periods ({2 * season} "
            f"readings at period {season}), got window={history}"
        )
    block = default_block(season)
    params["window"] = history
    params["block"] = block
    return stl.online(series, times, settings, history=history, block=block)


def _infer(series: np.ndarray, times: np.ndarray | None) -> int | None:
    if times is None:
        return infer_period(series)
    try:
        grid = regular_grid(series, times)
    except DetectionError:
        return None
    return infer_period(grid.values)


def _validated(
    values: np.ndarray, timestamps_ms: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        series = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DetectionError(f"values are not numbers: {exc}") from None
    if series.ndim != 1:
        raise DetectionError(f"values must be one series (1-D), got shape {series.shape}")
    if series.shape[0] == 0:
        raise DetectionError("no readings to judge")
    bad = np.flatnonzero(~np.isfinite(series))
    if bad.size:
        raise DetectionError(
            f"value at index {int(bad[0])} is {series[bad[0]]}: values must be finite "
            f"({bad.size} are not)"
        )
    if timestamps_ms is None:
        return series, None
    times = np.asarray(timestamps_ms)
    if times.shape != series.shape:
        raise DetectionError(
            f"{times.shape[0] if times.ndim else 0} timestamps for {series.shape[0]} values: "
            "pass one timestamp per value"
        )
    times = times.astype(np.int64)
    backwards = np.flatnonzero(np.diff(times) < 0)
    if backwards.size:
        i = int(backwards[0])
        raise DetectionError(
            f"timestamps must be in time order: index {i + 1} ({int(times[i + 1])}) is "
            f"before index {i} ({int(times[i])}); sort the readings by timestamp"
        )
    return series, times


def _check_settings(
    method: str, sigma: float | None, window: int | None, period: int | None
) -> None:
    if method not in METHODS:
        raise DetectionError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    if sigma is not None and not (math.isfinite(sigma) and sigma > 0):
        raise DetectionError(f"sigma must be a positive number, got {sigma}")
    if window is not None and window < MIN_WINDOW:
        raise DetectionError(f"window must be at least {MIN_WINDOW} points, got {window}")
    if period is not None and period < 2:
        raise DetectionError(f"period must be at least 2 points, got {period}")


def _series_spread(series: np.ndarray) -> float:
    """MAD (else std) of the series, from at most SPREAD_SAMPLE evenly spaced points.

    The floor needs the spread's order of magnitude only; two medians of a million
    points cost more than the rolling statistics themselves.
    """
    sample = series[:: max(1, series.shape[0] // SPREAD_SAMPLE)]
    median = float(np.median(sample))
    spread = MAD_TO_STD * float(np.median(np.abs(sample - median)))
    if spread > 0:
        return spread
    spread = float(np.std(series))
    if spread > 0:
        return spread
    # A constant series: any departure is news; keep the floor positive but negligible.
    return float(np.finfo(np.float64).eps) * max(1.0, abs(median))


def _scored(
    series: np.ndarray,
    expected: np.ndarray,
    scale: np.ndarray,
    sigma: float,
    method: str,
    params: dict[str, object],
) -> DetectionResult:
    expected = np.where(np.isfinite(scale), expected, np.nan)
    floor = SCALE_FLOOR * _series_spread(series)
    # NaN (not judged) stays NaN through the floor, the band and the score.
    half_width = sigma * np.maximum(scale, floor)
    score = np.abs(series - expected)
    score /= half_width
    np.nan_to_num(score, copy=False, nan=0.0)
    is_anomaly = score >= 1.0
    params["scale_floor"] = floor
    # The deviation in scale units is score × sigma: its two-sided normal tail.
    probability = np.clip(special.erfc(score * sigma / math.sqrt(2)), adaptive.TINIEST, 1.0)
    return DetectionResult.banded(
        method,
        params,
        expected=expected,
        half_width=half_width,
        score=score,
        probability=probability,
        is_anomaly=is_anomaly,
        events=group_events(is_anomaly, score),
    )
