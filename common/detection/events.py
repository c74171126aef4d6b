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
    # Peaks of all runs at once (a narrow band on noise makes thousands of runs): sort the
    # flagged points by run, then score (highest first; NaN above all, as np.argmax takes
    # it), then index, and take each run's first.
    flagged = np.flatnonzero(flags)
    run = np.searchsorted(starts, flagged, side="right") - 1
    flagged_scores = scores[flagged]
    missing = np.isnan(flagged_scores)
    highest_first = -np.where(missing, np.inf, flagged_scores)
    order = np.lexsort((flagged, ~missing, highest_first, run))
    run_starts = np.flatnonzero(np.diff(run[order], prepend=-1))
    peaks = flagged[order][run_starts]
    return [
        AnomalyEvent(start_index=start, end_index=end, peak_index=peak, peak_score=peak_score)
        for start, end, peak, peak_score in zip(
            starts.tolist(), ends.tolist(), peaks.tolist(), scores[peaks].tolist(), strict=True
        )
    ]


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
