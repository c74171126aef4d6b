"""Consecutive flagged points grouped into events."""

from __future__ import annotations

import numpy as np

from common.detection.result import AnomalyEvent


def group_events(is_anomaly: np.ndarray, score: np.ndarray) -> list[AnomalyEvent]:
    """One event per run of consecutive flagged points, in index order.

    The peak is the point of highest score in the run (the first one on a tie).
    """
    flags = np.asarray(is_anomaly, dtype=bool)
    if flags.size == 0 or not flags.any():
        return []
    # Run boundaries are where the padded flag sequence changes: +1 opens, -1 closes.
    edges = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    scores = np.asarray(score, dtype=np.float64)
    events = []
    # One iteration per event, not per point: events are few next to points.
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        peak = start + int(np.argmax(scores[start : end + 1]))
        events.append(
            AnomalyEvent(
                start_index=start,
                end_index=end,
                peak_index=peak,
                peak_score=float(scores[peak]),
            )
        )
    return events


def alarm_events(
    is_anomaly: np.ndarray, unusual: np.ndarray, score: np.ndarray, quiet: int
) -> list[AnomalyEvent]:
    """One event per alarm, lasting while readings stay unusual within its quiet time.

    For detectors that alarm once and then keep quiet (`adaptive`): the event runs from
    the alarm to the last unusual reading before the quiet time ends or the next alarm;
    the peak is its highest score.
    """
    alarms = np.flatnonzero(np.asarray(is_anomaly, dtype=bool)).tolist()
    unusual_at = np.flatnonzero(np.asarray(unusual, dtype=bool))
    scores = np.asarray(score, dtype=np.float64)
    events = []
    for number, start in enumerate(alarms):
        limit = start + quiet + 1
        if number + 1 < len(alarms):
            limit = min(limit, alarms[number + 1])
        inside = unusual_at[(unusual_at >= start) & (unusual_at < limit)]
        end = int(inside[-1]) if inside.size else start
        peak = start + int(np.argmax(scores[start : end + 1]))
        events.append(
            AnomalyEvent(
                start_index=start, end_index=end, peak_index=peak, peak_score=float(scores[peak])
            )
        )
    return events
