"""Rolling statistics: each point against the mean/std or median/MAD of a window of points.

Windows count points, not time: timestamps are not used (gaps and irregular spacing
are the caller's series as it is).

Which points form a point's window: the `window` points strictly before it, online and
offline alike. A trailing window lags a seasonal curve (STL is the method for seasons),
but a centred one follows any level shift or burst longer than half the window and so
cannot see it. The two modes differ only in the first points:

- online: points without a full window before them are not judged: the first `window`
  (mean/std) or `2 * window - 1` (median/MAD, whose scale needs a window of deviations,
  each from a window median).
- offline: every point is judged. Mean/std judge the first `window` points against the
  first `window + 1` points less the point itself; median/MAD give the first points
  the expected value and scale of the first point with a full history.

Scale of the robust variant: 1.4826 × the median, over the window, of each point's
absolute deviation from the median of its own window. For a stationary window this is
the window's MAD; unlike the exact MAD it is two rank filters (O(n log w)) instead of a
sort per window, which keeps a million points at a window of 60 near 0.1 s. For an
even-length window the median is the upper of the two middle values (what a rank
filter gives).

Mean/std sum each window's own values (block sums, `_window_sums`), of the series
centred on its median, so the sums lose no precision to a large common offset nor to one
huge value elsewhere in the series; windows that hold a value too large to square (above
about 1e153) are summed in units of the series' largest value.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage  # type: ignore[import-untyped]

from common.detection.spread import MAD_TO_STD

# The reference the series is centred on is the median of at most this many points.
REFERENCE_SAMPLE = 10_000


def trailing_medians(values: np.ndarray, size: int) -> np.ndarray:
    """Element k is the median of values[k : k + size]; len(values) - size + 1 of them."""
    filtered = ndimage.median_filter(values, size=size, mode="nearest")
    # ndimage centres a window of `size` on index k + size // 2.
    offset = size // 2
    return np.asarray(filtered[offset : offset + values.shape[0] - size + 1], dtype=np.float64)


def mean_std(values: np.ndarray, window: int, *, online: bool) -> tuple[np.ndarray, np.ndarray]:
    """Expected value (window mean) and scale (window std, ddof=1) per point; NaN if not judged."""
    n = values.shape[0]
    expected = np.full(n, np.nan)
    scale = np.full(n, np.nan)
    if n <= window:
        return expected, scale
    largest = float(np.finfo(np.float64).max)
    reference = float(np.median(values[:: max(1, n // REFERENCE_SAMPLE)]))
    with np.errstate(over="ignore"):
        centred = np.clip(values - reference, -largest, largest)
    # Beyond this size, squares summed over a window could overflow (1e154 squared is 1e308).
    limit = math.sqrt(largest / (window + 1)) / 2
    giant = np.abs(centred) > limit
    has_giant = bool(giant.any())
    plain = np.where(giant, 0.0, centred) if has_giant else centred
    mean, std = _window_moments(plain, window, online=online)
    if has_giant:
        # Windows holding a giant are summed in units of the largest value, where squares
        # cannot overflow; the others keep their own precision (plain sums skip giants).
        size = float(np.max(np.abs(centred)))
        scaled_mean, scaled_std = _window_moments(centred / size, window, online=online)
        holds_giant = _window_sums(giant.astype(np.float64), window, online=online) > 0
        mean = np.where(holds_giant, scaled_mean * size, mean)
        std = np.where(holds_giant, np.minimum(scaled_std * size, largest), std)
    scale[window:] = std[-(n - window) :]
    expected[window:] = mean[-(n - window) :]
    if not online:
        scale[:window] = std[:window]
        expected[:window] = mean[:window]
    expected += reference
    np.clip(expected, -largest, largest, out=expected)
    return expected, scale


def _window_moments(
    values: np.ndarray, window: int, *, online: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (ddof=1) of each judged point's window (_window_sums' order)."""
    mean = _window_sums(values, window, online=online) / window
    squares = _window_sums(values * values, window, online=online)
    variance = (squares - window * mean * mean) / (window - 1)
    # Rounding can leave a tiny negative variance on a flat window.
    return mean, np.sqrt(np.maximum(variance, 0.0))


def _window_sums(values: np.ndarray, window: int, *, online: bool) -> np.ndarray:
    """The sum over each judged point's window (module doc): offline the first `window`
    points' windows, then the trailing windows of points window .. n - 1.

    Every sum adds the values of its own window only. A running sum would carry every value
    before it: after one reading of 1e300, the difference of two running sums loses the
    small values of every later window. A trailing window is the tail of one block of
    `window` points plus the head of the next; the first windows (all of the first
    window + 1 points but one) are what comes before the point plus what comes after it.
    """
    n = values.shape[0]
    blocks = -(-n // window)
    grid = np.zeros(blocks * window)
    grid[:n] = values
    grid = grid.reshape(blocks, window)
    heads = np.cumsum(grid, axis=1).ravel()  # from its block's start to the point
    tails = np.cumsum(grid[:, ::-1], axis=1)[:, ::-1].ravel()  # from the point to its block's end
    count = n - window  # the windows [k, k + window) before points window .. n - 1
    rest = heads[window - 1 : window - 1 + count].copy()
    rest[::window] = 0.0  # a window starting a block is that block's tail alone
    trailing: np.ndarray = tails[:count] + rest
    if online:
        return trailing
    first = values[: window + 1]
    before = np.concatenate(([0.0], np.cumsum(first)[:-1]))
    after = np.concatenate((np.cumsum(first[::-1])[::-1][1:], [0.0]))
    return np.concatenate(((before + after)[:window], trailing))


def median_mad(values: np.ndarray, window: int, *, online: bool) -> tuple[np.ndarray, np.ndarray]:
    """Expected value (window median) and scale (1.4826 × MAD, module doc); NaN if not judged."""
    n = values.shape[0]
    expected = np.full(n, np.nan)
    scale = np.full(n, np.nan)
    if n < 2 * window:
        return expected, scale
    # medians[k] is the median of the window ending at point k + window - 1.
    medians = trailing_medians(values, window)
    deviations = np.abs(values[window - 1 :] - medians)
    deviation_medians = trailing_medians(deviations, window)
    # Point i is judged from the window ending at i - 1, and from the deviations of the
    # `window` points before it, the first of which needs a full window itself.
    first = 2 * window - 1
    expected[first:] = medians[window - 1 : -1]
    scale[first:] = MAD_TO_STD * deviation_medians[:-1]
    if not online:
        expected[:first] = expected[first]
        scale[:first] = scale[first]
    return expected, scale
