"""How a sweep judges one metric's readings: no I/O here, only the detector and its state.

The default detector (SCAN_METHOD=auto) carries a compact state between sweeps: a sweep
advances it over the readings after the last one judged, which gives exactly the verdicts
of one pass over the whole series (common.detection.adaptive). The state is rebuilt from
the metric's newest SCAN_HISTORY_READINGS within SCAN_WINDOW_SECONDS, raw and compacted
alike (ReadingRepository.read_history_for_scan), when there is none (a new metric, or one
no sweep saw for two windows), when it is corrupt, from another detector version or other
settings, when readings arrived at or before the last one judged (late, or merged into a
compacted chunk: they are judged in the rebuild), or when readings after the last one
judged were compacted before a sweep saw them. Rolling and STL keep no state: each sweep judges
the same bounded history again, of which only the readings not judged before count.

Each metric is judged with its own detection settings (`PATCH /api/metrics/{id}`) over
the SCAN_* ones. Its sensitivity is part of the detector's state (an alarm starts a quiet
spell), so it is in the state's settings key: changing it rebuilds the state. Its direction
and minimum deviations are not: they pass the detector's verdicts through
common.detection.gate, as jobs do, so changing them takes effect at the next reading
without a rebuild. So do the metric's false-positive verdicts (`Teaching`); its confirmed
anomalies, open incidents and maintenance windows are kept out of what the detector learns
(common.anomalies.lessons), read once per batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.anomalies.lessons import Lessons
from common.detection import DetectionError, DetectionResult, detect
from common.detection import minimum_points as method_minimum
from common.detection.adaptive import (
    AdaptiveSettings,
    DetectorState,
    advance,
    minimum_points,
    new_state,
)
from common.detection.detector import adaptive_settings
from common.detection.gate import Taught, gate
from common.detection.state import settings_key
from common.methods import MethodSettings, MetricDetection
from common.metrics.models import ReadingSeries
from common.settings import Settings

# Readings stamped up to this far ahead of the sweep's clock are judged; later ones wait
# until their time comes, so one reading stamped in 2199 never holds up the ones stamped now.
FUTURE_SLACK_MS = 5 * 60_000
# Assumed between readings of a metric whose cadence is not known yet.
DEFAULT_CADENCE_MS = 60_000


def horizon_ms(now_ms: int) -> int:
    """The newest reading time a sweep judges."""
    return now_ms + FUTURE_SLACK_MS


# A metric's settings that only gate the detector's verdicts: not part of its state.
GATE_FIELDS = frozenset({"direction", "min_deviation", "min_relative_deviation"})


@dataclass(frozen=True)
class ScanDetector:
    """What sweeps judge a metric with: the scan settings, under the metric's own, as the
    detector takes them."""

    method: MethodSettings
    adaptive: AdaptiveSettings | None  # the default detector's settings; None: rolling/stl
    settings_key: str  # what a saved state must have been built with

    @classmethod
    def from_settings(
        cls, settings: Settings, detection: MetricDetection | None = None
    ) -> ScanDetector:
        scan = MethodSettings(
            method=settings.scan_method,
            sigma=settings.scan_sigma,
            sensitivity=settings.scan_sensitivity,
            online=True,
        )
        method = scan if detection is None else detection.over(scan)
        if method.method != "auto":
            state_part = method.model_dump_json(exclude=set(GATE_FIELDS))
            return cls(method, None, f"{method.method}:{state_part}")
        adaptive = adaptive_settings(method)
        return cls(method, adaptive, settings_key(adaptive))

    def gated(
        self, result: DetectionResult, series: ReadingSeries, taught: Taught | None = None
    ) -> DetectionResult:
        """The detector's verdicts with only the flags the metric's limits let through and
        its false positives did not teach to be normal (the gate jobs use; rolling and STL
        apply it inside `detect`)."""
        method = self.method
        return gate(
            result,
            series.values,
            method.direction,
            method.min_deviation,
            method.min_relative_deviation,
            taught=taught,
        )

    @property
    def stateful(self) -> bool:
        return self.adaptive is not None

    @property
    def method_name(self) -> str:
        """As stored on the anomalies a sweep finds."""
        return f"{self.method.method}-online"

    def too_short_note(self) -> str:
        """What a metric too short to judge says (the same words each time: said once)."""
        if self.adaptive is not None:
            needed = minimum_points(self.adaptive.level_window)
            return (
                f"too few readings to judge yet: the default detector judges from its "
                f"{ordinal(needed)} reading on (the ones before are what it learns from; "
                f"meanwhile, once they span a day, it flags only a reading far out of them)"
            )
        needed = method_minimum(self.method.method, online=True)
        return f"too few readings to judge: {self.method.method} needs at least {needed}"


def ordinal(number: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, 221st: as a scan note says it."""
    teens = number % 100 in (11, 12, 13)
    suffix = "th" if teens else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


class ScanDetectors:
    """The detector of each metric of a sweep or batch: one per distinct set of a metric's
    settings (most metrics have none of their own: they share one)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._made: dict[tuple[object, ...], ScanDetector] = {}

    def of(self, detection: MetricDetection) -> ScanDetector:
        key = tuple(vars(detection).values())  # per metric of a batch: cheaper than JSON
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = ScanDetector.from_settings(self.settings, detection)
        return made


@dataclass(frozen=True)
class Verdicts:
    """One metric's readings judged by a sweep."""

    series: ReadingSeries  # the readings judged, in time order
    result: DetectionResult  # index-aligned with `series`
    state: DetectorState | None  # the detector state after them (rolling/STL: none)
    note: str | None  # what to say of the metric (None: nothing)


def load_state(detector: ScanDetector, data: bytes | None) -> DetectorState | None:
    """The saved state if it can be continued with these settings; None: rebuild it.
    (Corrupt bytes, another detector version, other settings: StateInvalid.)"""
    if data is None or detector.adaptive is None:
        return None
    try:
        return DetectorState.from_bytes(data, settings=detector.adaptive)
    except DetectionError:
        return None


@dataclass(frozen=True)
class Teaching:
    """What people's verdicts and the maintenance windows say of a metric's readings:
    the gate's record, and which readings the detector may learn from (None: all)."""

    taught: Taught | None = None
    learn: np.ndarray | None = None

    @classmethod
    def of(cls, lessons: Lessons, series: ReadingSeries, in_windows: np.ndarray) -> Teaching:
        return cls(lessons.taught, lessons.learn(series.timestamps_ms, in_windows))


NOTHING_TAUGHT = Teaching()


def advance_state(
    detector: ScanDetector,
    state: DetectorState,
    series: ReadingSeries,
    teaching: Teaching = NOTHING_TAUGHT,
) -> Verdicts:
    """Judge the readings after the state's last one, from the state."""
    result, after = advance(state, series.timestamps_ms, series.values, teaching.learn)
    result = detector.gated(result, series, teaching.taught)
    note = None
    if after.readings_seen < minimum_points(after.settings.level_window):
        note = detector.too_short_note()
    return Verdicts(series, result, after, note)


class NotJudged(Exception):  # noqa: N818 (an outcome, not a failure)
    """Rolling or STL cannot judge the metric's readings as they are (too few, no season
    found): `note` says why, and is shown on the metric instead of failing every sweep."""

    def __init__(self, note: str):
        super().__init__(note)
        self.note = note


def judge_history(
    detector: ScanDetector, series: ReadingSeries, teaching: Teaching = NOTHING_TAUGHT
) -> Verdicts:
    """Judge a metric's history from no state (NotJudged: rolling/STL cannot)."""
    if detector.adaptive is not None:
        return advance_state(detector, new_state(detector.adaptive), series, teaching)
    if len(series) < method_minimum(detector.method.method, online=True):
        raise NotJudged(detector.too_short_note())
    try:
        result = detect(
            series.values, series.timestamps_ms, detector.method, taught=teaching.taught
        )
    except DetectionError as exc:
        raise NotJudged(str(exc)) from exc
    return Verdicts(series, result, None, None)


def cadence_of(series: ReadingSeries, before_ms: int | None, known_ms: int | None) -> int | None:
    """Typical time between readings: the median step of the readings judged (or the one
    step from the reading judged before), else what was known."""
    times = series.timestamps_ms
    if len(times) >= 2:
        step = int(np.median(np.diff(times)))
    elif len(times) == 1 and before_ms is not None:
        step = int(times[0]) - before_ms
    else:
        return known_ms
    return step if step > 0 else known_ms


def history_start(latest_ms: int | None, horizon: int, settings: Settings) -> int:
    """Where a rebuild's history starts: SCAN_WINDOW_SECONDS before the newest reading it
    can judge."""
    newest = horizon if latest_ms is None else min(latest_ms, horizon)
    return newest - settings.scan_window_seconds * 1000
