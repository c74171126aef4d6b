"""How a sweep judges one metric's readings: no I/O here, only the detector and its state.

The default detector (SCAN_METHOD=auto) carries a compact state between sweeps: a sweep
advances it over the readings after the last one judged, which gives exactly the verdicts
of one pass over the whole series (common.detection.adaptive). The state is rebuilt from
the metric's newest SCAN_HISTORY_READINGS within SCAN_WINDOW_SECONDS when there is none
(a new metric, or one no sweep saw for two windows), when it is corrupt, from another
detector version or other settings, or when readings arrived at or before the last one
judged (they are judged in the rebuild). Rolling and STL keep no state: each sweep judges
the same bounded history again, of which only the readings not judged before count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
from common.detection.state import settings_key
from common.methods import MethodSettings
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


@dataclass(frozen=True)
class ScanDetector:
    """What sweeps judge with: the scan settings as the detector takes them."""

    method: MethodSettings
    adaptive: AdaptiveSettings | None  # the default detector's settings; None: rolling/stl
    settings_key: str  # what a saved state must have been built with

    @classmethod
    def from_settings(cls, settings: Settings) -> ScanDetector:
        method = MethodSettings(
            method=settings.scan_method,
            sigma=settings.scan_sigma,
            sensitivity=settings.scan_sensitivity,
            online=True,
        )
        if method.method != "auto":
            return cls(method, None, f"{method.method}:{method.model_dump_json()}")
        adaptive = adaptive_settings(method)
        return cls(method, adaptive, settings_key(adaptive))

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
                f"{needed}th reading on (the ones before are what it learns from)"
            )
        needed = method_minimum(self.method.method, online=True)
        return f"too few readings to judge: {self.method.method} needs at least {needed}"


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


def advance_state(detector: ScanDetector, state: DetectorState, series: ReadingSeries) -> Verdicts:
    """Judge the readings after the state's last one, from the state."""
    result, after = advance(state, series.timestamps_ms, series.values)
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


def judge_history(detector: ScanDetector, series: ReadingSeries) -> Verdicts:
    """Judge a metric's history from no state (NotJudged: rolling/STL cannot)."""
    if detector.adaptive is not None:
        return advance_state(detector, new_state(detector.adaptive), series)
    if len(series) < method_minimum(detector.method.method, online=True):
        raise NotJudged(detector.too_short_note())
    try:
        result = detect(series.values, series.timestamps_ms, detector.method)
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
