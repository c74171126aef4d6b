"""Readings judged but not learnt from (`learn`): a confirmed outage, an open incident, a
maintenance window must not teach the default detector that they are normal."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.detection import DetectionError
from common.detection.adaptive import AdaptiveSettings, advance, judge, new_state
from common.detection.result import DetectionResult
from common.detection.state import DetectorState
from tests.common.detection.test_state import KINDS, assert_same, series

OUTAGE = slice(1500, 1600)


def outage_series(seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Noise sd 1 with 100 readings of a noisy outage (+12, sd 6), then more noise."""
    rng = np.random.default_rng(seed)
    values = rng.normal(100.0, 1.0, 3000)
    values[OUTAGE] += 12.0 + rng.normal(0.0, 6.0, 100)
    times = 1_700_000_000_000 + np.arange(values.shape[0], dtype=np.int64) * 300_000
    return times, values


def test_all_true_is_no_mask() -> None:
    times, values = series("spikes and a shift", 7, 1500)
    plain, plain_state = advance(new_state(AdaptiveSettings()), times, values)
    masked, masked_state = advance(
        new_state(AdaptiveSettings()), times, values, np.ones(1500, dtype=bool)
    )
    assert_same(plain, [masked])
    assert plain_state.to_bytes() == masked_state.to_bytes()


def test_a_masked_outage_does_not_widen_the_band() -> None:
    times, values = outage_series()
    learn = np.ones(values.shape[0], dtype=bool)
    learn[OUTAGE] = False
    taught = judge(values, times, AdaptiveSettings())
    kept_out = judge(values, times, AdaptiveSettings(), learn=learn)
    after = slice(OUTAGE.stop + 50, OUTAGE.stop + 400)
    width_taught = np.median((taught.upper - taught.lower)[after])
    width_kept_out = np.median((kept_out.upper - kept_out.lower)[after])
    width_before = np.median((taught.upper - taught.lower)[OUTAGE.start - 300 : OUTAGE.start])
    # Learnt, the outage widens the band by half or more; kept out, the band stays as before.
    assert width_taught > 1.5 * width_before
    assert width_kept_out == pytest.approx(width_before, rel=0.1)
    # The same outage again later: more of it is outside the band when the first was kept out.
    again = values.copy()
    again[2500:2600] = values[OUTAGE]
    repeat = slice(2500, 2600)

    def outside(result: DetectionResult) -> int:
        return int(((again > result.upper) | (again < result.lower))[repeat].sum())

    learnt_again = outside(judge(again, times, AdaptiveSettings()))
    kept_out_again = outside(judge(again, times, AdaptiveSettings(), learn=learn))
    assert kept_out_again > 1.2 * learnt_again


def test_masked_readings_are_still_judged() -> None:
    times, values = outage_series()
    learn = np.ones(values.shape[0], dtype=bool)
    learn[OUTAGE] = False
    plain = judge(values, times, AdaptiveSettings())
    masked = judge(values, times, AdaptiveSettings(), learn=learn)
    # Up to the outage's first reading the verdicts are the same; the alarm is raised.
    upto = OUTAGE.start + 1
    np.testing.assert_array_equal(masked.is_anomaly[:upto], plain.is_anomaly[:upto])
    assert masked.is_anomaly[OUTAGE].any()


def test_a_mask_of_the_wrong_length_is_refused() -> None:
    times, values = series("noise", 1, 300)
    with pytest.raises(DetectionError, match="learning flags"):
        advance(new_state(AdaptiveSettings()), times, values, np.ones(299, dtype=bool))


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    kind=st.sampled_from(KINDS),
    seed=st.integers(0, 2**16),
    n=st.integers(300, 2_000),
    cuts=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=4),
    spans=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(1, 200)), max_size=3),
)
def test_a_masked_series_splits_as_one_pass(
    kind: str, seed: int, n: int, cuts: list[float], spans: list[tuple[float, int]]
) -> None:
    times, values = series(kind, seed, n)
    learn = np.ones(n, dtype=bool)
    for at, length in spans:
        learn[int(at * n) : int(at * n) + length] = False
    whole, final = advance(new_state(AdaptiveSettings()), times, values, learn)
    state = new_state(AdaptiveSettings())
    pieces = []
    for start, stop in pairwise([0, *sorted({int(c * n) for c in cuts}), n]):
        state = DetectorState.from_bytes(state.to_bytes(), settings=AdaptiveSettings())
        piece, state = advance(state, times[start:stop], values[start:stop], learn[start:stop])
        pieces.append(piece)
    assert_same(whole, pieces)
    assert state.to_bytes() == final.to_bytes()
