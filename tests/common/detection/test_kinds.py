"""Each event's kind, judged against a baseline the event did not move, for every method."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from common.detection import detect
from common.methods import MethodSettings

MINUTE_MS = 60_000
START_MS = 1_700_000_000_000


def bursts(n: int, at: int, seed: int, season: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """One-minute readings of 50 + N(0, 0.5) (+ a cycle of 48), +40 for three readings at `at`."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = 50 + rng.normal(0.0, 0.5, n)
    if season:
        values += 10 * np.sin(2 * np.pi * t / 48)
    values[at : at + 3] += 40
    return values, t * MINUTE_MS + START_MS


def assert_one_spike_of_40(
    values: np.ndarray, times: np.ndarray, at: int, settings: MethodSettings
) -> None:
    """One event at the burst (others, before it, are not this test's business), a spike."""
    result = detect(values, times, settings)
    found = [event for event in result.events if event.end_index >= at]
    assert len(found) == 1 and found[0].start_index == at, found
    kind = found[0].kind
    assert kind is not None
    assert kind.name == "spike", kind.summary
    assert kind.magnitude == pytest.approx(40.0, abs=2.0), kind.summary
    assert kind.summary.startswith("spike +")


@pytest.mark.parametrize(
    "settings",
    [
        MethodSettings(sigma=6),  # auto, below its 225 readings: rolling, and says so
        MethodSettings(method="rolling", sigma=6),
        MethodSettings(method="rolling", sigma=6, online=True),
        MethodSettings(method="rolling", sigma=6, robust=True),
    ],
    ids=["auto", "rolling", "rolling online", "rolling robust"],
)
def test_the_readme_walkthrough_burst_is_a_spike_of_40(settings: MethodSettings) -> None:
    # The README's notification walkthrough: two hours of one-minute readings, +40 for
    # three readings 20 minutes ago. A rolling mean of 60 the burst pulled up by 2 made
    # the readings after it look like a level shift down (-3.7 sigma) or a wider spread.
    for seed in range(3):
        assert_one_spike_of_40(*bursts(120, 100, seed), 100, settings)


@pytest.mark.parametrize(
    ("settings", "season"),
    [
        (MethodSettings(), False),
        (MethodSettings(), True),
        (MethodSettings(method="rolling", sigma=6), False),
        (MethodSettings(method="stl", sigma=6, period=48), True),
        (MethodSettings(method="stl", sigma=6, period=48, online=True), True),
        (MethodSettings(method="stl", sigma=6, period=48, robust=True), True),
    ],
    ids=["auto flat", "auto seasonal", "rolling", "stl", "stl online", "stl robust"],
)
def test_a_burst_is_a_spike_of_40_for_every_method(settings: MethodSettings, season: bool) -> None:
    # The default detector's strongest evidence for a burst is its 32-reading look, some
    # readings after the burst: the kind still reports the burst, not the reading there.
    for seed in range(2):
        assert_one_spike_of_40(*bursts(1500, 1000, seed, season), 1000, settings)


def test_a_lasting_change_after_zeros_is_typed_without_overflow() -> None:
    # A count that stayed 0 (crashes, errors) has no noise: its noise unit is the floor
    # 1e-300, the errors of a ramp after it ~1e300 units, whose squares overflowed in the
    # trend fit ("overflow encountered in square" on the cloud corpus).
    values = np.zeros(1200)
    values[1000:] += 0.5 * np.arange(1, 201)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = detect(values)
    kinds = [event.kind.name for event in result.events if event.kind is not None]
    assert kinds[:1] == ["trend_change"]
