"""The default detector (`method="auto"`): how unusual is each reading *for this series*.

A raw deviation is not an alarm: a metric whose readings wander by ±20 % is normal at
+15 %, a flat one is not at +1 %. So each reading gets a calibrated tail probability,
"how often has this series behaved like this", from the series' own past, and only the
far tail alarms. Every verdict uses only the readings before it (causal: the online mode
and the offline mode are the same thing here), so a scan, a job and the `detect` tool
agree on any reading, however far the series goes on.

For reading t:

1. Expected value. Two forecasters, both from the readings before t: the level (median
   of the last `level_window` readings, which follows a level shift within half that
   window: the adaptation after a shift) and, once the series shows a season, STL's
   forecast (`stl.online`: seasonal + trend, refitted every sixth of a season). The
   season is inferred from all readings so far every 256 readings, so it is learnt
   from the past too. Each reading uses the forecaster whose mean
   absolute error over the last `choice_window` readings is smaller.
2. Evidence at four horizons: the forecast error of the reading itself (a spike or a
   dip), the mean error of the last 4 and of the last 32 readings (`horizons`: a shift or
   a broken season shows there while each reading alone is still unremarkable), and the
   mean *absolute* error of the last 64 (`spread_horizons`: the readings spread wider, a
   variance change or a burst of spikes, while their mean stays put).
3. A tail probability for each horizon against the same horizon's values over the last
   `history` readings (refitted every `BLOCK` readings): the empirical share of past
   magnitudes at least as large, and beyond their `tail_quantile` quantile an exponential
   tail fitted to the excesses (peaks over threshold: a generalised Pareto tail of shape
   0, which over-states rather than under-states the probability of a light-tailed
   series' extremes). The tail is never narrower than the data's own resolution (a
   series in whole steps cannot be more surprising than one step apart), so a quantised
   series does not alarm on its next step.
4. `probability` = 4 × the smallest of the four (Bonferroni: four looks at the same
   reading). A reading alarms when probability ≤ `sensitivity` (default 3e-4): on data
   that behaves as its past did, at most about `sensitivity` × readings alarm, and fewer
   where the noise has lighter tails than exponential (measured: 1 alarm in 50,000
   readings of white noise, of a random walk, of a daily cycle with noise).
5. Quiet: an alarm opens an event; for the next `quiet` readings the detector does not
   alarm again (the event goes on while readings stay unusual), so one incident is one
   alarm, not fifty.

Output per reading: expected (the chosen forecast), lower/upper (the band a reading alone
stays inside without alarming), score = log(probability) / log(sensitivity) (≥ 1 exactly
at alarms; held just under 1 inside a quiet time), probability, and the alarm flag.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from common.detection import stl
from common.detection.grid import regular_grid
from common.detection.period import infer_period
from common.detection.result import DetectionError, DetectionResult
from common.detection.rolling import trailing_medians

# Tail fits are refitted every BLOCK readings: one fit per reading would be 16× the work
# for a history of thousands that moves by a few readings.
BLOCK = 16
# A tail needs this many past values before its probabilities mean anything.
MIN_TAIL_HISTORY = 100
# Seasons are looked for every SEASON_CHECK readings, until LAST_SEASON_CHECK: by then a
# daily season of 5-minute readings has been seen 50 times over.
SEASON_CHECK = 256
LAST_SEASON_CHECK = 16_384
# The inferred length of one season wobbles by a few readings from check to check.
SEASON_TOLERANCE = 0.05
# Below the score of an alarm, for readings inside a quiet time.
JUST_UNDER_ONE = float(np.nextafter(1.0, 0.0))
TINIEST = 1e-300


@dataclass(frozen=True)
class AdaptiveSettings:
    """The default detector's parameters; one set for every series (module doc).

    Measured on the labelled corpus (README, "How good is detection"), not fitted per
    series: each is a property of what "unusual" means, not of a file.
    """

    # Alarm when behaviour this unusual has at most this probability: the share of
    # readings that alarm on data that behaves as its past did (an upper bound).
    sensitivity: float = 3e-4
    # Readings after an alarm that cannot alarm again: one incident, one alarm.
    quiet: int = 50
    # The level forecaster's median window: a level shift is followed within half of it.
    level_window: int = 120
    # Readings of recent error over which the two forecasters are compared.
    choice_window: int = 300
    # Means of the signed error over these many readings (1: the reading itself).
    horizons: tuple[int, ...] = (1, 4, 32)
    # Means of the absolute error over these many readings: the spread widening.
    spread_horizons: tuple[int, ...] = (64,)
    # Past values each tail is fitted on: a week of 5-minute readings.
    history: int = 2000
    # Above this quantile of past magnitudes, the exponential tail; below, the empirical.
    tail_quantile: float = 0.9

    def check(self) -> None:
        if not (0 < self.sensitivity < 1 - self.tail_quantile):
            raise DetectionError(
                f"sensitivity must be a probability above 0 and below {1 - self.tail_quantile:g} "
                f"(the share of readings alarming on normal data), got {self.sensitivity}"
            )
        if self.quiet < 0:
            raise DetectionError(f"quiet must be 0 or more readings, got {self.quiet}")

    def as_params(self) -> dict[str, object]:
        return {
            "sensitivity": self.sensitivity,
            "quiet": self.quiet,
            "level_window": self.level_window,
            "choice_window": self.choice_window,
            "horizons": list(self.horizons),
            "spread_horizons": list(self.spread_horizons),
            "history": self.history,
            "tail_quantile": self.tail_quantile,
        }


@dataclass(frozen=True)
class AdaptiveVerdicts:
    """The verdicts as a result without params or events yet (NaN expected/band and
    probability 1 where not yet judged), and what `detect` needs to form the events."""

    result: DetectionResult
    unusual: np.ndarray  # probability ≤ sensitivity, alarmed or inside a quiet time
    seasonal: np.ndarray  # True where the seasonal forecaster was the one used
    periods: list[tuple[int, int]]  # (first reading, period) of each season in use


def minimum_points(level_window: int | None = None) -> int:
    """Readings up to the first one judged: a level window, then a tail's history."""
    window = AdaptiveSettings().level_window if level_window is None else level_window
    return window + MIN_TAIL_HISTORY + 1


def judge(
    values: np.ndarray,
    times: np.ndarray | None,
    settings: AdaptiveSettings,
    *,
    period: int | None = None,
) -> AdaptiveVerdicts:
    """Verdicts for every reading of a finite series in time order (module doc).

    `period`: the season in readings (grid steps with times), instead of inferring it.
    """
    settings.check()
    level = _level_forecast(values, settings.level_window)
    seasonal, periods = _seasonal_forecast(values, times, period)
    use_seasonal = _seasonal_is_better(values, level, seasonal, settings.choice_window)
    floors = _resolutions(values, settings.history)
    # Each forecaster's errors are judged against its own past errors: right after the
    # seasonal one takes over, the level's larger errors must not widen its tails.
    level_chance, level_width = _chance(values - level, floors, settings)
    seasonal_chance, seasonal_width = _chance(values - seasonal, floors, settings)
    expected = np.where(use_seasonal, seasonal, level)
    probability = np.where(use_seasonal, seasonal_chance, level_chance)
    half_width = np.where(use_seasonal, seasonal_width, level_width)

    # Judged: a forecast exists and the reading's own tail has its history.
    judged = np.isfinite(expected) & np.isfinite(half_width)
    probability = np.where(judged, probability, 1.0)
    unusual = probability <= settings.sensitivity
    is_anomaly = _alarms(unusual, settings.quiet)
    score = np.log(probability) / math.log(settings.sensitivity) + 0.0  # no -0.0
    score = np.where(unusual & ~is_anomaly, np.minimum(score, JUST_UNDER_ONE), score)
    expected = np.where(judged, expected, np.nan)
    return AdaptiveVerdicts(
        result=DetectionResult.banded(
            "auto",
            {},
            expected=expected,
            half_width=half_width,
            score=score,
            probability=probability,
            is_anomaly=is_anomaly,
            events=[],
        ),
        unusual=unusual,
        seasonal=use_seasonal & judged,
        periods=periods,
    )


def _chance(
    errors: np.ndarray, floors: np.ndarray, settings: AdaptiveSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Probability per reading (Bonferroni over the looks) and the point band's half-width."""
    probability = np.ones(errors.shape[0])
    half_width = np.full(errors.shape[0], np.nan)
    looks = [(h, False) for h in settings.horizons]
    looks += [(h, True) for h in settings.spread_horizons]
    for horizon, spread in looks:
        # Signed errors average out on noise and add up on a shift; their magnitudes add
        # up when the readings spread wider (a variance change, a burst of spikes).
        base = np.abs(errors) if spread else errors
        evidence = base if horizon == 1 else _trailing_mean(base, horizon)
        # A mean of `horizon` readings moves in steps `horizon` times finer.
        fits = TailFits.of(evidence, settings.history, settings.tail_quantile, floors / horizon)
        probability = np.minimum(probability, fits.probability(evidence))
        if horizon == 1 and not spread:
            half_width = fits.magnitude_at(settings.sensitivity / len(looks))
    return np.clip(probability * len(looks), TINIEST, 1.0), half_width


def _level_forecast(values: np.ndarray, window: int) -> np.ndarray:
    """Median of the `window` readings before each reading; NaN before a full window."""
    n = values.shape[0]
    level = np.full(n, np.nan)
    if n > window:
        level[window:] = trailing_medians(values, window)[:-1]
    return level


def _seasonal_forecast(
    values: np.ndarray, times: np.ndarray | None, period: int | None
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """STL's forecast per reading, with the season learnt from the readings before it.

    The season is inferred from the readings so far every SEASON_CHECK readings (up to
    LAST_SEASON_CHECK); from a check on, STL forecasts at the season found there (NaN
    where none is), refitting from scratch only when the season found changes. Returns
    the forecast and the (first reading, period) of each stretch.
    """
    n = values.shape[0]
    forecast = np.full(n, np.nan)
    found: list[tuple[int, int | None]] = [] if period is None else [(0, period)]
    checks = range(SEASON_CHECK, min(n, LAST_SEASON_CHECK + 1), SEASON_CHECK)
    for check in checks if period is None else ():
        season = _season(values[:check], None if times is None else times[:check])
        if not found or not _same_season(found[-1][1], season):
            found.append((check, season))
    periods = [(first, season) for first, season in found if season is not None]
    for number, (first, season) in enumerate(found):
        stop = found[number + 1][0] if number + 1 < len(found) else n
        if season is None or stop <= 2 * season:
            continue
        segment, _ = stl.online(
            values[:stop],
            None if times is None else times[:stop],
            stl.StlSettings(period=season, robust=False),
            history=stl.HISTORY_PERIODS * season,
            block=max(1, season // 6),
            first=first,
        )
        forecast[first:stop] = segment[first:stop]
    return forecast, periods


def _same_season(known: int | None, found: int | None) -> bool:
    """A season found again within SEASON_TOLERANCE is the same one (a refit costs)."""
    if known is None or found is None:
        return known == found
    return abs(found - known) <= SEASON_TOLERANCE * known


def _season(values: np.ndarray, times: np.ndarray | None) -> int | None:
    """The period in grid steps, if the series shows one four times over."""
    limit = values.shape[0] // stl.HISTORY_PERIODS
    if times is None:
        return infer_period(values, max_period=limit)
    try:
        grid = regular_grid(values, times)
    except DetectionError:
        return None
    return infer_period(grid.values, max_period=limit)


def _seasonal_is_better(
    values: np.ndarray, level: np.ndarray, seasonal: np.ndarray, window: int
) -> np.ndarray:
    """Per reading: has the seasonal forecast erred less than the level over `window`?

    Only errors of readings before it count; a forecaster without a full window of
    errors does not win.
    """
    n = values.shape[0]
    mean_errors = []
    for forecast in (level, seasonal):
        error = np.abs(values - forecast)
        known = np.isfinite(error)
        sums = np.concatenate(([0.0], np.cumsum(np.where(known, error, 0.0))))
        counts = np.concatenate(([0], np.cumsum(known)))
        mean = np.full(n, np.inf)
        ends = np.arange(window, n)
        full = counts[ends] - counts[ends - window] == window
        mean[window:] = np.where(full, (sums[ends] - sums[ends - window]) / window, np.inf)
        mean_errors.append(mean)
    return np.asarray((mean_errors[1] < mean_errors[0]) & np.isfinite(seasonal))


def _trailing_mean(values: np.ndarray, size: int) -> np.ndarray:
    """Mean of each value and the size - 1 before it; NaN if any of them is NaN."""
    n = values.shape[0]
    out = np.full(n, np.nan)
    if n < size:
        return out
    known = np.isfinite(values)
    sums = np.concatenate(([0.0], np.cumsum(np.where(known, values, 0.0))))
    counts = np.concatenate(([0], np.cumsum(known)))
    full = counts[size:] - counts[:-size] == size
    out[size - 1 :] = np.where(full, (sums[size:] - sums[:-size]) / size, np.nan)
    return out


@dataclass(frozen=True)
class TailFits:
    """Per reading, the tail fitted to the magnitudes before its block (NaN: no fit yet).

    `threshold`: the `quantile` quantile of past magnitudes; `scale`: the exponential
    tail's mean excess above it; `blocks` keeps each block's sorted past magnitudes for
    the empirical part.
    """

    threshold: np.ndarray
    scale: np.ndarray
    quantile: float
    blocks: list[tuple[int, int, np.ndarray]]  # (start, stop, sorted past magnitudes)

    @staticmethod
    def of(evidence: np.ndarray, history: int, quantile: float, floors: np.ndarray) -> TailFits:
        """Fits per block of the magnitudes of `evidence`; `floors`: least scale per block."""
        n = evidence.shape[0]
        magnitude = np.abs(evidence)
        threshold = np.full(n, np.nan)
        scale = np.full(n, np.nan)
        blocks = []
        for start in range(0, n, BLOCK):
            stop = min(n, start + BLOCK)
            past = magnitude[max(0, start - history) : start]
            past = past[np.isfinite(past)]
            if past.shape[0] < MIN_TAIL_HISTORY:
                continue
            at = float(np.quantile(past, quantile))
            excess = past[past > at] - at
            mean_excess = float(excess.mean()) if excess.shape[0] else 0.0
            threshold[start:stop] = at
            scale[start:stop] = max(mean_excess, floors[start // BLOCK])
            blocks.append((start, stop, np.sort(past)))
        return TailFits(threshold=threshold, scale=scale, quantile=quantile, blocks=blocks)

    def probability(self, evidence: np.ndarray) -> np.ndarray:
        """P(a past magnitude ≥ this one), with the exponential tail above the threshold."""
        magnitude = np.abs(evidence)
        probability = np.ones(magnitude.shape[0])
        tail_share = 1.0 - self.quantile
        for start, stop, past in self.blocks:
            current = magnitude[start:stop]
            at, scale = self.threshold[start], self.scale[start]
            share = 1.0 - np.searchsorted(past, current, side="left") / past.shape[0]
            with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
                if scale > 0:
                    tail = tail_share * np.exp(-(current - at) / scale)
                else:  # every past magnitude equal: anything larger is unprecedented
                    tail = np.where(current > at, 0.0, tail_share)
            chance = np.where(current > at, tail, np.maximum(share, tail_share))
            probability[start:stop] = np.where(np.isfinite(current), chance, 1.0)
        return probability

    def magnitude_at(self, probability: float) -> np.ndarray:
        """The magnitude whose tail probability is `probability` (below the tail share)."""
        return np.asarray(
            self.threshold + self.scale * math.log((1.0 - self.quantile) / probability)
        )


def _resolutions(values: np.ndarray, history: int) -> np.ndarray:
    """Per block, the smallest step the data can move by: a floor for a tail's scale.

    The smallest positive gap between distinct values of the block's history (a series
    in whole units moves by at least 1), never below a millionth of the values' size
    (float noise on a flat line is not news).
    """
    floors = np.zeros((values.shape[0] + BLOCK - 1) // BLOCK)
    for number, start in enumerate(range(0, values.shape[0], BLOCK)):
        past = values[max(0, start - history) : start]
        if past.shape[0] == 0:
            continue
        gaps = np.diff(np.unique(past))
        step = float(gaps.min()) if gaps.shape[0] else 0.0
        floors[number] = max(step, 1e-6 * float(np.max(np.abs(past))))
    return floors


def _alarms(unusual: np.ndarray, quiet: int) -> np.ndarray:
    """Alarm at an unusual reading unless one alarmed within the `quiet` readings before."""
    alarms = np.zeros(unusual.shape[0], dtype=bool)
    last = -quiet - 1
    # One iteration per unusual reading: they are few.
    for index in np.flatnonzero(unusual).tolist():
        if index - last > quiet:
            alarms[index] = True
            last = index
    return alarms
