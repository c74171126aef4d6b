"""The default detector's state: any split of a series judges as one pass, in bounded bytes."""

from __future__ import annotations

import struct
import zlib
from dataclasses import replace
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.detection import DetectionError, detect
from common.detection.adaptive import AdaptiveSettings, advance, new_state
from common.detection.kinds import LOOK
from common.detection.result import DetectionResult
from common.detection.state import MAX_BYTES, VERSION, DetectorState, StateInvalid
from common.methods import MethodSettings

START_MS = 1_700_000_000_000
FIVE_MINUTES = 300_000
FLOATS = ("expected", "lower", "upper", "score", "probability")
KINDS = ("noise", "seasonal", "spikes and a shift", "irregular", "quantised", "flat", "walk")


def series(kind: str, seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Timestamps (ms) and values of a synthetic series of `kind`."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    times = START_MS + t * FIVE_MINUTES
    period = int(rng.integers(6, 120))
    if kind == "noise":
        values = rng.normal(10.0, 2.0, n)
    elif kind == "seasonal":
        values = 50 + 10 * np.sin(2 * np.pi * t / period) + rng.normal(0.0, 1.0, n)
    elif kind == "spikes and a shift":
        values = rng.normal(0.0, 1.0, n)
        values[rng.integers(0, n, 5)] += rng.choice([-12.0, 15.0], 5)
        values[int(rng.integers(n // 3, n)) :] += 6.0
    elif kind == "irregular":  # jitter of seconds, and gaps of whole cadences
        steps = FIVE_MINUTES * rng.choice([1, 1, 1, 1, 2, 3], n) + rng.integers(-20_000, 20_000, n)
        times = START_MS + np.cumsum(steps)
        values = 50 + 10 * np.sin(2 * np.pi * (times - START_MS) / (period * FIVE_MINUTES))
        values += rng.normal(0.0, 1.0, n)
    elif kind == "quantised":
        values = rng.choice([3.0, 4.0, 5.0], p=[0.05, 0.9, 0.05], size=n)
    elif kind == "flat":
        values = np.full(n, 42.0)
        values[int(rng.integers(0, n)) :] = 43.0
    else:
        values = np.cumsum(rng.normal(0.0, 1.0, n))
    return times.astype(np.int64), values


def in_pieces(
    times: np.ndarray, values: np.ndarray, cuts: list[int], settings_: AdaptiveSettings
) -> tuple[DetectionResult, list[DetectionResult], bytes]:
    """One pass, and the same readings advanced piece by piece through bytes at each cut."""
    whole, final = advance(new_state(settings_), times, values)
    pieces = []
    state = new_state(settings_)
    edges = [0, *sorted(set(cuts)), values.shape[0]]
    for start, stop in pairwise(edges):
        state = DetectorState.from_bytes(state.to_bytes(), settings=settings_)
        piece, state = advance(state, times[start:stop], values[start:stop])
        pieces.append(piece)
    assert state.to_bytes() == final.to_bytes()
    return whole, pieces, state.to_bytes()


def assert_same(whole: DetectionResult, pieces: list[DetectionResult]) -> None:
    np.testing.assert_array_equal(
        np.concatenate([piece.is_anomaly for piece in pieces]), whole.is_anomaly
    )
    for name in FLOATS:
        joined = np.concatenate([getattr(piece, name) for piece in pieces])
        np.testing.assert_allclose(joined, getattr(whole, name), rtol=1e-9, atol=0, err_msg=name)


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    kind=st.sampled_from(KINDS),
    seed=st.integers(0, 2**16),
    n=st.integers(200, 2_400),
    cuts=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=5),
    one_by_one=st.integers(0, 40),
)
def test_any_split_judges_as_one_pass(
    kind: str, seed: int, n: int, cuts: list[float], one_by_one: int
) -> None:
    times, values = series(kind, seed, n)
    points = [int(cut * n) for cut in cuts]
    # A stretch of single readings after the first cut: a scan's steady state.
    points += list(range(points[0], min(n, points[0] + one_by_one)))
    whole, pieces, _ = in_pieces(times, values, points, AdaptiveSettings())
    assert_same(whole, pieces)


def test_a_long_season_splits_as_one_pass() -> None:
    """A daily season of 1-minute readings: found on a downsampled grid, fitted on 8-minute bins."""
    rng = np.random.default_rng(5)
    n = 8_000
    t = np.arange(n)
    values = 100 + 20 * np.sin(2 * np.pi * t / 1_440) + rng.normal(0.0, 1.0, n)
    values[7_000] += 25
    times = (START_MS + t * 60_000).astype(np.int64)
    cuts = [1_000, 2_879, 2_880, 2_881, 3_071, 3_072, 3_073, 5_888, 6_500, 7_000, 7_001, 7_333]
    whole, pieces, _ = in_pieces(times, values, cuts, AdaptiveSettings())
    assert_same(whole, pieces)
    # The day tested once two days are seen (2,880 readings), confirmed by the search at 3,072.
    assert whole.params["seasons"] == [{"from_reading": 2_880, "period": 1_440}]
    assert whole.is_anomaly[7_000]


def test_a_provisional_day_splits_as_one_pass() -> None:
    """A day of hourly readings found on two days (reading 48) judges through the young look
    until the choice can weigh it: the provisional season, its confirmation by the search at
    reading 256 (its errors counted afresh) and an alarm off its hour, split anywhere."""
    rng = np.random.default_rng(7)
    n = 640
    t = np.arange(n)
    values = 50 + 20 * np.sin(2 * np.pi * t / 24) + rng.normal(0.0, 1.0, n)
    values[[66, 400]] += 30.0
    times = (START_MS + t * 3_600_000).astype(np.int64)
    cuts = [47, 48, 49, 56, 57, 66, 67, 100, 255, 256, 257, 300, 400, 401, 560]
    whole, pieces, _ = in_pieces(times, values, cuts, AdaptiveSettings())
    assert_same(whole, pieces)
    assert whole.params["seasons"] == [{"from_reading": 48, "period": 24}]
    assert np.flatnonzero(whole.is_anomaly).tolist() == [66, 400]


def test_detect_is_one_advance() -> None:
    times, values = series("seasonal", 3, 1_500)
    found = detect(values, times, MethodSettings(method="auto", online=True))
    whole, _ = advance(new_state(AdaptiveSettings()), times, values)
    np.testing.assert_array_equal(found.probability, whole.probability)
    np.testing.assert_array_equal(found.is_anomaly, whole.is_anomaly)


def sizes(times: np.ndarray, values: np.ndarray, step: int, period: int | None = None) -> list[int]:
    """Serialised sizes after advancing `step` readings at a time (odd: mid-block too)."""
    state, found = new_state(AdaptiveSettings(), period), []
    for start in range(0, values.shape[0], step):
        _, state = advance(state, times[start : start + step], values[start : start + step])
        found.append(len(state.to_bytes()))
    return found


def test_the_state_stays_within_16_kb_for_the_worst_shapes() -> None:
    rng = np.random.default_rng(9)
    # A daily season of 1-minute readings over two weeks (1,440 readings a season).
    n = 20_160
    t = np.arange(n)
    minute = (START_MS + t * 60_000).astype(np.int64)
    daily = 100 + 20 * np.sin(2 * np.pi * t / 1_440) + rng.normal(0.0, 1.0, n)
    assert max(sizes(minute, daily, 997)) <= MAX_BYTES
    # A daily season of 5-minute readings at irregular times, past the last season check.
    n = 17_000
    jitter = rng.integers(-30_000, 30_000, n)
    irregular = START_MS + np.cumsum(FIVE_MINUTES * rng.choice([1, 1, 1, 2], n) + jitter)
    phase = (irregular - START_MS) / (288 * FIVE_MINUTES)
    values = 50 + 10 * np.sin(2 * np.pi * phase) + rng.normal(0.0, 1.0, n)
    assert max(sizes(irregular.astype(np.int64), values, 1_001)) <= MAX_BYTES
    # A given weekly season of 5-minute readings, and noise without a season.
    n = 6_000
    five = (START_MS + np.arange(n) * FIVE_MINUTES).astype(np.int64)
    weekly = 10 * np.sin(2 * np.pi * np.arange(n) / 2_016) + rng.normal(0.0, 1.0, n)
    assert max(sizes(five, weekly, 1_003, period=2_016)) <= MAX_BYTES
    assert max(sizes(five, rng.normal(0.0, 1.0, n), 1_003)) <= MAX_BYTES


@pytest.mark.parametrize(
    "data",
    [b"", b"NNDS", b"garbage" * 100, np.random.default_rng(0).bytes(5_000), "not bytes"],
)
def test_garbage_is_invalid(data: object) -> None:
    with pytest.raises(StateInvalid, match=r"rebuild|bytes"):
        DetectorState.from_bytes(data)  # type: ignore[arg-type]


def a_state() -> DetectorState:
    times, values = series("seasonal", 1, 700)
    return advance(new_state(AdaptiveSettings()), times, values)[1]


def test_corrupt_and_truncated_bytes_are_invalid() -> None:
    data = a_state().to_bytes()
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    for broken in (data[:-1], data[: len(data) // 2], bytes(flipped)):
        with pytest.raises(StateInvalid, match=r"corrupt|rebuild"):
            DetectorState.from_bytes(broken)


def test_another_version_is_invalid() -> None:
    data = bytearray(a_state().to_bytes())
    struct.pack_into("<H", data, 4, VERSION + 1)
    body = bytes(data[:-4])
    data[-4:] = struct.pack("<I", zlib.crc32(body))
    with pytest.raises(StateInvalid, match=f"version {VERSION + 1}"):
        DetectorState.from_bytes(bytes(data))


def test_other_settings_are_invalid() -> None:
    state = a_state()
    data = state.to_bytes()
    assert DetectorState.from_bytes(data, settings=AdaptiveSettings()).readings_seen == 700
    for other, period in ((replace(AdaptiveSettings(), quiet=10), None), (AdaptiveSettings(), 48)):
        with pytest.raises(StateInvalid, match="other detector settings"):
            DetectorState.from_bytes(data, settings=other, period=period)
    assert state.settings_key != new_state(AdaptiveSettings(), 48).settings_key


def test_readings_at_or_before_the_last_one_are_refused() -> None:
    state = a_state()
    last = state.last_timestamp_ms
    assert last is not None
    for times in ([last], [last - 1], [last + 1, last + 1 - FIVE_MINUTES]):
        with pytest.raises(DetectionError, match=r"rebuilt|time order"):
            advance(state, np.array(times), np.ones(len(times)))
    with pytest.raises(DetectionError, match="one timestamp per value"):
        advance(state, np.array([last + 1]), np.ones(2))
    with pytest.raises(DetectionError, match="finite"):
        advance(state, np.array([last + 1]), np.array([np.nan]))
    empty, same = advance(state, np.zeros(0, dtype=np.int64), np.zeros(0))
    assert len(empty) == 0 and same.to_bytes() == state.to_bytes()


def test_an_event_split_after_its_alarm_keeps_its_alarm() -> None:
    """The alarm is the same whatever the split; its kind is decided from the readings the
    advance that raised it saw: the same as one pass once LOOK readings followed it."""
    rng = np.random.default_rng(2)
    n, onset = 1_400, 1_000
    values = 50 + rng.normal(0.0, 1.0, n)
    values[onset:] += 8  # a level shift: its kind needs the readings after the onset
    times = (START_MS + np.arange(n) * FIVE_MINUTES).astype(np.int64)
    whole, _ = advance(new_state(AdaptiveSettings()), times, values)
    [event] = [e for e in whole.events if e.start_index == onset]
    assert event.kind is not None and event.kind.name == "level_shift_up"
    for cut in (onset + 1, onset + LOOK):
        first, state = advance(new_state(AdaptiveSettings()), times[:cut], values[:cut])
        rest, _ = advance(state, times[cut:], values[cut:])
        flags = np.concatenate((first.is_anomaly, rest.is_anomaly))
        np.testing.assert_array_equal(flags, whole.is_anomaly)
        [seen] = [e for e in first.events if e.start_index == onset]
        assert seen.kind is not None  # provisional with fewer than LOOK readings after it
        if cut == onset + LOOK:
            assert seen.kind == event.kind
        # The event goes on in the next advance, which raises no new alarm for it.
        assert not rest.is_anomaly[: AdaptiveSettings().quiet].any()


def test_a_slow_drift_splits_as_one_pass() -> None:
    """The drift look judges from about reading 2,450 (its scale over 128 of its blocks):
    a slow ramp after that alarms on it, the same whatever the split."""
    rng = np.random.default_rng(8)
    n = 4_000
    values = rng.normal(50.0, 1.0, n)
    values[3_000:] += 0.01 * np.arange(n - 3_000)
    times = (START_MS + np.arange(n) * FIVE_MINUTES).astype(np.int64)
    cuts = [1_000, 2_447, 2_448, 2_449, 3_001, 3_100, 3_150, 3_151, 3_500]
    whole, pieces, _ = in_pieces(times, values, cuts, AdaptiveSettings())
    assert_same(whole, pieces)
    assert [e.kind.name for e in whole.events if e.start_index >= 3_000 and e.kind] == [
        "trend_change"
    ]


def test_a_split_after_a_level_decision_judges_as_one_pass() -> None:
    """SETTLE readings after an alarm the level decision puts a spike's errors into the
    tails, in the middle of a block: the rest of the block is judged from the tails with
    them whether the advance goes on or a new one starts there (a sweep's split at 293
    of a spiky series once saved a state with the drift looks' sums 1e-4 apart)."""
    rng = np.random.default_rng(3)
    n = 900
    t = np.arange(n)
    values = 50 + 10 * np.sin(2 * np.pi * t / 288) + rng.normal(0.0, 1.0, n)
    values[260::170] += 40.0
    times = (START_MS + t * FIVE_MINUTES).astype(np.int64)
    # Each spike's decision is 32 readings after it (292, 462, ...): a cut at each reading
    # of the blocks around the first two.
    cuts = [*range(288, 306), *range(458, 482)]
    whole, pieces, _ = in_pieces(times, values, cuts, AdaptiveSettings())
    assert_same(whole, pieces)
    assert whole.is_anomaly[260] and whole.is_anomaly[430]


def test_a_young_alarm_splits_as_one_pass() -> None:
    """The young look (hourly readings before the tails judge) reads the level window, the
    first reading's time and its event's quiet time from the state: any split judges as one
    pass, cuts before the grids start (64 readings) and inside the young readings included."""
    rng = np.random.default_rng(5)
    n = 400
    values = rng.normal(30.0, 5.0, n).clip(0.0)
    values[[150, 170, 300]] = [300.0, 900.0, 400.0]
    times = (START_MS + np.arange(n) * 3_600_000).astype(np.int64)
    cuts = [20, 63, 64, 65, *range(140, 160), 171, 182, 183, 224, 225, 226]
    whole, pieces, _ = in_pieces(times, values, cuts, AdaptiveSettings())
    assert_same(whole, pieces)
    assert whole.is_anomaly[150] and whole.is_anomaly[170]  # 900 is 3x as unusual: escalates


def test_sparse_readings_split_as_one_pass() -> None:
    """Hourly readings are judged against the level window's median and robust spread once
    the tails judge too (sparse readings): the window and the cadence come from the state,
    so any split judges as one pass, cuts at and around the bursts included."""
    rng = np.random.default_rng(7)
    n = 700
    values = rng.normal(30.0, 5.0, n).clip(0.0)
    bursts = [*range(240, 493, 36), 650]
    values[bursts] = 300.0
    times = (START_MS + np.arange(n) * 3_600_000).astype(np.int64)
    cuts = [63, 64, 224, 225, *range(236, 246), 276, 277, 313, 420, 421, 649, 650, 651]
    whole, pieces, _ = in_pieces(times, values, cuts, AdaptiveSettings())
    assert_same(whole, pieces)
    assert whole.is_anomaly[bursts].all()


def test_bursts_back_at_their_level_split_as_one_pass() -> None:
    """An event's burst marked over by a reading back at its level (the peak's sign, in the
    state) and the next burst alarming inside its quiet time judge as one pass, cut at and
    between the bursts."""
    rng = np.random.default_rng(11)
    n = 500
    values = rng.normal(30.0, 5.0, n).clip(0.0)
    bursts = [300, 305, 309, 312]
    values[bursts] = 300.0
    values[[400, 401, 402, 405]] = 300.0
    times = (START_MS + np.arange(n) * 3_600_000).astype(np.int64)
    cuts = [225, *range(298, 315), 399, 401, 402, 403, 404, 405, 406]
    whole, pieces, _ = in_pieces(times, values, cuts, AdaptiveSettings())
    assert_same(whole, pieces)
    assert (np.flatnonzero(whole.is_anomaly[280:]) + 280).tolist() == [*bursts, 400, 405]
