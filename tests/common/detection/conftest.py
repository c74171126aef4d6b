"""Synthetic daily-seasonal series with known anomalies, and how to score a detector on them.

Five-minute readings (period 288) over seven days, noise sd 1, a daily curve with a
second harmonic and a slight upward trend. Injected after the first two days (so the
online detectors have history): four spikes of 8-10 sd, a level shift of +7 for four
hours, and four hours of noise sd 4 (a variance change, 8 hours).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

PERIOD = 288
DAYS = 7
SPIKES = ((700, 8.0), (1000, -8.0), (1500, 9.0), (1650, -10.0))
LEVEL_SHIFT = (1200, 1247, 7.0)
VARIANCE_CHANGE = (1800, 1895, 4.0)
# A flag within TOLERANCE points of an anomaly finds it; flags up to AFTER points past
# an anomaly are its doing (a detector that adapted to a shift flags the return from it).
TOLERANCE = 3
AFTER = 48


@dataclass(frozen=True)
class Injected:
    values: np.ndarray
    spans: list[tuple[int, int]]  # inclusive index ranges, spikes first
    spikes: int


@dataclass(frozen=True)
class Score:
    found: list[bool]  # per injected anomaly
    precision: float  # share of flagged points that belong to an injected anomaly
    flagged: int

    @property
    def recall(self) -> float:
        return sum(self.found) / len(self.found)

    @staticmethod
    def of(is_anomaly: np.ndarray, spans: list[tuple[int, int]]) -> Score:
        return score_flags(is_anomaly, spans)


def injected_series(seed: int, amplitude: float) -> Injected:
    """A week of the daily curve at `amplitude` sd, with the anomalies above injected."""
    rng = np.random.default_rng(seed)
    t = np.arange(PERIOD * DAYS)
    values = (
        50
        + amplitude * np.sin(2 * np.pi * t / PERIOD)
        + 0.4 * amplitude * np.sin(4 * np.pi * t / PERIOD + 1)
        + 0.001 * t
        + rng.normal(0, 1, t.shape[0])
    )
    spans = []
    for index, size in SPIKES:
        values[index] += size
        spans.append((index, index))
    start, end, shift = LEVEL_SHIFT
    values[start : end + 1] += shift
    spans.append((start, end))
    start, end, sd = VARIANCE_CHANGE
    values[start : end + 1] += rng.normal(0, sd, end - start + 1)
    spans.append((start, end))
    return Injected(values=values, spans=spans, spikes=len(SPIKES))


def score_flags(is_anomaly: np.ndarray, spans: list[tuple[int, int]]) -> Score:
    flags = np.asarray(is_anomaly, dtype=bool)
    explained = np.zeros(flags.shape[0], dtype=bool)
    found = []
    for start, end in spans:
        low = max(0, start - TOLERANCE)
        found.append(bool(flags[low : end + TOLERANCE + 1].any()))
        explained[low : end + AFTER + 1] = True
    flagged = int(flags.sum())
    precision = float(explained[flags].mean()) if flagged else 1.0
    return Score(found=found, precision=precision, flagged=flagged)


@pytest.fixture(scope="session")
def strongly_seasonal() -> list[Injected]:
    """Daily amplitude 10 sd: STL's ground."""
    return [injected_series(seed, amplitude=10.0) for seed in (0, 1)]


@pytest.fixture(scope="session")
def mildly_seasonal() -> list[Injected]:
    """Daily amplitude 1 sd: a trailing window of five hours barely lags it."""
    return [injected_series(seed, amplitude=1.0) for seed in (0, 1, 2)]


@pytest.fixture(scope="session")
def score() -> type[Score]:
    """`score.of(is_anomaly, spans)`: the scoring rule, as a fixture (tests import no module)."""
    return Score
