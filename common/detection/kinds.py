"""What kind of anomaly an event is, with the numbers behind it.

An event is judged from the readings around its onset, in units of the series' noise
(the robust spread of the forecast errors over the BASELINE readings before the onset):

- the errors over the LOOK readings from the onset on (fewer at the end of a series:
  the kind is then provisional, decided from what has been seen), each against a
  baseline the event did not move: the expected value at the onset, held, where the
  forecast is a level (a rolling mean or median follows the event's own readings: three
  +40 readings lift a rolling mean of 60 by 2, and what follows would read as a shift
  down); where a season is forecast, its forecast at each reading (the seasonal
  forecasters fit readings from before the event, clipped);
- short-lived (under a third of them beyond 3 noise units): a spike (up) or a dip;
- lasting and on one side: a trend change if the errors grow steadily (a line fits them
  far better than a constant, and they start small), else a level shift up or down;
- lasting on both sides: a variance change if the readings themselves spread wider,
  else, where a season was being forecast, a seasonal pattern break (the readings no
  longer follow the usual shape, without spreading wider), else a variance change.

The kind is a description of what followed the alarm; the alarm itself never looks ahead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from common.detection.spread import robust_spread
from common.scores import MAX_SCORE

BASELINE = 120
LOOK = 32
# Beyond this many noise units a reading is part of the anomaly, not the noise.
OUTSIDE = 3.0
# A share of the look window beyond OUTSIDE that makes an anomaly lasting, not a spike.
LASTING = 0.3
# A level shift has nearly all its lasting errors on one side.
ONE_SIDED = 0.8
# Readings spreading this much wider than before: the variance changed.
WIDER = 1.5

# Past this many events the noise before each is taken as a mean, not a median (cheap).
MANY_EVENTS = 200
# The mean absolute deviation of normal noise is 0.7979 of its standard deviation.
MEAN_TO_STD = 1.2533

KINDS = (
    "spike",
    "dip",
    "level_shift_up",
    "level_shift_down",
    "variance_change",
    "seasonal_break",
    "trend_change",
)


@dataclass(frozen=True)
class EventKind:
    name: str  # one of KINDS
    magnitude: float  # in the series' units: the jump, the shift, the change over LOOK
    sigmas: float  # the magnitude in noise units (for a variance change: the spread ratio)
    summary: str


def describe_all(
    values: np.ndarray,
    expected: np.ndarray,
    starts: np.ndarray,
    peaks: np.ndarray,
    *,
    drifts: list[str | None] | None = None,
    times_ms: np.ndarray | None = None,
    seasonal: np.ndarray | None = None,
    reading_offset: int = 0,
) -> list[EventKind]:
    """The kind of each event (onset `starts[k]`, strongest reading `peaks[k]`).

    `drifts` (per event): None, or "trend" / "spread" for an event a look over hundreds of
    readings saw (`adaptive`'s drift looks): a trend change, its slope fitted on the
    BASELINE readings up to the onset, or a variance change, the spread of the last half of
    those readings' errors against the first half's (what follows an alarm on a slow change
    says little about it within LOOK readings).
    `reading_offset`: without times, the number of the reading at index 0 (summaries say
    "at reading N" of the whole series when `values` is a part of it).

    A method with a narrow band on noise can raise thousands of one-reading events, so
    the common case is decided for all events at once: the noise before each onset and
    the share of its look window outside OUTSIDE noise units, from cumulative sums; only
    the lasting ones are looked at one by one (`describe`).
    """
    starts = np.asarray(starts, dtype=np.int64)
    if starts.shape[0] == 0:
        return []
    noises = (
        np.array(
            [
                _noise(values[b] - expected[b], values[b])
                for b in (slice(max(0, int(start) - BASELINE), int(start)) for start in starts)
            ]
        )
        if starts.shape[0] <= MANY_EVENTS
        else _mean_noise(values, expected, starts)
    )
    window = np.minimum(starts[:, None] + np.arange(LOOK), values.shape[0] - 1)
    seasonal_onset = seasonal[starts] if seasonal is not None else np.zeros(starts.shape, bool)
    looked = values[window] - _baseline(expected, starts, window, seasonal_onset)
    known = np.isfinite(looked)
    outside = known & (np.abs(np.where(known, looked, 0.0)) > OUTSIDE * noises[:, None])
    share = outside.sum(axis=1) / np.maximum(known.sum(axis=1), 1)
    jumps = _jumps(looked, window - starts[:, None] <= (np.asarray(peaks) - starts)[:, None])
    kinds = []
    for number, start in enumerate(starts.tolist()):
        if drifts is not None and drifts[number] == "trend":
            when = _moment(times_ms, start, reading_offset)
            kinds.append(_drift(values, start, float(noises[number]), when))
        elif drifts is not None and drifts[number] == "spread":
            when = _moment(times_ms, start, reading_offset)
            kinds.append(_widening(values, expected, start, when))
        elif share[number] >= LASTING:
            kinds.append(
                describe(
                    values,
                    expected,
                    start,
                    int(peaks[number]),
                    times_ms=times_ms,
                    seasonal=bool(seasonal[start]) if seasonal is not None else False,
                    noise=float(noises[number]),
                    reading_offset=reading_offset,
                )
            )
        else:
            kinds.append(
                _short_lived(
                    jumps[number],
                    float(noises[number]),
                    _moment(times_ms, start, reading_offset),
                )
            )
    return kinds


def _mean_noise(values: np.ndarray, expected: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per onset, 1.2533 × the mean |error| over the BASELINE readings before it (the
    noise's standard deviation, for normal noise); the values' spread where no errors."""
    magnitude = np.abs(values - expected)
    known = np.isfinite(magnitude)
    sums = np.concatenate(([0.0], np.cumsum(np.where(known, magnitude, 0.0))))
    counts = np.concatenate(([0], np.cumsum(known)))
    first = np.maximum(0, starts - BASELINE)
    count = counts[starts] - counts[first]
    mean = (sums[starts] - sums[first]) / np.maximum(count, 1)
    fallback = max(robust_spread(values[:: max(1, values.shape[0] // 10_000)]), 1e-300)
    noise = np.where((count >= 2) & (mean > 0), MEAN_TO_STD * mean, fallback)
    return np.asarray(noise, dtype=np.float64)


def _jumps(errors: np.ndarray, upto_peak: np.ndarray) -> list[float]:
    """What each short-lived event (a row of its look window's errors) is: its largest
    departure from the baseline from its onset to its peak (0 where none is known). The
    peak is the strongest evidence, which a look over several readings can find a few
    readings after the spike itself."""
    known = upto_peak & np.isfinite(errors)
    known[:, 0] |= ~known.any(axis=1) & np.isfinite(errors[:, 0])
    magnitude = np.where(known, np.abs(np.where(known, errors, 0.0)), -1.0)
    largest = np.take_along_axis(errors, np.argmax(magnitude, axis=1)[:, None], axis=1)[:, 0]
    jumps: list[float] = np.where(known.any(axis=1), largest, 0.0).tolist()
    return jumps


def _baseline(
    expected: np.ndarray, starts: np.ndarray, at: np.ndarray, seasonal: np.ndarray
) -> np.ndarray:
    """Per event (a row of `at`), what its readings `at` are judged against (module doc):
    the expected value at its onset `starts`, held, unless a season was forecast there
    (`seasonal`, per event: then the forecast at each reading), or the onset has none."""
    onset = expected[starts][:, None]
    held = np.isfinite(onset) & ~seasonal[:, None]
    return np.asarray(np.where(held, onset, expected[at]), dtype=np.float64)


def _drift(values: np.ndarray, start: int, noise: float, when: str) -> EventKind:
    """A slow change seen at `start`: the slope of the BASELINE readings up to it."""
    span = values[max(0, start + 1 - BASELINE) : start + 1]
    slope = _slope(span) if span.shape[0] >= 2 else 0.0
    over = slope * span.shape[0]
    return EventKind(
        "trend_change",
        over,
        over / noise,
        f"trend {slope:+.4g} per reading over the {span.shape[0]} readings to {when} "
        f"({over:+.4g}, {_sigmas(over / noise)})",
    )


def _widening(values: np.ndarray, expected: np.ndarray, start: int, when: str) -> EventKind:
    """A noise widening seen at `start`: the errors' spread over the last half of the
    BASELINE readings up to it against the first half's."""
    errors = values - expected
    half = BASELINE // 2
    before = _noise(errors[max(0, start + 1 - BASELINE) : start + 1 - half], values[:0])
    after = _noise(errors[max(0, start + 1 - half) : start + 1], values[:0])
    ratio = after / before
    return EventKind(
        "variance_change",
        after - before,
        ratio,
        f"spread ×{ratio:.3g} over the {BASELINE} readings to {when}",
    )


def _slope(values: np.ndarray) -> float:
    """Least-squares slope of evenly spaced values, per reading."""
    index = np.arange(values.shape[0], dtype=np.float64)
    index -= index.mean()
    return float(np.dot(index, values - values.mean()) / np.dot(index, index))


def _short_lived(jump: float, noise: float, when: str) -> EventKind:
    kind = "spike" if jump >= 0 else "dip"
    return EventKind(
        kind, jump, jump / noise, f"{kind} {jump:+.4g} ({_sigmas(jump / noise)}) at {when}"
    )


def describe(
    values: np.ndarray,
    expected: np.ndarray,
    start: int,
    peak: int,
    *,
    times_ms: np.ndarray | None = None,
    seasonal: bool = False,
    noise: float | None = None,
    reading_offset: int = 0,
) -> EventKind:
    """The kind of the event with onset `start` and strongest reading `peak` (module doc).

    `noise`: the noise before the onset, if known; else the robust spread of the errors.
    """
    n = values.shape[0]
    before = slice(max(0, start - BASELINE), start)
    look = slice(start, min(n, start + LOOK))
    if noise is None:
        noise = _noise(values[before] - expected[before], values[before])
    at = np.arange(n)[None, look]
    looked = values[look] - _baseline(expected, np.array([start]), at, np.array([seasonal]))[0]
    known = np.isfinite(looked)
    errors = looked[known] if known.any() else np.zeros(1)
    units = errors / noise
    when = _moment(times_ms, start, reading_offset)
    outside = np.abs(units) > OUTSIDE
    if outside.mean() < LASTING:
        upto_peak = np.arange(looked.shape[0]) <= peak - start
        return _short_lived(_jumps(looked[None, :], upto_peak[None, :])[0], float(noise), when)
    lasting = units[outside]
    same_side = max(np.mean(lasting > 0), np.mean(lasting < 0))
    if same_side >= ONE_SIDED:
        slope = _steady_growth(units)
        if slope is not None:
            per_reading = slope * noise
            over = per_reading * units.shape[0]
            return EventKind(
                "trend_change",
                over,
                over / noise,
                f"trend {per_reading:+.4g} per reading since {when} "
                f"({over:+.4g} over {units.shape[0]} readings, {_sigmas(over / noise)})",
            )
        shift = float(np.median(errors))
        kind = "level_shift_up" if shift >= 0 else "level_shift_down"
        return EventKind(
            kind,
            shift,
            shift / noise,
            f"level {shift:+.4g} ({_sigmas(shift / noise)}) since {when}",
        )
    spread_before = robust_spread(values[before])
    spread_after = robust_spread(values[look])
    ratio = spread_after / spread_before if spread_before > 0 else float("inf")
    off = float(np.median(np.abs(units)))
    if seasonal and ratio < WIDER:
        return EventKind(
            "seasonal_break",
            off * noise,
            off,
            f"seasonal pattern broken since {when}: readings {_sigmas(off, sign='')} off the "
            "usual shape",
        )
    return EventKind(
        "variance_change",
        spread_after - spread_before,
        ratio,
        f"spread ×{ratio:.3g} since {when}",
    )


def _sigmas(units: float, sign: str = "+") -> str:
    """Noise units as people read them: "+4.1 σ"; past MAX_SCORE (a reading off a
    near-zero noise, where the count is infinite) "over +1e+06 σ", never "inf"."""
    if abs(units) < MAX_SCORE:
        return f"{units:{sign}.1f} σ"
    return f"over {math.copysign(MAX_SCORE, units):{sign}.0e} σ"


def _noise(errors: np.ndarray, values: np.ndarray) -> float:
    """Robust spread of the errors before the onset; of the values if none; never 0."""
    known = errors[np.isfinite(errors)]
    for sample in (known, values):
        if sample.shape[0] >= 2:
            spread = robust_spread(sample)
            if spread > 0:
                return spread
    size = float(np.max(np.abs(values))) if values.shape[0] else 1.0
    return max(1e-9 * size, 1e-300)


def _steady_growth(units: np.ndarray) -> float | None:
    """The slope, in noise units per reading, if the errors grow along a line from small."""
    count = units.shape[0]
    if count < 8:
        return None
    # The tests below do not depend on the scale; on a flat series' tiny noise floor the
    # units are astronomically large and their squares would overflow: fit them scaled.
    size = float(np.max(np.abs(units)))
    if not (math.isfinite(size) and size > 0):
        return None
    scaled = units / size
    index = np.arange(count, dtype=np.float64)
    slope, intercept = np.polyfit(index, scaled, 1)
    line = np.sum((scaled - (slope * index + intercept)) ** 2)
    flat = np.sum((scaled - scaled.mean()) ** 2)
    quarter = max(1, count // 4)
    start, end = abs(scaled[:quarter].mean()), abs(scaled[-quarter:].mean())
    if flat > 0 and line < 0.5 * flat and end > 2 * start:
        return float(slope) * size
    return None


def _moment(times_ms: np.ndarray | None, index: int, reading_offset: int = 0) -> str:
    if times_ms is None:
        return f"reading {index + reading_offset}"
    seconds, millis = divmod(int(times_ms[index]), 1000)
    moment = datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=millis * 1000)
    return moment.isoformat(timespec="milliseconds" if millis else "seconds").replace("+00:00", "Z")
