"""Season length inferred from the autocorrelation of a series."""

from __future__ import annotations

import numpy as np

# A lag counts as a season only if the series resembles itself that far apart (ACF at
# least MIN_ACF) and the resemblance rose there (by MIN_PROMINENCE above the lowest ACF
# at a shorter lag): a slowly decaying ACF (a random walk, a trend) has no such rise.
MIN_ACF = 0.25
MIN_PROMINENCE = 0.2
MIN_POINTS = 8
# A lag whose self-difference is this much below its neighbour's is clearly nearer the season.
CLEARLY_LESS = 0.25
# A season known in advance (the day, from the readings' times: `seasonal`) is taken on two
# seasons if the readings resemble themselves that far apart (a correlation of DAY_MIN_ACF
# or more between each reading and the one a season later, about 3 sd of it for two days of
# hourly pairs on noise) and the resemblance rose there (DAY_PROMINENCE above the least
# correlation at a shorter lag: a random walk or a trend resembles itself at every lag).
DAY_MIN_ACF = 0.6
DAY_PROMINENCE = 0.6


def _detrended(values: np.ndarray) -> np.ndarray:
    index = np.arange(values.shape[0], dtype=np.float64)
    slope, intercept = np.polyfit(index, values, 1)
    return np.asarray(values - (slope * index + intercept), dtype=np.float64)


def _autocovariance(detrended: np.ndarray, max_lag: int) -> np.ndarray:
    """Sums of x[t] * x[t + k] for k in 0..max_lag (via FFT)."""
    n = detrended.shape[0]
    size = 1 << int(2 * n - 1).bit_length()
    spectrum = np.fft.rfft(detrended, size)
    return np.asarray(np.fft.irfft(spectrum * np.conj(spectrum), size)[: max_lag + 1])


def autocorrelation(values: np.ndarray, max_lag: int) -> np.ndarray:
    """Biased sample ACF at lags 0..max_lag of the linearly detrended series."""
    acov = _autocovariance(_detrended(values), max_lag)
    if acov[0] <= 0:
        return np.zeros(max_lag + 1)
    return np.asarray(acov / acov[0], dtype=np.float64)


def infer_period(values: np.ndarray, *, max_period: int | None = None) -> int | None:
    """The season length in points, or None if the series shows none.

    The strongest autocorrelation peak among lags 2..max_period (default: half the
    series, so that two seasons fit). The biased ACF shrinks with the lag, so a season
    wins over its multiples. A broad ACF peak is located only to a few lags (the lag
    bias and the noise move it), so the lag is then refined to where the series differs
    least from itself shifted (a parabola through the mean squared difference at lags
    within 10% of the peak).
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    limit = n // 2 if max_period is None else min(max_period, n // 2)
    if n < MIN_POINTS or limit < 2:
        return None
    detrended = _detrended(values)
    # Lags past the limit are only looked at to refine a peak right at it.
    reach = min(n - 2, limit + limit // 10 + 1)
    acov = _autocovariance(detrended, reach)
    if acov[0] <= 0:
        return None
    acf = acov[: limit + 2] / acov[0]
    inner = acf[1:-1]
    is_peak = (inner >= acf[:-2]) & (inner > acf[2:])
    lags = np.flatnonzero(is_peak) + 1
    lags = lags[(lags >= 2) & (lags <= limit)]
    if lags.size == 0:
        return None
    lowest_before = np.minimum.accumulate(acf)[lags - 1]
    strong = (acf[lags] >= MIN_ACF) & (acf[lags] - lowest_before >= MIN_PROMINENCE)
    lags = lags[strong]
    if lags.size == 0:
        return None
    best = int(lags[np.argmax(acf[lags])])
    return int(min(limit, _refine(detrended, acov, best)))


def _refine(detrended: np.ndarray, acov: np.ndarray, lag: int) -> int:
    n = detrended.shape[0]
    half = max(1, lag // 10)
    low, high = max(2, lag - half), min(acov.shape[0] - 1, lag + half)
    if high - low < 2:
        return lag
    lags = np.arange(low, high + 1)
    squares = np.concatenate(([0.0], np.cumsum(detrended * detrended)))
    sums = np.concatenate(([0.0], np.cumsum(detrended)))
    # Variance of x[t + k] - x[t] over the n - k pairs, from sums already at hand. Not their
    # mean square: a trend the line did not remove (a line through two seasons of a sine
    # leaves one) adds (slope * k)^2 to it, which pulls the minimum to shorter lags.
    pairs = n - lags
    head = squares[pairs]
    tail = squares[n] - squares[lags]
    drift = (sums[n] - sums[lags] - sums[pairs]) / pairs
    msd = (head + tail - 2 * acov[lags]) / pairs - drift * drift
    curvature, slope, _ = np.polyfit(lags.astype(np.float64), msd, 2)
    if curvature <= 0:
        return int(lags[np.argmin(msd)])
    vertex = round(-slope / (2 * curvature))
    if not low <= vertex <= high:
        return int(lags[np.argmin(msd)])
    # A season with sharp edges differs from itself in a V, not a parabola, and a parabola
    # through a V not centred in the window misplaces it by a reading (a forecast a reading
    # out of phase errs at every edge): step to a neighbour that differs clearly less.
    # On a smooth season neighbours differ by less than their noise, and the vertex stays.
    at = vertex - low
    while True:
        best = min((at - 1, at + 1), key=lambda k: msd[k] if 0 <= k < msd.shape[0] else np.inf)
        if not (0 <= best < msd.shape[0] and msd[best] < (1 - CLEARLY_LESS) * msd[at]):
            return int(lags[at])
        at = best


def refine_period(values: np.ndarray, lag: int) -> int:
    """`lag` moved to where the series differs least from itself shifted (as `infer_period`
    refines its peak): a season found on a coarser copy of the series, located to one reading."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    if lag < 2 or n < MIN_POINTS or lag + lag // 10 + 2 > n:
        return lag
    detrended = _detrended(values)
    acov = _autocovariance(detrended, min(n - 2, lag + lag // 10 + 1))
    if acov[0] <= 0:
        return lag
    return _refine(detrended, acov, lag)


def day_season(values: np.ndarray, lag: int) -> bool:
    """Whether evenly spaced `values` (at least two seasons of `lag`) resemble themselves
    `lag` apart (DAY_MIN_ACF, DAY_PROMINENCE). The correlation at each lag is
    over the pairs that far apart (not shrunk by the lag, as `period`'s search's is: two
    seasons give only one season of pairs)."""
    n = values.shape[0]
    if n < 2 * lag:
        return False
    acov = _autocovariance(_detrended(values), lag)
    if acov[0] <= 0:
        return False
    lags = np.arange(lag + 1)
    correlation = acov / (n - lags) / (acov[0] / n)
    return bool(
        correlation[lag] >= DAY_MIN_ACF
        and correlation[lag] - correlation[1:lag].min() >= DAY_PROMINENCE
    )
