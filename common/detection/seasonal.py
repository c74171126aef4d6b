"""The default detector's seasonal forecaster, kept in bounded memory between readings.

Readings are put on time grids whose step is a power of two times the series' cadence
(the median spacing of its first GRID_START readings); the grids share an origin, so a
bin of one grid is exactly two, four... bins of a finer one. Readings that fall in the
same bin are averaged; empty bins (gaps) are interpolated when a grid is read.

- `recent`: the last RECENT_BINS bins, one cadence each, or, for a season longer than
  MAX_SEASON_BINS readings, the power of two that brings it under (a day of 1-minute
  readings, 1,440, is fitted on 8-minute bins: 180 a season). STL is fitted on its last
  `HISTORY_PERIODS` seasons. Once a reading has a seasonal forecast it enters the grid
  clipped to OUTLIER_SCALES scales of that forecast: a spike must not come back a
  season later as a forecast error of the opposite sign.
- `overview`: every reading since the start, in at most OVERVIEW_BINS bins; when full,
  each pair of bins becomes one. The season is inferred from it every SEASON_CHECK
  readings (every EARLY_CHECK from MANY_READINGS to EARLY_CHECKS_UNTIL) up to
  LAST_SEASON_CHECK (a season must show SEASONS_SEEN times over once there are
  MANY_READINGS, four times before: a day of 5-minute readings is learnt from two days),
  then it is dropped. The day is also tested on its own where the search finds nothing,
  and once the readings cover DAYS_SEEN days (at that reading if it falls between the
  search's checks: a day of hourly readings at reading 48, of 1-minute ones at 2,880); a
  day found between the checks is `provisional` until a check finds it again. A season
  found on bins several readings wide is located to one reading on
  `recent` when two seasons and a tenth fit there.

Both grids hold float32 offsets from an anchor near the series' level (re-anchored at
each refit and check), so a series at 10^6 with noise of 10^-2 keeps its noise.

STL is refitted every sixth of a season on the grid; between refits each reading is
forecast as the seasonal component at its phase in the last season fitted plus the
trend's last value (`stl.online`, on a bounded grid). The clipping scale is 1.4826 × the
median absolute forecast error (from the detector's tail of them), or, before a season
of forecasts exists, the fit's own residual scale widened as `stl.online` does.

Everything here is a pure function of the state and the readings given; the state is
mutated in place by the detector, which copies it first.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from common.detection import stl
from common.detection.period import day_season, infer_period, refine_period
from common.detection.spread import MAD_TO_STD

# Readings before the grids exist: the cadence is their median spacing. Two days of hourly
# readings, so that a day of them can be tested once two have been seen (`_day`).
GRID_START = 48
MAX_SEASON_BINS = 288
RECENT_BINS = stl.HISTORY_PERIODS * MAX_SEASON_BINS
OVERVIEW_BINS = 512
SEASON_CHECK = 256
LAST_SEASON_CHECK = 16_384
# Early on a check is cheap (a few hundred bins) and a season found a check sooner is
# judged against sooner: a daily season of 5-minute readings is found at 576 readings,
# not at the next multiple of SEASON_CHECK.
EARLY_CHECK = 64
EARLY_CHECKS_UNTIL = 2_048
# Times a season must show in the readings so far before it is used: twice once there
# are MANY_READINGS (a day of 5-minute readings seen twice), else HISTORY_PERIODS times
# (a fit on two or three short seasons forecasts poorly, and its errors would widen the
# seasonal tails for a week).
SEASONS_SEEN = 2
MANY_READINGS = 512
# The inferred length of one season wobbles by a few readings from check to check.
SEASON_TOLERANCE = 0.05
# A check on bins this many readings wide cannot see a season shorter than this many bins.
VISIBLE_BINS = 8
# The day is a season known in advance from the readings' times: once the readings cover
# two days it is tested on its own (`day_season`), at every cadence, rather than waiting for
# the search to see it HISTORY_PERIODS times (a day of hourly readings: 2 days, not 10.7).
DAY_MS = 86_400_000
DAYS_SEEN = 2
# A grid with fewer readings than this share of its bins is too sparse to look for a season
# (interpolating would invent most of it), as `grid.regular_grid` refuses.
MIN_FILLED = 0.1
NONE = -1


@dataclass
class Bins:
    """A time grid's bins up to the newest: closed bins as float32 offsets from `anchor`,
    the newest (`last`, still filling) as a sum and count."""

    factor: int = 0  # cadences per bin; 0: the grid does not exist
    last: int = NONE  # index of the newest bin from the origin
    anchor: float = 0.0
    total: float = 0.0
    count: int = 0
    closed: array[float] = field(default_factory=lambda: array("f"))

    def copy(self) -> Bins:
        return Bins(self.factor, self.last, self.anchor, self.total, self.count, self.closed[:])

    def series(self) -> np.ndarray:
        """Values of the bins (closed, then the newest), float64; NaN for empty bins."""
        newest = self.total / self.count if self.count else np.nan
        closed = np.frombuffer(self.closed, dtype=np.float32).astype(np.float64)
        return np.append(closed + self.anchor, newest)

    def reanchor(self, anchor: float) -> None:
        if math.isfinite(anchor):
            closed = np.frombuffer(self.closed, dtype=np.float32).astype(np.float64)
            self.closed = _float32(closed + (self.anchor - anchor))
            self.anchor = anchor

    def add(self, positions: list[float], values: list[float], keep: int, *, merge: bool) -> None:
        """Readings at grid positions (in cadences from the origin) into their bins.

        `keep`: most bins kept; beyond it the oldest are dropped, or with `merge`, pairs
        of bins become one and the factor doubles (the grid reaches back to the origin).
        """
        closed, anchor = self.closed, self.anchor
        for position, value in zip(positions, values, strict=True):
            number = math.floor(position / self.factor)
            if number == self.last:
                self.total += value
                self.count += 1
                continue
            if self.last != NONE:
                closed.append((self.total / self.count if self.count else math.nan) - anchor)
                if merge and number >= keep:
                    number = self._halve_until(position, keep)
                    closed = self.closed
                    if number == self.last:  # the reading shares the newest merged bin
                        self.total += value
                        self.count += 1
                        continue
                closed.extend(array("f", [math.nan]) * min(number - self.last - 1, keep))
            self.last, self.total, self.count = number, value, 1
        if not merge and len(closed) > keep - 1:
            del closed[: len(closed) - (keep - 1)]

    def _halve_until(self, position: float, keep: int) -> int:
        """Pairs of bins into one (the mean of those with readings) until the bin of
        `position` is within `keep`; returns that bin. The closed bins reach the newest
        (`last`); if the reading falls in the newest merged bin, that bin is reopened with
        the merged value counted as one reading."""
        end = self.last
        number = math.floor(position / self.factor)
        closed = np.frombuffer(self.closed, dtype=np.float32).astype(np.float64)
        while number >= keep:
            if closed.shape[0] % 2:
                closed = np.append(closed, np.nan)
            pairs = closed.reshape(-1, 2)
            with np.errstate(invalid="ignore"):
                closed = np.where(
                    np.isnan(pairs[:, 0]),
                    pairs[:, 1],
                    np.where(np.isnan(pairs[:, 1]), pairs[:, 0], (pairs[:, 0] + pairs[:, 1]) / 2),
                )
            self.factor *= 2
            end //= 2
            number = math.floor(position / self.factor)
        self.closed = _float32(closed)
        self.last = end
        if number == end:
            newest = self.closed.pop() + self.anchor
            self.total, self.count = (newest, 1) if math.isfinite(newest) else (0.0, 0)
        return number


def _float32(values: np.ndarray) -> array[float]:
    found = array("f")
    found.frombytes(values.astype(np.float32).tobytes())
    return found


@dataclass
class Season:
    """What the seasonal forecaster carries between readings (module doc)."""

    given: int = 0  # the season in readings the caller gave; 0: inferred
    origin: float = math.nan  # ms; bin j of factor f spans origin + [j, j + 1) * f * cadence
    cadence: float = math.nan  # ms
    start_times: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    start_values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    recent: Bins = field(default_factory=Bins)
    overview: Bins = field(default_factory=Bins)
    period: int = 0  # the season in use, in cadences; 0: none
    since: int = 0  # the reading from which it is in use
    bins: int = 0  # the season in recent bins
    next_refit: int = NONE
    next_check: int = NONE
    errors_seen: int = 0  # seasonal forecast errors since the season was found
    # The fit in use: the seasonal component over the last season and a bin (P + 1 values,
    # ending at recent bin `fit_last`), the trend's last value, and the clipping scale.
    fit_last: int = NONE
    trend: float = math.nan
    clip_scale: float = math.nan
    shape: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))

    @classmethod
    def new(cls, period: int | None) -> Season:
        if period is None:
            return cls(next_check=GRID_START)
        return cls(
            given=period,
            period=period,
            bins=_bins_for(period, _factor_for(period)),
            next_refit=2 * period,
        )

    def copy(self) -> Season:
        copied = Season(**{name: getattr(self, name) for name in self.__dataclass_fields__})
        copied.recent, copied.overview = self.recent.copy(), self.overview.copy()
        return copied

    @property
    def block(self) -> int:
        """Readings between refits: a sixth of a season, four hours of a day."""
        return max(1, self.period // 6)

    def forecaster(self) -> Callable[[int], float] | None:
        """Seasonal + trend at a time (ms) from the fit in use; None without one.

        The time's position on recent's grid (bin centres at whole numbers) is moved back
        by whole seasons into the last season fitted and read between its two bins.
        """
        if self.shape.shape[0] == 0:
            return None
        shape: list[float] = self.shape.astype(np.float64).tolist()
        season, last, trend = len(shape) - 1, self.fit_last, self.trend
        origin, step = self.origin, self.cadence * self.recent.factor

        def forecast(time: int) -> float:
            position = (time - origin) / step - 0.5
            phase = position - season * math.ceil((position - last) / season) - (last - season)
            below = min(int(phase), season - 1)
            return shape[below] + (shape[below + 1] - shape[below]) * (phase - below) + trend

        return forecast

    def provisional(self) -> bool:
        """Whether the season in use was found by the day's test between the search's checks
        and not yet found again at one (which makes it the season from that check on: `since`).
        A provisional day forecasts for the young look only: its fit is on two or three days
        and lags a shift of the level by HISTORY_PERIODS seasons (a day of hourly readings
        found at reading 48 erred by a shift for four days), so its errors teach no tail and
        the choice does not weigh it (`adaptive`, step 10)."""
        return self.period > 0 and not self.given and not _searched(self.since)

    def first_time(self) -> float:
        """The first reading's time (ms) as the grids keep it; NaN before any was observed."""
        if math.isfinite(self.origin):
            return self.origin + self.cadence / 2
        return float(self.start_times[0]) if self.start_times.shape[0] else math.nan

    def observe(self, times: list[int], raw: list[float], fitted: list[float]) -> None:
        """Readings judged, in time order: raw values into the overview, fit values (clipped)
        into recent. The first GRID_START readings wait for the grids, which start from them."""
        first = 0
        while self.recent.factor == 0 and first < len(times):
            wanted = max(1, GRID_START - self.start_times.shape[0])
            taken = slice(first, first + wanted)
            self.start_times = np.append(self.start_times, times[taken])[-GRID_START:]
            self.start_values = np.append(self.start_values, raw[taken])[-GRID_START:]
            first += wanted
            if self.start_times.shape[0] == GRID_START:
                self._start_grids()
        if first >= len(times):
            return
        positions = (
            (np.asarray(times[first:], dtype=np.float64) - self.origin) / self.cadence
        ).tolist()
        self.recent.add(positions, fitted[first:], RECENT_BINS, merge=False)
        if self.overview.factor:
            self.overview.add(positions, raw[first:], OVERVIEW_BINS, merge=True)

    def _start_grids(self) -> None:
        spacing = np.diff(np.unique(self.start_times))
        if spacing.shape[0] == 0:
            return  # all at one time so far: the cadence is not known yet
        self.cadence = float(np.median(spacing))
        self.origin = float(self.start_times[0]) - self.cadence / 2
        anchor = float(self.start_values[-1])
        self.recent = Bins(factor=_factor_for(self.period), anchor=anchor)
        if not self.given:
            self.overview = Bins(factor=1, anchor=anchor)
        times, values = self.start_times.tolist(), self.start_values.tolist()
        self.start_times, self.start_values = self.start_times[:0], self.start_values[:0]
        self.observe(times, values, values)

    def check(self, reading: int, *, newest_ms: int) -> None:
        """Look for the season in the readings so far (before `reading`); switch if it changed.

        On the search's schedule (`_next_search`) every season is looked for; between, only
        the day, at the reading that completes DAYS_SEEN days (`_day_reading`)."""
        searched = _searched(reading)
        self.next_check = _next_search(reading) if reading < LAST_SEASON_CHECK else NONE
        day_at = self._day_reading()
        if not self.period and reading < day_at <= LAST_SEASON_CHECK:
            self.next_check = min(self.next_check, day_at)
        if self.overview.factor and (searched or not self.period):
            found = self._infer(searched=searched, newest_ms=newest_ms)
            factor = self.overview.factor
            self.overview.reanchor(float(np.nanmean(self.overview.series())))
            keep = found is None and 0 < self.period < VISIBLE_BINS * factor
            if not keep and not _same_season(self.period, found):
                self._use(found, reading, newest_ms)
            else:
                if searched and found is not None and self.provisional():
                    # Confirmed: the season from here on, its errors counted from here
                    # (they teach its tails from here).
                    self.since, self.errors_seen = reading, 0
                if found is not None and found != self.period:
                    self._relocate(found, reading)
        if self.next_check == NONE:
            self.overview = Bins()
            if not self.period:
                self.recent = Bins()

    def _day_reading(self) -> int:
        """The reading from which the readings so far cover DAYS_SEEN days at the cadence
        (a day of hourly readings: 48); past LAST_SEASON_CHECK without real times."""
        if not math.isfinite(self.cadence) or self.cadence <= 0:
            return LAST_SEASON_CHECK + 1
        return math.ceil(DAYS_SEEN * DAY_MS / self.cadence)

    def _infer(self, *, searched: bool, newest_ms: int) -> int | None:
        values = _filled(self.overview.series())
        if values is None:
            return None
        found = None
        if searched:
            many = values.shape[0] * self.overview.factor >= MANY_READINGS
            seen = SEASONS_SEEN if many else stl.HISTORY_PERIODS
            found = infer_period(values, max_period=values.shape[0] // seen)
        if found is None:
            return self._day(values, newest_ms)
        period = found * self.overview.factor
        step = self.recent.factor
        if self.overview.factor > step:  # locate it to one bin of recent
            recent = _filled(self.recent.series())
            if recent is not None:
                period = refine_period(recent, round(period / step)) * step
        return period

    def _day(self, values: np.ndarray, newest_ms: int) -> int | None:
        """The day in cadences if the readings so far (the overview's `values`) cover
        DAYS_SEEN days and show it (`day_season`); None otherwise."""
        if newest_ms - self.first_time() + self.cadence < DAYS_SEEN * DAY_MS:
            return None
        day = round(DAY_MS / self.cadence)
        lag = day / self.overview.factor
        if lag != int(lag) or day < 2 * VISIBLE_BINS:
            return None
        return day if day_season(values, int(lag)) else None

    def _use(self, period: int | None, reading: int, newest_ms: int) -> None:
        self.period = period or 0
        self.since = reading
        self.errors_seen = 0
        self.shape = self.shape[:0]
        self.next_refit = reading if period else NONE
        if period:
            factor = _factor_for(period)
            if factor != self.recent.factor:
                self._regrid(factor, newest_ms)
            self.bins = _bins_for(period, factor)

    def _relocate(self, period: int, reading: int) -> None:
        """The same season located again on more readings: a season found on two is off by
        a reading or two, and a forecast a reading out of phase errs at every steep edge.
        Moved (refitted now) if it stays on the same grid; its forecast errors so far stand."""
        if _factor_for(period) != self.recent.factor:
            return
        bins = _bins_for(period, self.recent.factor)
        self.period = period
        if bins != self.bins:
            self.bins = bins
            self.next_refit = reading

    def _regrid(self, factor: int, newest_ms: int) -> None:
        """Recent rebuilt at another factor: from recent where it reaches, else the overview."""
        last = math.floor((newest_ms - self.origin) / (self.cadence * factor))
        targets = np.arange(last - RECENT_BINS + 1, last + 1)
        values = np.full(targets.shape[0], np.nan)
        for source in (self.overview, self.recent):  # recent last: it wins where it has data
            if source.factor == 0:
                continue
            series = source.series()
            first = source.last - series.shape[0] + 1
            found = _resampled(series, first, source.factor, targets, factor)
            values = np.where(np.isfinite(found), found, values)
        anchor = self.recent.anchor
        newest = float(values[-1])
        self.recent = Bins(
            factor=factor,
            last=last,
            anchor=anchor,
            total=newest if math.isfinite(newest) else 0.0,
            count=1 if math.isfinite(newest) else 0,
            closed=_float32(values[:-1] - anchor),
        )

    def refit(self, reading: int, error_scale: float | None) -> None:
        """STL on the last seasons of recent; the fit forecasts until the next refit.

        `error_scale`: the typical absolute forecast error (the clipping scale) once a
        season of forecasts has been judged; before that the fit's own residuals say.
        """
        self.next_refit = reading + self.block
        self.shape = self.shape[:0]
        if self.recent.factor == 0 or self.bins < 2:
            return
        values = self.recent.series()[-stl.HISTORY_PERIODS * self.bins :]
        known = np.flatnonzero(np.isfinite(values))
        if known.shape[0] < 2:
            return
        values = values[known[0] :]
        if values.shape[0] < 2 * self.bins:
            return  # gaps and a short history: fewer than two seasons to fit
        filled = _filled(values, min_filled=0.0)
        if filled is None:
            return
        values = filled
        seasonal, trend = stl.decompose(values, stl.StlSettings(period=self.bins, robust=False))
        self.fit_last = self.recent.last
        self.trend = float(trend[-1])
        self.shape = seasonal[-(self.bins + 1) :].astype(np.float32)
        if error_scale is not None and self.errors_seen >= self.period:
            self.clip_scale = error_scale
        else:
            cycles = min(values.shape[0] / self.bins, stl.SEASONAL_WINDOW)
            widen = math.sqrt((cycles + 1) / (cycles - 1))
            residuals = values - seasonal - trend
            spread = MAD_TO_STD * float(np.median(np.abs(residuals - np.median(residuals))))
            # A bin of k readings averages their noise: its residuals are sqrt(k) smaller.
            self.clip_scale = widen * spread * math.sqrt(self.recent.factor)
        self.recent.reanchor(self.trend)


def _searched(reading: int) -> bool:
    """Whether every season is looked for at this reading (`_next_search`)."""
    return reading >= SEASON_CHECK and _next_search(reading - 1) == reading


def _next_search(reading: int) -> int:
    """The next reading after `reading` at which every season is looked for: SEASON_CHECK,
    then every EARLY_CHECK from MANY_READINGS to EARLY_CHECKS_UNTIL, then every SEASON_CHECK."""
    if reading < MANY_READINGS:
        return (reading // SEASON_CHECK + 1) * SEASON_CHECK
    step = EARLY_CHECK if reading < EARLY_CHECKS_UNTIL else SEASON_CHECK
    return (reading // step + 1) * step


def _factor_for(period: int) -> int:
    """Cadences per recent bin: 1, or the power of two that brings the season under the cap."""
    if period <= MAX_SEASON_BINS:
        return 1
    return 1 << math.ceil(math.log2(period / MAX_SEASON_BINS))


def _bins_for(period: int, factor: int) -> int:
    return max(2, round(period / factor))


def _same_season(known: int, found: int | None) -> bool:
    """A season found again within SEASON_TOLERANCE is the same one (a refit costs)."""
    if not known or found is None:
        return not known and found is None
    return abs(found - known) <= SEASON_TOLERANCE * known


def _filled(values: np.ndarray, min_filled: float = MIN_FILLED) -> np.ndarray | None:
    """Bins with empty ones interpolated (the leading and trailing ones held); None if too
    few have readings."""
    known = np.isfinite(values)
    count = int(np.count_nonzero(known))
    if count < 2 or count < min_filled * values.shape[0]:
        return None
    if count == values.shape[0]:
        return values
    index = np.arange(values.shape[0], dtype=np.float64)
    return np.asarray(np.interp(index, index[known], values[known]))


def _resampled(
    series: np.ndarray, first: int, factor: int, targets: np.ndarray, target_factor: int
) -> np.ndarray:
    """Bins `first`.. of a grid of `factor` read as bins `targets` of a grid of
    `target_factor`: the mean of the finer bins inside a coarser one, or the finer bin
    interpolated between coarser ones (NaN where the source has nothing)."""
    if factor <= target_factor:
        ratio = target_factor // factor
        source = targets[:, None] * ratio + np.arange(ratio) - first
        inside = (source >= 0) & (source < series.shape[0])
        taken = np.where(inside, series[np.clip(source, 0, series.shape[0] - 1)], np.nan)
        known = np.isfinite(taken)
        counts = known.sum(axis=1)
        sums = np.where(known, taken, 0.0).sum(axis=1)
        return np.asarray(np.where(counts > 0, sums / np.maximum(counts, 1), np.nan))
    known = np.isfinite(series)
    if np.count_nonzero(known) < 2:
        return np.full(targets.shape[0], np.nan)
    centres = ((np.flatnonzero(known) + first) + 0.5) * factor
    wanted = (targets + 0.5) * target_factor
    found = np.interp(wanted, centres, series[known])
    return np.asarray(np.where((wanted >= centres[0]) & (wanted <= centres[-1]), found, np.nan))
