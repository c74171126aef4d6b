"""A metric's direction and minimum deviation: only the flags that pass them stay, through
`detect` as through the gate alone, with the result's invariants kept."""

from __future__ import annotations

import numpy as np
import pytest

from common.detection import detect
from common.detection.gate import (
    TAUGHT_AFTER,
    TAUGHT_CAP,
    Bar,
    FalsePositive,
    Taught,
    evidence_of,
    gate,
    passes,
    relative_of,
)
from common.methods import MethodSettings

SPIKE_UP, DIP, SMALL_SPIKE = 600, 900, 1200


def series() -> np.ndarray:
    """A steady 100 ± 0.5 with a spike of +20, a dip of -20 and a spike of +8 (unusual for
    the noise, 8 % of the level)."""
    values = 100 + np.random.default_rng(5).normal(0, 0.5, 1500)
    values[SPIKE_UP] += 20
    values[DIP] -= 20
    values[SMALL_SPIKE] += 8
    return values


def flagged(settings: MethodSettings) -> set[int]:
    result = detect(series(), None, settings)
    found = set(np.flatnonzero(result.is_anomaly).tolist())
    assert np.array_equal(result.is_anomaly, result.score >= 1)
    for event in result.events:  # every event keeps a flagged reading
        assert result.is_anomaly[event.start_index : event.end_index + 1].any()
    return found


def near(found: set[int], index: int) -> bool:
    return any(abs(i - index) <= 2 for i in found)


@pytest.mark.parametrize("method", ["auto", "rolling"])
def test_direction_and_minimum_deviation_limit_what_alarms(method: str) -> None:
    every = flagged(MethodSettings(method=method, online=True))
    assert near(every, SPIKE_UP) and near(every, DIP) and near(every, SMALL_SPIKE)
    up = flagged(MethodSettings(method=method, online=True, direction="up"))
    assert near(up, SPIKE_UP) and near(up, SMALL_SPIKE) and not near(up, DIP)
    down = flagged(MethodSettings(method=method, online=True, direction="down"))
    assert near(down, DIP) and not near(down, SPIKE_UP) and not near(down, SMALL_SPIKE)
    large = flagged(MethodSettings(method=method, online=True, min_deviation=10))
    assert near(large, SPIKE_UP) and near(large, DIP) and not near(large, SMALL_SPIKE)
    relative = flagged(MethodSettings(method=method, online=True, min_relative_deviation=0.1))
    assert relative == large
    assert up | down == every  # nothing but the limits changed


def test_gate_keeps_the_result_as_it_is_without_limits() -> None:
    values = series()
    result = detect(values, None, MethodSettings(method="rolling"))
    assert gate(result, values) is result
    assert gate(result, values, direction="both") is result


def test_passes_is_per_reading() -> None:
    values = np.array([10.0, 8.0, 10.5, 9.0])
    expected = np.array([9.0, 9.0, 10.0, np.nan])
    assert passes(values, expected, "up").tolist() == [True, False, True, False]
    assert passes(values, expected, min_deviation=1.0).tolist() == [True, True, False, False]
    assert passes(values, expected, min_relative_deviation=0.1).tolist() == [
        True,
        True,
        False,
        False,
    ]


def test_taught_false_positives_drop_events_no_further_off_of_their_kind_and_side() -> None:
    values = series()
    plain = detect(values, None, MethodSettings())
    spikes = {e.start_index: e for e in plain.events}
    assert {SPIKE_UP, DIP, SMALL_SPIKE} <= set(spikes)
    small = float(values[SMALL_SPIKE] - plain.expected[SMALL_SPIKE])
    share = relative_of(float(values[SMALL_SPIKE]), float(plain.expected[SMALL_SPIKE]))
    # "+8 is fine" for spikes up (8 % of the level), said twice (of +7 and of +8, say): the
    # +8 spike is normal, the +20 one and the dip still alarm.
    taught = Taught.of(
        [FalsePositive("spike", "up", small - 1, 0.07), FalsePositive("spike", "up", small, share)]
    )
    judged = detect(values, None, MethodSettings(), taught=taught)
    events = {e.start_index for e in judged.events}
    assert SMALL_SPIKE not in events and {SPIKE_UP, DIP} <= events
    assert not judged.is_anomaly[SMALL_SPIKE] and judged.score[SMALL_SPIKE] < 1
    assert np.array_equal(judged.is_anomaly, judged.score >= 1)
    # Another kind, or the other side, teaches nothing about it; nor does one verdict alone.
    # Nor does "+8 is fine" said where +8 was 2 % of the level (at a level of 400).
    for other in (
        [FalsePositive("level_shift_up", "up", small, share)] * TAUGHT_AFTER,
        [FalsePositive("spike", "down", small, share)] * TAUGHT_AFTER,
        [FalsePositive("spike", "up", small, share)] * (TAUGHT_AFTER - 1),
        [FalsePositive("spike", "up", small, share / 4)] * TAUGHT_AFTER,
    ):
        same = detect(values, None, MethodSettings(), taught=Taught.of(other))
        assert np.array_equal(same.is_anomaly, plain.is_anomaly) and same.events == plain.events


def test_false_positives_teach_once_marked_twice_up_to_the_largest() -> None:
    assert TAUGHT_AFTER == 2
    assert Taught.of([FalsePositive("spike", "up", 5.0, 0.1)]) is None
    taught = Taught.of(
        [FalsePositive("spike", "up", 5.0, 0.05), FalsePositive("spike", "up", 3.0, 0.1)]
    )
    assert taught == Taught({("spike", "up"): Bar(deviation=5.0, relative=0.1)})
    assert taught.normal("spike", "up", 5.0, 0.1, evidence=4.0)
    assert not taught.normal("spike", "up", 5.1, 0.1, evidence=4.0)


def test_false_positives_teach_a_size_relative_to_the_level_too() -> None:
    # +5 and +3 called normal at levels of 100 and 30: +5 at a level of 50 (10 %) is
    # normal, +5 at a level of 25 (20 %) is not, nor +6 at a level of 100 (6 %).
    taught = Taught.of(
        [
            FalsePositive("spike", "up", 5.0, relative_of(105.0, 100.0)),
            FalsePositive("spike", "up", 3.0, relative_of(33.0, 30.0)),
        ]
    )
    assert taught is not None
    assert taught.normal("spike", "up", 5.0, relative_of(55.0, 50.0), evidence=4.0)
    assert not taught.normal("spike", "up", 5.0, relative_of(30.0, 25.0), evidence=4.0)
    assert not taught.normal("spike", "up", 6.0, relative_of(106.0, 100.0), evidence=4.0)
    # Around an expected 0 any deviation is infinitely far relative to it.
    assert relative_of(-2.0, 0.0) == float("inf") and relative_of(0.0, 0.0) == 0.0
    assert relative_of(-2.0, -4.0) == pytest.approx(0.5)


def test_readings_of_one_event_marked_false_count_once() -> None:
    # Rolling and STL flag each reading of a spike: marking two of one event is one verdict.
    one_event = [FalsePositive("spike", "up", d, 0.1, event_start_ms=1_000) for d in (5.0, 4.0)]
    assert Taught.of(one_event) is None
    two_events = [*one_event, FalsePositive("spike", "up", 3.0, 0.1, event_start_ms=9_000)]
    assert Taught.of(two_events) == Taught({("spike", "up"): Bar(5.0, 0.1)})


def test_a_taught_record_is_bounded() -> None:
    taught = Taught.of([FalsePositive("spike", "up", 1e9, 1e9)] * TAUGHT_AFTER)
    assert taught is not None
    assert taught.normal("spike", "up", 5.0, 0.1, evidence=TAUGHT_CAP)
    assert not taught.normal("spike", "up", 5.0, 0.1, evidence=TAUGHT_CAP + 0.1)
    assert Taught.of([]) is None
    assert evidence_of(1e-5) == pytest.approx(5.0) and evidence_of(0.0) == 300.0
