"""A metric's own limits on what may alarm: the direction of a deviation and its size.

The detector says how unusual a reading is for the series; a person knows more: that only
a rise of latency matters (`direction="up"`), or that a disk 0.3 % fuller than expected is
no news however unusual (`min_deviation` in the metric's units, `min_relative_deviation`
as a fraction of the expected value). The gate keeps a flag only where the deviation from
the expected value passes all three. A reading it keeps out scores just under 1 (the
result's `is_anomaly == (score >= 1)` holds), keeps its probability, and an event left
without a flagged reading is dropped.

It looks at one reading at a time, so judging a series in one pass or in pieces gives the
same verdicts; it is applied after the detector, whose own state does not depend on it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from common.detection.result import DetectionResult
from common.methods import Direction

JUST_UNDER_ONE = float(np.nextafter(1.0, 0.0))


def passes(
    values: np.ndarray,
    expected: np.ndarray,
    direction: Direction | None = None,
    min_deviation: float | None = None,
    min_relative_deviation: float | None = None,
) -> np.ndarray:
    """Where the deviation of `values` from `expected` may alarm (True where unlimited)."""
    deviation = values - expected
    size = np.abs(deviation)
    allowed = np.ones(values.shape[0], dtype=bool)
    with np.errstate(invalid="ignore"):  # NaN expected: not judged, not flagged anyway
        if direction == "up":
            allowed &= deviation > 0
        elif direction == "down":
            allowed &= deviation < 0
        if min_deviation:
            allowed &= size >= min_deviation
        if min_relative_deviation:
            allowed &= size >= min_relative_deviation * np.abs(expected)
    return allowed


def gate(
    result: DetectionResult,
    values: np.ndarray,
    direction: Direction | None = None,
    min_deviation: float | None = None,
    min_relative_deviation: float | None = None,
) -> DetectionResult:
    """`result` with only the flags whose deviation passes the limits (see the module)."""
    if direction in (None, "both") and not min_deviation and not min_relative_deviation:
        return result
    flagged = np.asarray(result.is_anomaly, dtype=bool)
    kept = flagged & passes(
        values, result.expected, direction, min_deviation, min_relative_deviation
    )
    if np.array_equal(kept, flagged):
        return result
    score = np.where(flagged & ~kept, np.minimum(result.score, JUST_UNDER_ONE), result.score)
    # An event stays while it holds a flag that passed (auto flags its alarm reading only,
    # rolling and STL every reading of it); its span and peak stay as the detector saw them.
    events = [e for e in result.events if kept[e.start_index : e.end_index + 1].any()]
    return replace(result, score=score, is_anomaly=kept, events=events)
