"""A metric's own limits on what may alarm: the direction of a deviation and its size.

The detector says how unusual a reading is for the series; a person knows more: that only
a rise of latency matters (`direction="up"`), or that a disk 0.3 % fuller than expected is
no news however unusual (`min_deviation` in the metric's units, `min_relative_deviation`
as a fraction of the expected value). The gate keeps a flag only where the deviation from
the expected value passes all three. A reading it keeps out scores just under 1 (the
result's `is_anomaly == (score >= 1)` holds), keeps its probability, and an event left
without a flagged reading is dropped.

It also applies what a person taught (`Taught`, from the metric's false-positive verdicts):
once TAUGHT_AFTER false positives of the same kind and direction were marked, a later
event of that kind and direction whose alarm deviates from the expected value by no more
than the largest of them, both in the metric's units and relative to the expected value,
is judged normal, and dropped like a flag the limits keep out; a stronger one still
alarms. One false positive alone teaches nothing: behaviour a person called normal once
may be how the next real incident starts, and one that repeats is what makes alarms noise
(in NAB's replay, waiting for the second kept 3 of the 6 windows one verdict lost, for one
false alarm more; in the cloud corpus's, where false alarms repeat less, it removes 5
fewer: BENCHMARKS.md, "Feedback"). Both sizes, because a burst called normal at one level
is not the same burst at a lower one: "+200 is fine" said at a level of 1,000 does not
make +200 fine at a level of 300 (in the replay, comparing the relative size too keeps 3
of the 8 windows the units alone lost, on both corpora, for 5 and 3 false alarms more).
Bounded: an alarm whose probability is below 10^-TAUGHT_CAP alarms whatever was marked,
so no verdict silences a metric. (A deviation, not the probability, is what is compared:
a person marks "+40 ms is fine"; on the labelled corpora it lost fewer found windows per
false alarm removed than comparing probabilities, and raising the metric's alarm
probability bar by ×10 a verdict, up to ×100, lost 20 of NAB's 61 windows and 12 of the
cloud corpus's 86.)

It looks at one event at a time, from what the detector said of it, so judging a series
in one pass or in pieces gives the same verdicts; it is applied after the detector, whose
own state does not depend on it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from common.detection.result import AnomalyEvent, DetectionResult
from common.methods import Direction

JUST_UNDER_ONE = float(np.nextafter(1.0, 0.0))
# An alarm less likely than 10^-TAUGHT_CAP always alarms, whatever was marked false (the
# default sensitivity is 3e-4: 3.5 decades).
TAUGHT_CAP = 10.0
# False positives of one kind and direction it takes before alarms like them are normal.
TAUGHT_AFTER = 2
# Probabilities are floored here before their logarithm (the detector's smallest).
TINIEST = 1e-300

Side = Literal["up", "down"]


def evidence_of(probability: float) -> float:
    """How unusual, in decades: -log10 of the probability (0 for a probability of 1)."""
    return -math.log10(min(max(probability, TINIEST), 1.0)) + 0.0


@dataclass(frozen=True)
class FalsePositive:
    """An anomaly a person said was normal, as it was judged."""

    kind: str | None  # the kind of its event when it was judged (None: not typed)
    side: Side  # which way its reading left the expected value
    deviation: float  # how far (|value - expected|, in the metric's units)
    relative: float  # how far relative to the expected value (deviation / |expected|)
    # The start of its event (epoch ms): marking several readings of one event (rolling
    # and STL flag each reading of a spike) counts as one false positive. None: its own.
    event_start_ms: int | None = None


@dataclass(frozen=True)
class Bar:
    """The largest deviation a person called normal, in the metric's units and relative to
    the expected value (the largest of each, maybe of two verdicts)."""

    deviation: float
    relative: float


@dataclass(frozen=True)
class Taught:
    """What a metric's false positives teach: per (kind, side) marked at least
    TAUGHT_AFTER times, the largest deviation a person called normal."""

    bars: dict[tuple[str | None, Side], Bar]

    @classmethod
    def of(cls, false_positives: Iterable[FalsePositive]) -> Taught | None:
        """The record of these verdicts (None: nothing taught)."""
        largest: dict[tuple[str | None, Side], Bar] = {}
        events: dict[tuple[str | None, Side], set[object]] = {}
        for number, fp in enumerate(false_positives):
            if math.isfinite(fp.deviation):
                key = (fp.kind, fp.side)
                bar = largest.get(key, Bar(fp.deviation, fp.relative))
                largest[key] = Bar(max(bar.deviation, fp.deviation), max(bar.relative, fp.relative))
                event = ("reading", number) if fp.event_start_ms is None else fp.event_start_ms
                events.setdefault(key, set()).add(event)
        bars = {key: bar for key, bar in largest.items() if len(events[key]) >= TAUGHT_AFTER}
        return cls(bars) if bars else None

    def normal(
        self, kind: str | None, side: Side, deviation: float, relative: float, evidence: float
    ) -> bool:
        """Whether an alarm like this was taught to be normal."""
        bar = self.bars.get((kind, side))
        return (
            bar is not None
            and deviation <= bar.deviation
            and relative <= bar.relative
            and evidence <= TAUGHT_CAP
        )


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


def side_of(value: float, expected: float) -> Side:
    return "up" if value >= expected else "down"


def relative_of(value: float, expected: float) -> float:
    """|value - expected| relative to the expected value (inf at an expected 0, unless the
    value is 0 too)."""
    size = abs(value - expected)
    return size / abs(expected) if expected else (math.inf if size else 0.0)


def taught_normal(
    result: DetectionResult, values: np.ndarray, taught: Taught, event: AnomalyEvent
) -> bool:
    """Whether `taught` judges the event normal: its alarm (its first flag) compared."""
    flags = np.flatnonzero(result.is_anomaly[event.start_index : event.end_index + 1])
    if flags.shape[0] == 0:
        return False
    alarm = event.start_index + int(flags[0])
    value, expected = float(values[alarm]), float(result.expected[alarm])
    kind = event.kind.name if event.kind is not None else None
    evidence = evidence_of(float(result.probability[alarm]))
    side, relative = side_of(value, expected), relative_of(value, expected)
    return taught.normal(kind, side, abs(value - expected), relative, evidence)


def gate(
    result: DetectionResult,
    values: np.ndarray,
    direction: Direction | None = None,
    min_deviation: float | None = None,
    min_relative_deviation: float | None = None,
    *,
    taught: Taught | None = None,
) -> DetectionResult:
    """`result` with only the flags whose deviation passes the limits and whose event was
    not taught to be normal (see the module)."""
    limited = direction not in (None, "both") or min_deviation or min_relative_deviation
    if not limited and taught is None:
        return result
    flagged = np.asarray(result.is_anomaly, dtype=bool)
    kept = flagged & passes(
        values, result.expected, direction, min_deviation, min_relative_deviation
    )
    if taught is not None:
        for event in result.events:
            if taught_normal(result, values, taught, event):
                kept[event.start_index : event.end_index + 1] = False
    if np.array_equal(kept, flagged):
        return result
    score = np.where(flagged & ~kept, np.minimum(result.score, JUST_UNDER_ONE), result.score)
    # An event stays while it holds a flag that passed (auto flags its alarm reading only,
    # rolling and STL every reading of it); its span and peak stay as the detector saw them.
    events = [e for e in result.events if kept[e.start_index : e.end_index + 1].any()]
    return replace(result, score=score, is_anomaly=kept, events=events)
