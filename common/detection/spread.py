"""Robust spread of a sample: the one definition every method and description uses."""

from __future__ import annotations

import numpy as np

# 1.4826 × MAD estimates the standard deviation of normal noise, robust to outliers.
MAD_TO_STD = 1.4826


def robust_spread(sample: np.ndarray) -> float:
    """1.4826 × the MAD of the sample; its standard deviation when the MAD is 0 (a
    sample mostly of one value still has a spread); 0 for fewer than two values."""
    if sample.shape[0] < 2:
        return 0.0
    mad = MAD_TO_STD * float(np.median(np.abs(sample - np.median(sample))))
    return mad if mad > 0 else float(np.std(sample))
