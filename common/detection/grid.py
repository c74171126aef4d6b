"""Readings at irregular times put on a regular grid, for methods that need even spacing.

The grid step is the median spacing between distinct timestamps. Readings sharing a
timestamp are averaged; grid values are linearly interpolated between readings (a gap
becomes a straight line). Grid positions of the original readings map results back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.detection.result import DetectionError

# A grid far longer than the series means a few readings spread over a long time (a
# huge gap, or mostly-duplicate timestamps): interpolating would invent most of it.
MAX_GRID_FACTOR = 10


@dataclass(frozen=True)
class Grid:
    start: float  # time of grid point 0
    step: float  # time between grid points
    values: np.ndarray  # series on the grid

    def positions(self, times: np.ndarray) -> np.ndarray:
        """Fractional grid index of each time."""
        return (np.asarray(times, dtype=np.float64) - self.start) / self.step

    def at(self, grid_values: np.ndarray, times: np.ndarray) -> np.ndarray:
        """A per-grid-point array read at the given times (linear interpolation)."""
        index = np.arange(grid_values.shape[0], dtype=np.float64)
        return np.asarray(np.interp(self.positions(times), index, grid_values))


def regular_grid(values: np.ndarray, times: np.ndarray) -> Grid:
    """The series on a grid of its median spacing; times non-decreasing, values finite."""
    unique_times, inverse, counts = np.unique(times, return_inverse=True, return_counts=True)
    if unique_times.shape[0] < 2:
        raise DetectionError(
            "all readings share one timestamp: a season needs readings spread over time"
        )
    means = np.bincount(inverse, weights=values) / counts
    unique_times = unique_times.astype(np.float64)
    step = float(np.median(np.diff(unique_times)))
    span = unique_times[-1] - unique_times[0]
    size = int(np.floor(span / step + 1e-9)) + 1
    if size > MAX_GRID_FACTOR * unique_times.shape[0]:
        raise DetectionError(
            f"readings are too sparse to put on a regular grid: {unique_times.shape[0]} "
            f"distinct timestamps at a median spacing of {step:g} ms span {size} steps "
            f"(more than {MAX_GRID_FACTOR} per reading); use method 'rolling', or a "
            "window without the long gap"
        )
    grid_times = unique_times[0] + step * np.arange(size)
    return Grid(
        start=float(unique_times[0]),
        step=step,
        values=np.interp(grid_times, unique_times, means),
    )
