"""The arithmetic around chart buckets, on fixed arrays."""

from __future__ import annotations

import numpy as np

from common.metrics.series import bucket_width, slot_extreme, slot_mean, slot_positions


def test_bucket_width_covers_the_window_and_is_never_zero() -> None:
    assert bucket_width(0, 1000, 10) == 100
    assert bucket_width(0, 1001, 10) == 101  # rounded up: the last reading is in bucket 9
    assert bucket_width(5, 6, 1000) == 1


def test_slot_positions_match_exact_keys_only() -> None:
    positions = slot_positions(np.array([10, 20, 30]), np.array([20, 25, 10, 40, 30]))
    assert positions.tolist() == [1, -1, 0, -1, 2]


def test_slot_aggregates_skip_nan_and_unmatched() -> None:
    positions = np.array([0, 0, 1, -1, 2])
    values = np.array([1.0, 3.0, np.nan, 100.0, 5.0])
    assert np.allclose(slot_mean(positions, values, 4), [2.0, np.nan, 5.0, np.nan], equal_nan=True)
    low = slot_extreme(positions, values, 4, highest=False)
    high = slot_extreme(positions, values, 4, highest=True)
    assert np.allclose(low, [1.0, np.nan, 5.0, np.nan], equal_nan=True)
    assert np.allclose(high, [3.0, np.nan, 5.0, np.nan], equal_nan=True)
