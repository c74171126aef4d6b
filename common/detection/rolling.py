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

Mean/std use cumulative sums of the series centred on its mean, so the windowed sums
do not lose precision to a large common offset.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage  # type: ignore[import-untyped]

from common.detection.spread import MAD_TO_STD


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
    reference = float(np.mean(values))
    centred = values - reference
    sums = np.concatenate(([0.0], np.cumsum(centred)))
    squares = np.concatenate(([0.0], np.cumsum(centred * centred)))
    ends = np.arange(window, n)
    window_sum = sums[ends] - sums[ends - window]
    window_squares = squares[ends] - squares[ends - window]
    judged = slice(window, n)
    if not online:
        # The first points: the first window + 1 points, less the point itself.
        head = centred[:window]
        window_sum = np.concatenate((sums[window + 1] - head, window_sum))
        window_squares = np.concatenate((squares[window + 1] - head * head, window_squares))
        judged = slice(0, n)
    mean = window_sum / window
    variance = (window_squares - window * mean * mean) / (window - 1)
    # Rounding can leave a tiny negative variance on a flat window.
    scale[judged] = np.sqrt(np.maximum(variance, 0.0))
    expected[judged] = mean + reference
    return expected, scale


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
