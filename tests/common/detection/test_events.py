"""Consecutive flags group into events; band, score and flag agree."""

from __future__ import annotations

import numpy as np

from common.detection import AnomalyEvent, detect
from common.detection.events import group_events
from common.detection.kinds import describe
from common.methods import MethodSettings


def test_groups_runs_with_peak() -> None:
    flags = np.array([0, 1, 1, 0, 0, 1, 0, 1, 1, 1], dtype=bool)
    scores = np.array([0, 2, 3, 0, 0, 1.5, 0, 4, 9, 4.0])
    assert group_events(flags, scores) == [
        AnomalyEvent(start_index=1, end_index=2, peak_index=2, peak_score=3.0),
        AnomalyEvent(start_index=5, end_index=5, peak_index=5, peak_score=1.5),
        AnomalyEvent(start_index=7, end_index=9, peak_index=8, peak_score=9.0),
    ]


def test_peaks_follow_argmax_on_ties_and_nan() -> None:
    # The peaks are found for all runs at once; each must be np.argmax of its run.
    rng = np.random.default_rng(3)
    flags = rng.random(5000) < 0.3
    scores = rng.integers(1, 4, 5000).astype(np.float64)  # many ties
    scores[rng.random(5000) < 0.02] = np.nan
    scores[rng.random(5000) < 0.02] = np.inf
    events = group_events(flags, scores)
    assert len(events) > 500
    for event in events:
        run = scores[event.start_index : event.end_index + 1]
        assert flags[event.start_index : event.end_index + 1].all()
        assert event.peak_index == event.start_index + int(np.argmax(run))


def test_no_flags_no_events() -> None:
    assert group_events(np.zeros(5, dtype=bool), np.zeros(5)) == []
    assert group_events(np.zeros(0, dtype=bool), np.zeros(0)) == []


def test_result_is_consistent() -> None:
    rng = np.random.default_rng(5)
    values = rng.normal(0, 1, 1000)
    values[500:505] += 15
    result = detect(values, None, MethodSettings(window=50, online=True, method="rolling"))
    assert len(result) == 1000
    np.testing.assert_array_equal(result.is_anomaly, result.score >= 1)
    judged = result.judged
    assert not result.is_anomaly[~judged].any() and (result.score[~judged] == 0).all()
    outside = (values < result.lower) | (values > result.upper)
    np.testing.assert_array_equal(outside[judged], result.is_anomaly[judged])
    event = next(e for e in result.events if e.start_index <= 500 <= e.end_index)
    assert (
        event.peak_score
        == result.score[event.peak_index]
        == max(result.score[event.start_index : event.end_index + 1])
    )
    flagged = np.zeros(1000, dtype=bool)
    for e in result.events:
        flagged[e.start_index : e.end_index + 1] = True
    np.testing.assert_array_equal(flagged, result.is_anomaly)


def test_a_lone_spike_is_described_as_one() -> None:
    values = np.zeros(400)
    values[::2] = 1.0  # noise of 0/1 steps
    values[300] = 40.0
    kind = describe(values, np.full(400, 0.5), 300, 300)
    assert kind.name == "spike" and kind.magnitude == 39.5
    assert kind.summary.startswith("spike +39.5")
