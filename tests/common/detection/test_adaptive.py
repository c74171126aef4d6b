"""The default detector (`auto`): quiet on normal data, causal, its events typed."""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from common.detection import DetectionError, detect
from common.detection.adaptive import AdaptiveSettings, _Fits, judge, minimum_points
from common.detection.kinds import KINDS
from common.methods import MethodSettings
from tests.support import ROOT

NORMAL_POINTS = 20_000
SEEDS = (0, 1, 2)
# The bar: at most one alarm per 10,000 readings of normal data, over all seeds.
MAX_ALARMS = len(SEEDS) * NORMAL_POINTS // 10_000
NO_ANOMALY_FILES = ROOT.parent / "shared" / "accuracy" / "data" / "artificialNoAnomaly"


def normal_series(kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "white noise":
        return rng.normal(10.0, 2.0, NORMAL_POINTS)
    if kind == "random walk":
        return np.cumsum(rng.normal(0.0, 1.0, NORMAL_POINTS))
    if kind == "quantised":  # nine readings in ten the same: MAD = 0
        return rng.choice([3.0, 4.0, 5.0], p=[0.05, 0.9, 0.05], size=NORMAL_POINTS)
    if kind == "flat line":
        return np.full(NORMAL_POINTS, 42.0)
    if kind.startswith("daily cycle"):  # 5-minute readings, or hourly ones
        t = np.arange(NORMAL_POINTS)
        per_day = 24 if kind.endswith("hourly") else 288
        return 50 + 20 * np.sin(2 * np.pi * t / per_day) + rng.normal(0.0, 1.0, NORMAL_POINTS)
    raise AssertionError(kind)


# Kinds judged with times (the day is tested from the times): the step between readings.
TIMED = {"daily cycle, 5-minute times": 300_000, "daily cycle, hourly": 3_600_000}
UNTIMED = ["white noise", "random walk", "quantised", "flat line", "daily cycle"]
HOUR_MS = 3_600_000


@pytest.mark.parametrize(
    ("kind", "step"),
    [
        *((kind, None) for kind in UNTIMED),
        # Hourly readings are judged against their level's robust spread too (sparse readings).
        *((kind, HOUR_MS) for kind in UNTIMED),
        *TIMED.items(),
    ],
)
def test_quiet_on_normal_data(kind: str, step: int | None) -> None:
    alarms = 0
    for seed in SEEDS:
        values = normal_series(kind, seed)
        times = None if step is None else np.arange(NORMAL_POINTS, dtype=np.int64) * step
        result = detect(values, times)
        assert result.method == "auto"
        assert int(np.count_nonzero(result.judged)) > NORMAL_POINTS * 0.98
        alarms += int(np.count_nonzero(result.is_anomaly))
    assert alarms <= MAX_ALARMS


def read_corpus_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    times, values = [], []
    with path.open() as stream:
        for row in csv.DictReader(stream):
            moment = datetime.fromisoformat(row["timestamp"]).replace(tzinfo=UTC)
            times.append(int(moment.timestamp()) * 1000)
            values.append(float(row["value"]))
    return np.asarray(values), np.asarray(times, dtype=np.int64)


def test_quiet_on_the_corpus_series_without_anomalies() -> None:
    """The labelled corpus lives beside the project (never copied into it)."""
    files = sorted(NO_ANOMALY_FILES.glob("*.csv"))
    if not files:
        pytest.skip(f"the accuracy corpus is not at {NO_ANOMALY_FILES}")
    points = alarms = 0
    for path in files:
        values, times = read_corpus_csv(path)
        result = detect(values, times)
        points += values.shape[0]
        alarms += int(np.count_nonzero(result.is_anomaly))
    assert alarms <= points / 10_000


def seasonal_with_anomalies(n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    t = np.arange(n)
    values = 100 + 10 * np.sin(2 * np.pi * t / 144) + rng.normal(0.0, 1.0, n)
    values[1500] += 15
    values[2200:] += 8
    # Irregular spacing around one minute: the season is found on a grid.
    times = np.cumsum(rng.integers(50_000, 70_000, n)).astype(np.int64)
    return values, times


def test_a_spike_does_not_return_a_season_later() -> None:
    # Three spikes on a daily cycle of 5-minute readings. A spike that entered the season's
    # fit came back in each of the next cycles as a false dip (seen 1 to 3 times per series).
    period, spikes = 288, {2000: 25.0, 3500: 25.0, 4100: -20.0}
    alarms_off_spikes = []
    for seed in SEEDS:
        t = np.arange(5000)
        rng = np.random.default_rng(seed)
        values = 50 + 10 * np.sin(2 * np.pi * t / period) + rng.normal(0.0, 1.0, t.shape[0])
        for at, size in spikes.items():
            values[at] += size
        result = detect(values)
        alarms = set(np.flatnonzero(result.is_anomaly).tolist())
        assert set(spikes) <= alarms
        alarms_off_spikes += sorted(alarms - set(spikes))
    echoes = [at for at in alarms_off_spikes if any((at - s) % period == 0 for s in spikes)]
    assert echoes == []
    # Others stay within what the default sensitivity (3e-4) allows: 4.5 in 15,000 readings.
    assert len(alarms_off_spikes) <= 4


DAY = 288  # 5-minute readings


def daily_sine(days: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The issue's case: 5-minute readings of a daily sine (amplitude 20, noise sd 1.5)."""
    t = np.arange(round(days * DAY))
    rng = np.random.default_rng(seed)
    values = 50 + 20 * np.sin(2 * np.pi * t / DAY) + rng.normal(0.0, 1.5, t.shape[0])
    return values, (1_700_000_000_000 + t * 300_000).astype(np.int64)


# Readings a day at each cadence: hourly, 5-minute, 1-minute.
PER_DAY = {"hourly": 24, "5-minute": 288, "1-minute": 1_440}


def daily_cycle(cadence: str, days: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A daily sine (amplitude 20, noise sd 1) at a cadence, with its times."""
    per_day = PER_DAY[cadence]
    t = np.arange(round(days * per_day))
    rng = np.random.default_rng(seed)
    values = 50 + 20 * np.sin(2 * np.pi * t / per_day) + rng.normal(0.0, 1.0, t.shape[0])
    return values, (1_700_000_000_000 + t * (86_400_000 // per_day)).astype(np.int64)


@pytest.mark.parametrize("cadence", list(PER_DAY))
def test_a_daily_season_is_learnt_from_two_days(cadence: str) -> None:
    # The day is tested as soon as the readings cover two days, at every cadence (a day of
    # hourly readings was found from 10.7 days, of 1-minute ones from 2.1).
    per_day = PER_DAY[cadence]
    for seed in SEEDS:
        values, times = daily_cycle(cadence, 10 if cadence == "hourly" else 2.5, seed)
        seasons = detect(values, times).params["seasons"]
        assert isinstance(seasons, list) and seasons, seed
        assert seasons[0]["from_reading"] == 2 * per_day, seed
        # The search (5-minute readings, at 576) may locate it a reading off.
        assert abs(seasons[0]["period"] - per_day) <= 2, seed


@pytest.mark.parametrize("cadence", ["hourly", "5-minute"])
def test_a_reading_off_its_hour_of_the_day_alarms_after_two_days(cadence: str) -> None:
    # The case: a daily cycle for two to three days, then a reading inside the day's
    # range (30 to 70) but 30 noise sd off the season at its hour. On main an hourly one was
    # not judged before reading 225 (the young look's median and spread span the whole
    # day), and a 5-minute one was judged against the level (probability 0.5-0.8).
    per_day = PER_DAY[cadence]
    for seed in SEEDS:
        for day, size in ((2.625, 30.0), (2.75, 30.0)):
            values, times = daily_cycle(cadence, 10 if cadence == "hourly" else 4, seed)
            at = round(day * per_day)
            values[at] += size
            assert 30 < values[at] < 70
            result = detect(values, times)
            assert np.flatnonzero(result.is_anomaly).tolist() == [at], (seed, day)
            assert abs(result.expected[at] - (values[at] - size)) < 4.0


@pytest.mark.parametrize("days", [4])
def test_a_spike_on_a_daily_season_is_flagged_by_day_four(days: float) -> None:
    # A +30 spike (20 noise sd, within the day's range) at each quarter of the day, in the
    # last day: a season inferred only after 4.4 days left it at probability 0.11.
    for seed in SEEDS:
        for quarter in range(4):
            values, times = daily_sine(days, seed)
            at = values.shape[0] - DAY + quarter * DAY // 4 + 30
            values[at] += 30
            result = detect(values, times)
            assert np.flatnonzero(result.is_anomaly).tolist() == [at], (seed, quarter)


def test_a_far_larger_incident_inside_an_alarm_quiet_time_alarms() -> None:
    # Noise sd 1: a +8 spike alarms; 20 readings later, inside its quiet time (35), a +40
    # one is a second incident (a crash after a warning), and alarms too. A burst of equal
    # +12 spikes inside the quiet time (35) stays one event, one alarm (a burst that goes
    # on past it alarms again, as a long outage does once per quiet time).
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        values = rng.normal(50.0, 1.0, 1_500)
        values[1_000] += 8
        values[1_020] += 40
        alarms = np.flatnonzero(detect(values).is_anomaly).tolist()
        assert {1_000, 1_020} <= set(alarms)
        values = rng.normal(50.0, 1.0, 1_500)
        values[1_000:1_020:5] += 12
        alarms = np.flatnonzero(detect(values).is_anomaly).tolist()
        assert [at for at in alarms if at >= 1_000] == [1_000]


def test_the_next_incident_after_the_quiet_time_alarms_on_its_own() -> None:
    # Hourly readings with an incident every day or two (the cloud corpus' crash rates): a
    # +8 spike (noise sd 1), then another as large 40 readings later, each an incident of
    # its own. A quiet time of 50 readings swallowed the second (not 3x as unusual).
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        values = rng.normal(50.0, 1.0, 1_500)
        values[1_000] += 8
        values[1_040] += 8
        alarms = np.flatnonzero(detect(values).is_anomaly).tolist()
        assert {1_000, 1_040} <= set(alarms), (seed, alarms)


def test_verdict_does_not_depend_on_later_readings() -> None:
    values, times = seasonal_with_anomalies()
    whole = detect(values, times)
    assert whole.is_anomaly[1500] and whole.is_anomaly[2200:2210].any()
    for k in (400, 1100, 1500, 1501, 2203, 2999):
        cut = detect(values[: k + 1], times[: k + 1])
        for name in ("is_anomaly", "probability", "score", "expected", "lower", "upper"):
            np.testing.assert_array_equal(getattr(cut, name), getattr(whole, name)[: k + 1])


def test_online_and_offline_agree() -> None:
    values, times = seasonal_with_anomalies(1600)
    offline, online = detect(values, times), detect(values, times, MethodSettings(online=True))
    np.testing.assert_array_equal(offline.probability, online.probability)


def test_result_invariants() -> None:
    values, times = seasonal_with_anomalies()
    result = detect(values, times)
    np.testing.assert_array_equal(result.is_anomaly, result.score >= 1.0)
    assert ((result.probability > 0) & (result.probability <= 1)).all()
    judged = result.judged
    assert (result.lower[judged] < result.expected[judged]).all()
    assert (result.expected[judged] < result.upper[judged]).all()
    # One alarm per event: readings inside an event's quiet time do not alarm again.
    for event in result.events:
        assert result.is_anomaly[event.start_index]
        assert not result.is_anomaly[event.start_index + 1 : event.end_index + 1].any()


def test_sensitivity_and_sigma() -> None:
    values, times = seasonal_with_anomalies()
    strict = detect(values, times, MethodSettings(sensitivity=1e-9))
    loose = detect(values, times, MethodSettings(sensitivity=1e-2))
    default = detect(values, times)
    assert strict.is_anomaly.sum() <= default.is_anomaly.sum() <= loose.is_anomaly.sum()
    assert detect(values, times, MethodSettings(sigma=3.0)).params["sensitivity"] == pytest.approx(
        0.0027, 1e-2
    )
    with pytest.raises(DetectionError, match="sensitivity must be a probability"):
        # Past what the API accepts (lt 0.1): the library still says what is wrong.
        detect(values, times, MethodSettings.model_construct(sensitivity=0.5))
    short = detect(values[:100])
    assert short.method == "rolling" and "needs 225" in str(short.params["auto"])


@pytest.mark.parametrize("level_window", [60, 120, 200])
def test_minimum_points_is_the_first_reading_judged(level_window: int) -> None:
    """What scans call too short and where auto falls back to rolling: exactly the readings
    it takes before the first verdict (a new user found 221-224 readings judged nothing)."""
    settings = AdaptiveSettings(level_window=level_window)
    values = np.random.default_rng(1).normal(50, 1, minimum_points(level_window) + 5)
    judged = judge(values, None, settings).judged
    assert int(np.argmax(judged)) + 1 == minimum_points(level_window)


N, ONSET = 1600, 1200


def injected(kind: str, seed: int) -> np.ndarray:
    """Noise sd 1 around 50 (a cycle of 48 for the seasonal break), `kind` from ONSET."""
    rng = np.random.default_rng(seed)
    t = np.arange(N)
    season = 8 * np.sin(2 * np.pi * t / 48) if kind == "seasonal_break" else 0.0
    values = 50 + season + rng.normal(0.0, 1.0, N)
    after = N - ONSET
    if kind == "spike":
        values[ONSET] += 10
    elif kind == "dip":
        values[ONSET] -= 10
    elif kind == "level_shift_up":
        values[ONSET:] += 6
    elif kind == "level_shift_down":
        values[ONSET:] -= 6
    elif kind == "variance_change":
        values[ONSET:] = 50 + rng.normal(0.0, 5.0, after)
    elif kind == "trend_change":
        values[ONSET:] += 0.25 * np.arange(after)
    elif kind == "seasonal_break":
        values[ONSET:] = 50 + rng.normal(0.0, 1.0, after)
    return values


@pytest.mark.parametrize("kind", KINDS)
def test_event_kind_is_right(kind: str) -> None:
    right = 0
    for seed in range(10):
        result = detect(injected(kind, seed))
        found = [e for e in result.events if ONSET <= e.start_index <= ONSET + 40]
        if found and found[0].kind is not None and found[0].kind.name == kind:
            right += 1
    assert right >= 9


def test_event_says_its_numbers() -> None:
    times = np.arange(N, dtype=np.int64) * 300_000 + 1_700_000_000_000
    result = detect(injected("level_shift_up", 1), times)
    event = next(e for e in result.events if e.start_index >= ONSET)
    assert event.kind is not None
    assert event.kind.magnitude == pytest.approx(6.0, abs=1.0)
    assert event.kind.sigmas == pytest.approx(6.0, abs=1.5)
    assert event.kind.summary.startswith("level +")
    assert "σ) since 2023-11-" in event.kind.summary


def test_recovery_after_a_level_shift_within_hours() -> None:
    # White noise, +12 at reading 1,500 of 5-minute readings, +25 spikes 6.7 h and 23 h
    # later. The shift's own errors once widened the band by half for a week (26-78
    # around 52): neither spike alarmed, and the shift re-alarmed 51 readings on as a
    # "spike", and a "dip" inside its own band.
    shift, spikes = 1500, (1580, 1776)
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        values = 40 + rng.normal(0.0, 3.0, 2000)
        values[shift:] += 12
        values[list(spikes)] += 25
        times = np.arange(2000, dtype=np.int64) * 300_000 + 1_700_000_000_000
        result = detect(values, times)
        after = [e for e in result.events if e.start_index >= shift]
        kinds = [(e.start_index, e.kind.name if e.kind else None) for e in after]
        assert kinds[0][0] <= shift + 4 and kinds[0][1] == "level_shift_up", kinds
        assert kinds[1:] == [(spikes[0], "spike"), (spikes[1], "spike")], kinds
        # The band after the shift is the band before it, not half as wide again.
        half_width = (result.upper - result.lower) / 2
        assert half_width[spikes[1]] < 1.15 * half_width[shift - 1]


def test_a_magnitude_far_below_a_narrow_tail_has_probability_one() -> None:
    """Below its threshold a look's probability is capped at 1; far below a tail whose
    excesses barely vary, the exponential would overflow (a Twitter series in the feedback
    replay, its learning mask keeping confirmed events out, crashed the detector so)."""
    fits = object.__new__(_Fits)  # the block's fits as numbers, without a state
    fits.threshold, fits.scale = [50.0], [1e-3]
    assert fits.chance(0, 1.0, 0.1) == 1.0
    assert fits.chance(0, 50.0, 0.1) == pytest.approx(0.1)
    assert fits.chance(0, 50.01, 0.1) == pytest.approx(0.1 * math.exp(-10.0))


FIVE_MINUTES_MS = 300_000
# The drift look judges once its scale has seen 128 blocks of its own windows: from about
# reading 2,450 of a series (its forecasts from 225, its window of 256, 2,048 more).
SLOW_START = 3_000


def first_events_after(values: np.ndarray, start: int) -> list[tuple[int, str | None]]:
    times = np.arange(values.shape[0], dtype=np.int64) * FIVE_MINUTES_MS + 1_700_000_000_000
    result = detect(values, times)
    return [(e.start_index, e.kind.name if e.kind else None) for e in result.events][
        sum(e.start_index < start for e in result.events) :
    ]


@pytest.mark.parametrize("slope", [0.008, 0.02])
def test_a_slow_ramp_is_one_trend_event(slope: float) -> None:
    # 5-minute white noise (sd 1) that starts to climb by `slope` sd a reading and goes on
    # for ten days: the level forecaster follows it 60 readings behind (0.5-1.2 sd), which
    # the looks of 1 to 64 readings took for noise, or for a "spike" once, and then
    # learnt. It is one event, alarmed within a day, typed as a trend from its slope.
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        values = rng.normal(50.0, 1.0, 6_000)
        values[SLOW_START:] += slope * np.arange(3_000)
        events = first_events_after(values, SLOW_START)
        assert len(events) == 1, (seed, events)
        [(start, kind)] = events
        assert SLOW_START < start <= SLOW_START + 288 and kind == "trend_change", (seed, events)


def test_a_climb_to_the_ceiling_that_stays_there_is_one_event() -> None:
    # CPU at 45 % (sd 8) climbs over two days of 5-minute readings to 99.5 % and stays
    # pinned there (sd 0.3): the reading and the looks up to 64 readings never saw it (the
    # level follows the climb, and a pinned level is quieter, not louder). One event,
    # during the climb, a trend; none while it stays pinned.
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        values = np.clip(45 + 8 * rng.standard_normal(5_000), 0, 100)
        climb = slice(SLOW_START, SLOW_START + 576)
        noise = rng.normal(0.0, 8.0, 576) * np.linspace(1.0, 0.05, 576)
        values[climb] = np.linspace(45, 99.5, 576) + noise
        values[climb.stop :] = 99.5 + rng.normal(0.0, 0.3, 5_000 - climb.stop)
        events = first_events_after(np.clip(values, 0, 100), SLOW_START)
        assert len(events) == 1, (seed, events)
        [(start, kind)] = events
        assert SLOW_START < start < climb.stop and kind == "trend_change", (seed, events)


def test_a_noise_widening_slowly_is_one_variance_event() -> None:
    # 5-minute white noise whose sd grows from 1 to 4 over ten days: each reading's tail
    # and the spread look of 64 readings follow it, and saw at most a few of its largest
    # readings as spikes or dips, or nothing at all. A variance change within two days,
    # one event (a reading far out of even the wider noise may alarm on its own later).
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        spread = 1.0 + np.maximum(np.arange(6_000) - SLOW_START, 0) / 1_000
        values = 50.0 + spread * rng.standard_normal(6_000)
        events = first_events_after(values, SLOW_START)
        assert 1 <= len(events) <= 2, (seed, events)
        start, kind = events[0]
        assert SLOW_START < start <= SLOW_START + 576 and kind == "variance_change", (seed, events)


HOUR_MS = 3_600_000


def hourly(values: np.ndarray, step_ms: int = HOUR_MS) -> np.ndarray:
    return (np.arange(values.shape[0]) * step_ms).astype(np.int64)


def crash_rate(seed: int, n: int = 300) -> np.ndarray:
    """Hourly crashes of an application: about 30 an hour, sd 5."""
    return np.random.default_rng(seed).normal(30.0, 5.0, n).clip(0.0)


def test_a_burst_before_the_tails_judge_alarms_on_hourly_readings() -> None:
    # The cloud corpus' hourly series have their first incidents in their first days, and
    # the tails judge from reading 225 (9 days of hourly readings): a burst of 10x on day 6
    # was never judged. Now a reading 20 robust sd (and more) from the median of the
    # readings before alarms once a day has been seen; +12 sd does not (the young bar is
    # strict: the tails are not there to say what is usual for the series).
    for seed in SEEDS:
        values = crash_rate(seed)
        values[150] = 300.0
        values[100] += 60.0
        result = detect(values, hourly(values))
        assert np.flatnonzero(result.is_anomaly).tolist() == [150], seed
        assert abs(result.expected[150] - 30.0) < 3.0
        assert result.probability[150] <= AdaptiveSettings().sensitivity
        assert result.events[0].kind.name == "spike"


def test_the_young_look_waits_for_a_day() -> None:
    # Within the first day a daily swing has not been seen: the same burst 12.5 hours into
    # 5-minute readings, or in readings without times, is left to the tails.
    for seed in SEEDS:
        values = crash_rate(seed)
        values[150] = 300.0
        for times in (hourly(values, 300_000), None):
            result = detect(values, times)
            assert not result.is_anomaly[:150].any() and not result.is_anomaly[150], seed


def bursty_crash_rate(seed: int) -> tuple[np.ndarray, list[int]]:
    """Hourly crashes (30 +- 5) with a burst of 300 every 36 hours from reading 240 to
    492, then one more at reading 700: incidents every day or two, once the tails judge."""
    values = crash_rate(seed, 800)
    bursts = [*range(240, 493, 36), 700]
    values[bursts] = 300.0
    return values, bursts


def test_a_burst_every_day_or_two_alarms_each_time_on_hourly_readings() -> None:
    # The tails learn such bursts: on main only the first four alarmed (the fifth, 5.5 days
    # after the first, read at p 4.5e-4 to 5.1e-4), and the cloud corpus labels each burst of
    # its hourly crash rates an incident. Hourly readings are judged against their level's
    # robust spread too (sparse readings): each burst is 16 robust sd and more out of it.
    for seed in SEEDS:
        values, bursts = bursty_crash_rate(seed)
        result = detect(values, hourly(values))
        alarms = np.flatnonzero(result.is_anomaly).tolist()
        assert set(bursts) <= set(alarms), seed
        assert len(alarms) <= len(bursts) + 1, seed  # seed 0: a dip at 238, as on main
        assert all(result.events[alarms.index(at)].kind.name == "spike" for at in bursts)


def test_bursts_of_five_minute_readings_are_left_to_the_tails() -> None:
    # The same readings 5 minutes apart are judged by their tails alone, which learn the
    # bursts (Twitter volumes burst as far, unlabelled): the later ones do not alarm.
    for seed in SEEDS:
        values, bursts = bursty_crash_rate(seed)
        result = detect(values, hourly(values, 300_000))
        assert not result.is_anomaly[bursts[4:]].any(), seed


def test_hourly_bursts_hours_apart_each_back_to_its_level_alarm_each() -> None:
    # The cloud corpus' hourly crash rates burst every 3-4 hours, each burst back to the
    # level before the next and each labelled an incident: on main the first alarmed and
    # the others, as unusual as the first and inside its quiet time, did not (step 5 wants
    # 3x its peak). A reading back at its level marks the burst over (step 11); the next
    # burst 16 robust sd out, 5 readings or more after the event's first alarm, alarms.
    for seed in SEEDS:
        values = crash_rate(seed, 600)
        bursts = [330, 335, 339, 342, 450, 455]
        values[bursts] = 300.0
        result = detect(values, hourly(values))
        alarms = np.flatnonzero(result.is_anomaly[300:]) + 300  # seed 2: a dip at 265
        assert alarms.tolist() == bursts, seed
        assert all(event.kind.name == "spike" for event in result.events[-len(bursts) :])


def test_a_burst_that_stays_out_or_comes_back_at_once_is_one_incident() -> None:
    # Readings out of their level for hours are one burst: one alarm. A burst fewer than
    # REOPEN_AFTER readings after the alarm is the same incident (NAB's hourly ad-exchange
    # series burst twice 3-4 hours apart, unlabelled); so are bursts of 5-minute readings,
    # left to the tails (Twitter volumes burst as far, unlabelled).
    for seed in SEEDS:
        values = crash_rate(seed, 600)
        values[330:334] = 300.0
        values[[450, 453]] = 300.0
        values[[500, *range(502, 508)]] = 300.0  # back, then out again too soon, for hours
        result = detect(values, hourly(values))
        alarms = np.flatnonzero(result.is_anomaly[300:]) + 300
        assert alarms.tolist() == [330, 450, 500], seed
        values = crash_rate(seed, 600)
        values[[300, 306, 312]] = 300.0
        result = detect(values, hourly(values, 300_000))
        assert not result.is_anomaly[[306, 312]].any(), seed


@pytest.mark.parametrize("kind", ["white noise", "random walk", "quantised", "daily cycle"])
def test_the_young_look_is_quiet_on_normal_hourly_data(kind: str) -> None:
    # 40 series of hourly readings up to the tails' first verdict: 8,960 readings, of which
    # the young look judges 6,400 (from reading 64): no alarm.
    needed = minimum_points() - 1
    alarms = 0
    for seed in range(40):
        values = normal_series(kind, seed)[: needed + 16]
        if kind == "daily cycle":  # a day of hourly readings, not of 5-minute ones
            t = np.arange(values.shape[0])
            noise = np.random.default_rng(seed).normal(0.0, 1.0, values.shape[0])
            values = 50 + 20 * np.sin(2 * np.pi * t / 24) + noise
        result = detect(values, hourly(values))
        assert result.judged[64:needed].all() == (kind != "quantised")
        alarms += int(np.count_nonzero(result.is_anomaly[:needed]))
    assert alarms == 0
