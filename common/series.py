"""Downsampling a metric's series for charts: equal time buckets, min and max per bucket.

A chart a few thousand pixels wide gains nothing from 100,000 points, but an average per
pixel would flatten a one-reading spike; the lowest and highest value of each bucket keep
it. The buckets themselves are aggregated by the graph engine (GraphStore.window_buckets);
this module holds the arithmetic around them, pure numpy.
"""

from __future__ import annotations

import numpy as np


def bucket_width(start_ms: int, end_ms: int, buckets: int) -> int:
    """The width in ms of `buckets` equal buckets covering [start_ms, end_ms), at least 1."""
    return max(1, -(-(end_ms - start_ms) // buckets))


def slot_positions(slot_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """For each key, its position in the sorted `slot_keys`, or -1 where it has none.

    Slots are the chart's x values (bucket numbers, or reading timestamps when the series
    is not downsampled); keys are where other per-reading columns (a detection result) fall.
    """
    slot_keys = np.asarray(slot_keys, dtype=np.int64)
    keys = np.asarray(keys, dtype=np.int64)
    positions = np.searchsorted(slot_keys, keys)
    inside = positions < len(slot_keys)
    matched = np.zeros(len(keys), dtype=bool)
    matched[inside] = slot_keys[positions[inside]] == keys[inside]
    return np.where(matched, positions, -1)


def slot_mean(positions: np.ndarray, values: np.ndarray, slots: int) -> np.ndarray:
    """Mean of the finite values falling in each slot; NaN for a slot with none."""
    kept = (positions >= 0) & np.isfinite(values)
    sums = np.bincount(positions[kept], weights=values[kept], minlength=slots)
    counts = np.bincount(positions[kept], minlength=slots)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def slot_extreme(
    positions: np.ndarray, values: np.ndarray, slots: int, highest: bool
) -> np.ndarray:
    """Lowest (or highest) finite value falling in each slot; NaN for a slot with none."""
    kept = (positions >= 0) & np.isfinite(values)
    out = np.full(slots, -np.inf if highest else np.inf)
    (np.maximum if highest else np.minimum).at(out, positions[kept], values[kept])
    out[~np.isfinite(out)] = np.nan
    return out
