"""The default detector (`method="auto"`): how unusual is each reading *for this series*.

A raw deviation is not an alarm: a metric whose readings wander by ±20 % is normal at
+15 %, a flat one is not at +1 %. So each reading gets a calibrated tail probability,
"how often has this series behaved like this", from the series' own past, and only the
far tail alarms. Every verdict uses only the readings before it (causal: the online mode
and the offline mode are the same thing here), and all the detector knows of the past is
a compact state (`state.DetectorState`, at most 16 KB): `advance(state, times, values)`
judges the next readings and returns the state after them, so a scan judges only what
arrived since its last sweep, and `judge` (what `detect` runs) is `advance` from
`new_state` over the whole series. The two are the same computation: any split of a
series into successive advances, through `to_bytes` / `from_bytes` or not, gives the
same verdicts, probabilities, bands and scores (to rounding of the last bit).

For reading t:

1. Expected value. Two forecasters, both from the readings before t: the level (median
   of the last `level_window` readings, which follows a level shift within half that
   window, or SETTLE readings after its alarm: step 6) and, once the series shows a
   season, STL's forecast (seasonal + trend, refitted every sixth of a season on the last
   four seasons of a bounded time grid; `seasonal`). The season is inferred from a
   downsampled grid of all readings so far (up to 16,384), so it is learnt from the past
   too: every 256 readings, and every 64 from 512 to 2,048; a season must show twice in
   512 readings or more (four times in fewer). The day, known from the readings' times,
   is tested on its own once they cover two days, at every cadence: a day of hourly
   readings is found at reading 48, of 5-minute ones at 576, of 1-minute ones at 2,880
   (one found between the search's checks is provisional until the search finds it too:
   step 10). Each reading uses the forecaster whose mean absolute error over the last
   `choice_window` readings (in blocks of 16) is smaller.
2. Evidence at four horizons: the forecast error of the reading itself (a spike or a
   dip), the mean error of the last 4 and of the last 32 readings (`horizons`: a shift or
   a broken season shows there while each reading alone is still unremarkable), and the
   mean *absolute* error of the last 64 (`spread_horizons`: the readings spread wider, a
   variance change or a burst of spikes, while their mean stays put). A sum over 2p
   readings is the sum over the last p plus the one over the p before, kept in the state
   for each power of two: each mean depends on its window's values only, not on where
   a call to `advance` began, and costs a few additions per reading.
   Two drift looks see what is slower than all of these (a temperature climbing for hours,
   a level that creeps, a noise that widens over days), which the level follows a little
   behind and the tails, fitted on a week, learn within a day: over the last
   `drift_horizon` readings or so (256, whole blocks), the mean error and the mean error
   magnitude of the level forecaster, each error in units of the reading look's threshold
   and clipped (at 1 and SPREAD_CLIP: a burst of spikes is the other looks' to judge).
   Each is judged against its own behaviour over a long memory (about DRIFT_MEMORY blocks,
   a month of 5-minute readings): the mean error's normal tail beyond its root mean
   square, the magnitudes' beyond their mean (wider only). They judge from DRIFT_WARM of
   their blocks on (about reading 2,450), never within their window of an earlier alarm
   (its errors are in their sums), and not against the seasonal forecaster (a seasonal
   fit that has taken an anomalous day in errs on one side for days after it).
3. A tail probability for each horizon against the same horizon's past values, refitted
   every BLOCK readings (`tails`: log-binned histograms of the last `history` readings'
   worth, the previous window fading out as the current one fills): above the
   `tail_quantile` quantile of past magnitudes an exponential tail fitted to the
   excesses (peaks over threshold: a generalised Pareto tail of shape 0, which
   over-states rather than under-states the probability of a light-tailed series'
   extremes). Below the threshold the same exponential is read, capped at 1: there a
   look's probability is at least the tail's share (0.1), which the Bonferroni factor
   below lifts past 0.4, far from any alarm. The tail is never narrower than the data's
   own resolution (the smallest step between distinct values of the level window, over
   about the last `history` readings: a series in whole steps cannot be more surprising
   than one step apart), so a quantised series does not alarm on its next step.
4. `probability` = 4 × the smallest of the four (Bonferroni: four looks at the same
   reading; 6 × the smallest of six while the drift looks judge). A reading alarms when
   probability ≤ `sensitivity` (default 3e-4): on data that behaves as its past did, at
   most about `sensitivity` × readings alarm, and fewer where the noise has lighter tails
   than exponential.
5. Quiet: an alarm opens an event; for the next `quiet` readings the detector does not
   alarm again (the event goes on while readings stay unusual), so one incident is one
   alarm, not fifty; unless a reading is ESCALATE times as unusual as the event's peak
   so far (in -log probability): a second, larger incident alarms on its own.
   An alarm while a drift look's probability is DRIFT_LEARN or less opens a drift (typed
   a trend or a variance change by the more unusual of the two, from the readings up to
   it): until both are above DRIFT_LEARN again they do not alarm, so a slow change that
   goes on for days is one event, not one every quiet time.
6. Recovery: SETTLE (32) readings after an alarm, if their median has left the level
   before the alarm by more than the reading look's threshold, the level moved: the level
   window restarts at the alarm (the level is the median of the readings since, until a
   full window has passed) and the level's looks over several readings start again. If
   the shift is clear (CLEAR_SHIFT thresholds off, its last half too), the reading look's
   evidence since the alarm, held back until this decision, stays out of its tail. A
   shift's own errors (dozens of several σ while the median catches up) would otherwise
   widen the band by half for as long as the tail remembers them (a week), and the
   longer looks would re-alarm on the shift after the quiet time.
   Otherwise (a spike, a burst that fades) the held evidence joins the tail: bursts are
   the series' own behaviour and are learnt (dropping them cost Twitter volumes a fifth
   more false alarms).
7. Judged but not learnt (`learn` False: a confirmed anomaly, an open incident, a
   maintenance window, as the caller knows them): the reading is judged as any other,
   but what the detector learns from takes it as its forecast said: the level window,
   the season's grid and the resolution see the expected value, the windowed sums an
   error of 0 for it (the chosen forecaster's), and no look's evidence of it enters a
   tail. So an outage does not widen the band or move the level. The mask is per
   reading, so any split gives the same verdicts for the same mask. Readings judged
   before there is a forecast (the first `minimum_points`) are learnt whatever the mask.
8. Young readings: before the tails judge (the first `minimum_points` readings: 9.4 days
   of hourly ones, whose first incidents come in their first days), from reading
   YOUNG_FROM once the readings span a day, a reading is judged against the median of the
   readings so far (up to a level window) in units of their robust spread (1.4826 × MAD):
   its probability is sensitivity ** (distance / YOUNG_BAR), a tail so heavy that only 20
   such spreads alarm. Within the first day a daily swing has not been seen (5-minute and
   1-minute series are never judged so), nor while the spread is 0 (mostly one value). A
   young alarm opens an event and its quiet time like any other, but decides no level
   shift and holds no evidence back from the tails, which start as they would without it.
9. Sparse readings: where the readings are SPARSE_CADENCE (30 min) or more apart, the
   same look goes on once the tails judge, at SPARSE_BAR (16) robust sd of the level
   window, and a reading's probability is the smaller of the two. An hourly reading sums
   twelve 5-minute ones (a burst of crashes stands far out of its level in one reading),
   and an hourly series gives its tails twelve times fewer readings a week: a tail of
   2,000 of them holds the last bursts for months and reads a burst that comes every day
   or two as ordinary, while its median and robust spread, over the last level window
   (five days), are not moved by a few bursts. The bar is a property of the data's
   cadence, not of a series: 5-minute and 1-minute readings (Twitter volumes burst as
   far, unlabelled) are judged by their tails alone. Its alarms are alarms like any other
   (quiet time, level decision, evidence held back).
10. A young season: from YOUNG_SEASON_ERRORS forecasts after a season is found until the
    choice can weigh it (a choice window of its errors: reading 544 for a day of hourly
    readings found at 48, 864 for one of 5-minute readings found at 576), a reading is
    also judged against the seasonal forecast in units of its error scale (the larger of
    the fit's widened residual scale and its forecast errors' mean magnitude), through the
    young look's tail, while that scale is YOUNG_SEASON_GAIN times smaller than the level
    window's robust spread or more: a reading inside the day's range but far off its hour
    alarms from the third day. Where it is the more unusual, it gives the verdict (its
    alarms, as the young look's, decide no level shift). A day found by its own test
    between the search's checks is provisional (`Season.provisional`): its fit, on two to
    four days, lags a shift of the level by four days, so it teaches none of its tails,
    readings enter its grid unclipped, and the choice does not weigh it; when the search
    finds it too, its choice sums and error count start again.
11. Back at its level: on sparse readings, once a reading inside an event's quiet time is
    itself RETURNED_BAR (3) robust sd or less from the level window's median (the windowed
    looks may still hold the burst), the event's burst is over; from then on a reading
    SPARSE_BAR (16) robust sd out, REOPEN_AFTER (5) readings or more after the event's
    first alarm, alarms again inside the quiet time (which, with the level decision, still
    runs from the first alarm) and starts the next burst. Hourly crash rates burst every
    3-4 hours, each burst back to the level before the next and each labelled an incident
    of its own; step 5's escalation (3× the event's peak) misses a second burst of the
    same size. The mark is the peak's sign (`alarm_peak` < 0): no state more.

Output per reading: expected (the chosen forecast), lower/upper (the band a reading alone
stays inside without alarming), score = log(probability) / log(sensitivity) (≥ 1 exactly
at alarms; held just under 1 inside a quiet time), probability, and the alarm flag.

Events: one per alarm, lasting while readings stay unusual within its quiet time, typed
by `kinds` from the BASELINE readings before it (kept in the state) and the LOOK
readings from it on. An advance sees an event only up to its own last reading: an alarm
and its flag never change, but its end, peak and kind are decided from what that advance
saw (its kind is "provisional" when fewer than LOOK readings followed); a scan stores
each alarm with the kind known when it was judged, and a later advance does not revise it.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, insort
from dataclasses import dataclass, field, replace
from functools import cache

import numpy as np

from common.detection.events import alarm_events
from common.detection.kinds import BASELINE, describe_all
from common.detection.result import DetectionError, DetectionResult
from common.detection.seasonal import DAY_MS, Season
from common.detection.spread import MAD_TO_STD
from common.detection.state import (
    AdaptiveSettings,
    DetectorState,
    StateInvalid,
    settings_key,
)
from common.detection.stl import OUTLIER_SCALES
from common.detection.tails import MIN_TAIL_HISTORY, Tails

__all__ = [
    "MIN_TAIL_HISTORY",
    "AdaptiveSettings",
    "DetectorState",
    "StateInvalid",
    "advance",
    "judge",
    "minimum_points",
    "new_state",
]

# Tail fits are refitted every BLOCK readings: one fit per reading would be 16× the work
# for a summary that moves by a few readings.
BLOCK = 16
# The data's resolution is kept per CHUNK readings (the smallest step and largest size).
CHUNK = 128
# Readings after an alarm when the detector decides whether the level moved (recovery):
# the longest look's span, enough for a median that a burst of spikes does not move.
SETTLE = 32
# Inside an event's quiet time, a reading this many times as unusual as the event's peak
# so far (in -log probability) alarms again: a second incident, not the first one going on
# (the cloud corpus labels incidents hours apart: +3 events found, NAB unchanged; at 2×,
# four more Twitter false alarms).
ESCALATE = 3.0
# A shift this many reading-look thresholds off (about 3.3 σ of normal noise) is clear.
CLEAR_SHIFT = 2.0
# The drift look's scale is the root mean square of its values at each block's end, over
# about DRIFT_MEMORY blocks (a month of 5-minute readings: a slow change is judged against
# weeks of the look's own behaviour, where a tail of a week would learn it within a day),
# and judged from DRIFT_WARM blocks on (eight of its own windows).
DRIFT_MEMORY = 512
DRIFT_WARM = 128
# An alarm while the drift look's probability is at most this opens a drift; until it is
# above this again, the drift goes on and that look does not alarm again (one slow change,
# one event).
DRIFT_LEARN = 1e-2
# The spread drift reads errors' magnitudes up to this many reading-look thresholds (about
# 2.5 sd of normal noise): a burst of spikes moves it little, a wider noise much.
SPREAD_CLIP = 1.5
# Before the tails judge (the first minimum_points readings), from the YOUNG_FROM-th reading
# once a day has been seen, a reading YOUNG_BAR robust sd from the median of those before
# alarms: the cloud corpus' hourly series have incidents in their first nine days
# (7 events more found there for 4 false alarms; bars of 15 and 30 found 6).
YOUNG_FROM = 64
YOUNG_BAR = 20.0
# Readings this far apart or more (the median spacing of the first ones, `Season.cadence`)
# go on being judged so once the tails judge too, at a bar of SPARSE_BAR robust sd: an
# hourly reading sums an hour of activity (a burst of crashes is far out in one reading),
# and its tails, fitted on 2,000 readings (12 weeks of them), keep the series' last bursts
# for months and read the next one as ordinary (cloud corpus 39.2 -> 49.3, NAB unchanged;
# bars 16-20 lose nothing on NAB, 15 and 12 raise false alarms on its hourly ad-exchange
# series). Five-minute and one-minute series are judged by their tails alone: Twitter
# volumes burst as far, unlabelled.
SPARSE_CADENCE_MS = 30 * 60_000
SPARSE_BAR = 16.0
# On sparse readings, a reading inside an event's quiet time RETURNED_BAR robust sd or less
# from its level marks the burst over; from then on a reading SPARSE_BAR robust sd out,
# REOPEN_AFTER readings or more after the event's first alarm, alarms again (step 11): the
# cloud corpus' hourly crash rates burst every 3-4 hours, each an incident (cloud 49.3 ->
# 53.5, NAB 74.2 -> 74.1: one false alarm more; bars of 2 and 3 alike; 3 readings after
# the alarm instead of 5: two more false alarms on NAB's hourly ad-exchange series, whose
# unlabelled bursts come 4 hours apart).
RETURNED_BAR = 3.0
REOPEN_AFTER = 5
# A season the choice cannot weigh yet (fewer than `choice_window` errors of its own, or
# provisional: step 10) judges through the young look's heavy tail from its
# YOUNG_SEASON_ERRORS-th forecast, against its own error scale, while that scale is this
# many times smaller than the level window's robust spread.
YOUNG_SEASON_GAIN = 3.0
YOUNG_SEASON_ERRORS = 8
# A normal error's standard deviation over its mean magnitude.
MEAN_TO_STD = math.sqrt(math.pi / 2)
_SQRT_HALF = math.sqrt(0.5)
# Below the score of an alarm, for readings inside a quiet time.
JUST_UNDER_ONE = float(np.nextafter(1.0, 0.0))
TINIEST = 1e-300
LEVEL, SEASONAL = 0, 1
NAN = math.nan


def minimum_points(level_window: int | None = None) -> int:
    """Readings up to the first one judged: a level window, then a tail's history, up to
    the end of the block in which the tails' bands are fitted (they are refitted once a
    BLOCK: with the default window of 120, the 225th reading is the first judged)."""
    window = AdaptiveSettings().level_window if level_window is None else level_window
    return -(-(window + MIN_TAIL_HISTORY) // BLOCK) * BLOCK + 1


def new_state(settings: AdaptiveSettings, period: int | None = None) -> DetectorState:
    """The state before any reading. `period`: the season in readings (steps of the
    series' cadence), instead of inferring it."""
    settings.check()
    if period is not None and period < 2:
        raise DetectionError(f"period must be at least 2 readings, got {period}")
    layout = _layout(settings)
    return DetectorState(
        settings=settings,
        period=period,
        settings_key=settings_key(settings, period),
        sums=array("d", [NAN]) * (2 * layout.ring_size),
        tails=Tails.empty(layout.rows),
        season=Season.new(period),
    )


def advance(
    state: DetectorState,
    timestamps_ms: np.ndarray,
    values: np.ndarray,
    learn: np.ndarray | None = None,
) -> tuple[DetectionResult, DetectorState]:
    """Judge exactly these readings (after `state.last_timestamp_ms`, in time order) and
    return their verdicts and the state after them; `state` itself is not changed.

    `learn` (one bool per reading, default all True): False for a reading that is judged
    but not learnt from (module doc, step 7). The result is index-aligned with `values`,
    its events typed (module doc). Readings at or before the state's last one raise
    DetectionError: judge them in a rebuild.
    """
    times, series = _validated(state, timestamps_ms, values)
    return _advance(state, times, series, real_times=True, learn=_learnt(learn, series))


def judge(
    values: np.ndarray,
    times: np.ndarray | None,
    settings: AdaptiveSettings,
    *,
    period: int | None = None,
    learn: np.ndarray | None = None,
) -> DetectionResult:
    """Verdicts for every reading of a finite series in time order: `advance` from
    `new_state` (module doc). Without times, readings are evenly spaced."""
    state = new_state(settings, period)
    mask = _learnt(learn, values)
    if times is None:
        evenly = np.arange(values.shape[0], dtype=np.int64)
        return _advance(state, evenly, values, real_times=False, learn=mask)[0]
    return _advance(state, times.astype(np.int64), values, real_times=True, learn=mask)[0]


def _learnt(learn: np.ndarray | None, values: np.ndarray) -> list[bool] | None:
    """The learning mask as plain bools (None: learn from every reading)."""
    if learn is None:
        return None
    mask = np.asarray(learn, dtype=bool)
    if mask.shape != np.shape(values):
        raise DetectionError(
            f"{mask.shape} learning flags for {np.shape(values)} values: pass one per value"
        )
    return None if mask.all() else mask.tolist()


def _validated(
    state: DetectorState, timestamps_ms: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    series = np.asarray(values, dtype=np.float64)
    times = np.asarray(timestamps_ms)
    if series.ndim != 1 or times.shape != series.shape:
        raise DetectionError(
            f"{times.shape} timestamps for {series.shape} values: pass one timestamp per value"
        )
    if series.shape[0] and not np.isfinite(series).all():
        raise DetectionError("values must be finite numbers")
    times = times.astype(np.int64)
    if times.shape[0] > 1 and (np.diff(times) < 0).any():
        raise DetectionError("timestamps must be in time order: sort the readings by timestamp")
    last = state.last_timestamp_ms
    if times.shape[0] and last is not None and int(times[0]) <= last:
        raise DetectionError(
            f"reading at {int(times[0])} ms is not after the last one judged ({last} ms): "
            "late readings need the state rebuilt from the history"
        )
    return times, series


@dataclass(frozen=True)
class _Chain:
    """How one forecaster's windowed sums of its errors (signed, or absolute) are kept.

    A sum over 2p readings is the sum over the last p plus the sum over the p before,
    kept in a ring per power of two; a horizon that is not a power of two adds the
    powers of its binary digits, each further back. Each sum is a function of its
    window's values alone, whatever calls the readings came in.
    """

    # Per power p below the largest: (p, offset of its ring, ring length).
    doubling: tuple[tuple[int, int, int], ...]
    # Per horizon: the power of its top digit (an index into the sums 1, 2, 4, ...), and
    # each further digit's ring (offset, length) and how far back it is read.
    plans: tuple[tuple[int, tuple[tuple[int, int, int], ...]], ...]
    horizons: tuple[int, ...]


@dataclass(frozen=True)
class _Layout:
    """What the settings fix about the computation (cached per settings)."""

    looks: tuple[tuple[int, bool], ...]  # (horizon, spread) per windowed-sum look
    sources: tuple[tuple[int, int, float], ...]  # per look: (chain, its horizon's place, h)
    count: int  # tail rows of a forecaster: one per look above
    drift_blocks: int  # complete blocks before the current one the drift look reads (0: none)
    point: int  # the look of the reading alone: the band's
    chains: tuple[_Chain, _Chain]  # signed, absolute
    ring_size: int  # floats of rings per forecaster
    rows: int
    horizons: tuple[float, ...]  # per tail row
    band: float  # log(tail share / (sensitivity / looks)): the band's reach past the threshold
    blocks: int  # choice window in blocks
    keep: int  # readings kept for the level window and events' baseline
    first_judged: int  # the first reading the tails can judge (0-based)
    window: int  # readings in a tail's window (a whole number of blocks)
    rings: tuple[tuple[int, int], ...]  # (offset, length) of every ring of a forecaster
    unknown: array[float]  # one NaN per look: the evidence of a forecaster without forecast


@cache
def _layout(settings: AdaptiveSettings) -> _Layout:
    looks = tuple((h, False) for h in settings.horizons) + tuple(
        (h, True) for h in settings.spread_horizons
    )
    chains = []
    offset = 0
    for spread in (False, True):
        horizons = sorted({h for h, s in looks if s == spread})
        powers = [1 << bit for bit in range(max(horizons, default=1).bit_length())]
        lengths = {power: power for power in powers[:-1]}  # a doubling looks p back
        digits = []
        for horizon in horizons:
            back, found = 0, []
            for power in reversed(powers):
                if horizon & power:
                    found.append((power, back))
                    if back:  # read `back` readings before: the ring must reach that far
                        lengths[power] = max(lengths[power], back)
                    back += power
            digits.append(found)
        rings = {}
        for power in powers[:-1]:
            rings[power] = (offset, lengths[power])
            offset += lengths[power]
        plans = tuple(
            (
                found[0][0].bit_length() - 1,
                tuple((*rings[power], back) for power, back in found[1:]),
            )
            for found in digits
        )
        doubling = tuple((power, *rings[power]) for power in powers[:-1])
        chains.append(_Chain(doubling, plans, tuple(horizons)))
    count = len(looks)
    drift_blocks = settings.drift_horizon // BLOCK - 1 if settings.drift_horizon else 0
    tail_share = 1.0 - settings.tail_quantile
    return _Layout(
        looks=looks,
        count=count,
        drift_blocks=drift_blocks,
        sources=tuple(
            (int(spread), chains[int(spread)].horizons.index(horizon), float(horizon))
            for horizon, spread in looks
        ),
        point=looks.index((1, False)),
        chains=(chains[0], chains[1]),
        ring_size=offset,
        rows=2 * count,
        horizons=tuple(float(h) for h, _ in looks) * 2,
        band=math.log(tail_share / (settings.sensitivity / count)),
        blocks=max(1, settings.choice_window // BLOCK),
        keep=max(settings.level_window, BASELINE),
        first_judged=minimum_points(settings.level_window) - 1,
        window=max(1, round(settings.history / BLOCK)) * BLOCK,
        rings=tuple((offset, length) for chain in chains for _, offset, length in chain.doubling),
        unknown=array("f", [NAN] * count),
    )


def _window_sums(
    chain: _Chain, sums: array[float], base: int, reading: int, value: float
) -> list[float]:
    """Sums over the chain's horizons of the windows ending at `reading` (whose value is
    `value`); the rings move on by it."""
    current = [value]  # sums over 1, 2, 4, ... readings ending here
    total = value
    for power, offset, length in chain.doubling:
        total = total + sums[base + offset + (reading - power) % length]
        current.append(total)
    found = []
    for top, digits in chain.plans:
        total = current[top]
        for offset, length, back in digits:
            total += sums[base + offset + (reading - back) % length]
        found.append(total)
    for bit, (_, offset, length) in enumerate(chain.doubling):
        sums[base + offset + reading % length] = current[bit]
    return found


class _Fits:
    """The tail fits of the current block as plain numbers."""

    def __init__(self, state: DetectorState, layout: _Layout) -> None:
        tails = state.tails
        floor = state.floor
        self.threshold: list[float] = tails.threshold.tolist()
        self.scale = [
            max(excess, floor / horizon) if not math.isnan(excess) else NAN
            for excess, horizon in zip(tails.excess.tolist(), layout.horizons, strict=True)
        ]
        count = layout.count
        self.band = [
            self.threshold[row] + self.scale[row] * layout.band
            for row in (layout.point, count + layout.point)
        ]

    def chance(self, row: int, magnitude: float, tail_share: float) -> float:
        """P(a past magnitude >= this one) for a tail row: the exponential tail
        `tail_share * exp(-(magnitude - threshold) / scale)`, read below the threshold too
        (capped at 1; a magnitude of 0 has probability 1)."""
        threshold = self.threshold[row]
        if math.isnan(threshold) or math.isnan(magnitude) or magnitude <= 0:
            return 1.0
        scale = self.scale[row]
        if scale <= 0:  # every past magnitude the same: anything larger is unprecedented
            return 0.0 if magnitude > threshold else tail_share
        below = (threshold - magnitude) / scale
        if below >= -math.log(tail_share):  # capped at 1 (and exp overflows past 709)
            return 1.0
        return tail_share * math.exp(below)


@dataclass
class _Verdicts:
    expected: list[float] = field(default_factory=list)
    half_width: list[float] = field(default_factory=list)
    probability: list[float] = field(default_factory=list)
    unusual: list[bool] = field(default_factory=list)
    is_anomaly: list[bool] = field(default_factory=list)
    seasonal: list[bool] = field(default_factory=list)  # the seasonal forecaster was used
    # What events are typed against (`kinds`): the chosen forecaster's expected value, not
    # the young season look's (step 10), which gives a verdict on a few readings only: a
    # baseline mixing the two forecasts reads the level's swings as a shift of the level.
    typed_against: list[float] = field(default_factory=list)
    # Alarms that opened a drift (the call's index): "trend" or "spread" (`kinds`).
    drifts: dict[int, str] = field(default_factory=dict)

    def add(
        self,
        expected: float,
        typed_against: float,
        half_width: float,
        probability: float,
        unusual: bool,
        is_anomaly: bool,
        seasonal: bool,
    ) -> None:
        """One reading's verdict (`seasonal`: the seasonal forecaster chose `expected`; only
        for a judged reading, one whose expected value is a number)."""
        self.expected.append(expected)
        self.typed_against.append(typed_against)
        self.half_width.append(half_width)
        self.probability.append(probability)
        self.unusual.append(unusual)
        self.is_anomaly.append(is_anomaly)
        self.seasonal.append(seasonal and not math.isnan(expected))


def _advance(
    before: DetectorState,
    times: np.ndarray,
    values: np.ndarray,
    *,
    real_times: bool,
    learn: list[bool] | None = None,
) -> tuple[DetectionResult, DetectorState]:
    """The readings judged one by one from a copy of `before` (module doc)."""
    run = _Run(before.copy())
    if learn is None:
        for time, value in zip(times.tolist(), values.tolist(), strict=True):
            run.judge(time, value)
    else:
        for time, value, learnt in zip(times.tolist(), values.tolist(), learn, strict=True):
            run.judge(time, value, learnt)
    run.finish()
    result = _result(before, run.verdicts, times, values, real_times, run.seasons)
    return result, run.state


class _Run:
    """One advance: the state's numbers unpacked for the reading-by-reading loop."""

    def __init__(self, state: DetectorState) -> None:
        self.state = state
        self.settings = state.settings
        self.layout = _layout(state.settings)
        season = state.season
        self.seasons = [(season.since, season.period)] if season.period else []
        self.verdicts = _Verdicts()
        self.forecast = season.forecaster()
        self.provisional = season.provisional()
        self.waiting: tuple[list[int], list[float], list[float]] = ([], [], [])
        self.first_time = season.first_time()
        # The sparse look's probability of the reading being judged (`_sparse`).
        self.sparse_chance = NAN
        kept = min(self.settings.level_window, state.readings_seen - state.level_from)
        self.window = sorted(state.recent[len(state.recent) - kept :] if kept > 0 else [])
        self._new_block()

    def _new_block(self) -> None:
        self.choice = _Choice(self.state, self.layout)
        # The drift look's sum over the complete blocks it reads (NaN until there are as
        # many, or if a reading in them had no forecast).
        drift = self.state.drift_sums
        full = drift.shape[1] == self.layout.drift_blocks
        self.drift_before = drift.sum(axis=1).tolist() if full else [NAN] * 4
        self.drift_chance = [1.0, 1.0]
        self.spread_chance = [1.0, 1.0]
        # Its scale, once it has seen DRIFT_WARM blocks (never below one reading a whole
        # unit off over the window). Its errors are in units of the reading look's
        # threshold (its 90 % quantile of errors; never below the data's resolution),
        # clipped at one: the noise widening is not a drift, nor is a burst of spikes,
        # which the other looks judge.
        state, layout = self.state, self.layout
        self.drift_scale = [
            max(math.sqrt(square), 1.0 / ((layout.drift_blocks + 1) * BLOCK))
            if seen >= DRIFT_WARM
            else NAN
            for square, seen in zip(state.drift_square[:2], state.drift_blocks, strict=True)
        ]
        # The spread drift's mean and standard deviation over the same memory.
        self.spread_mean = state.drift_mean[2:].tolist()
        self.spread_scale = [
            math.sqrt(max(square - mean * mean, 0.0)) if seen >= DRIFT_WARM else NAN
            for square, mean, seen in zip(
                state.drift_square[2:],
                state.drift_mean[2:],
                state.drift_blocks,
                strict=True,
            )
        ]
        self._fit()

    def _fit(self) -> None:
        """The block's tail fits, and the drift looks' unit from them."""
        state, layout = self.state, self.layout
        self.fits = _Fits(state, layout)
        units = (
            max(self.fits.threshold[row], state.floor)
            for row in (layout.point, layout.count + layout.point)
        )
        # NaN before the reading look's first fit, or while every error has been 0 (a flat
        # series: no unit to measure a drift in, and its looks judge any change anyway).
        self.drift_unit = [unit if unit > 0 else NAN for unit in units]

    def _restart_drift(self) -> None:
        """The drift look starts again (unremarkable until its window fills)."""
        state = self.state
        state.drift_sums = np.zeros((4, 0))
        state.partial_drift[:] = array("d", [NAN] * 4)
        self.drift_before = [NAN] * 4

    def judge(self, time: int, value: float, learn: bool = True) -> None:
        state, settings = self.state, self.settings
        reading = state.readings_seen
        if reading in (state.season.next_check, state.season.next_refit):
            self._scheduled(reading)
        if reading == state.last_alarm + SETTLE:
            self._rebase_if_shifted(reading)
        width = settings.level_window
        window = self.window
        filled = len(window) == width or (state.level_from > 0 and len(window) >= SETTLE)
        level = window[len(window) // 2] if filled else NAN
        seasonal = self.forecast(time) if self.forecast is not None else NAN
        use_seasonal = not self.provisional and self.choice.seasonal_is_better(reading, seasonal)
        forecaster = SEASONAL if use_seasonal else LEVEL
        expected = seasonal if use_seasonal else level
        band = self.fits.band[forecaster]
        judged = not (math.isnan(expected) or math.isnan(band))
        # Not learnt from (step 7): what is learnt is the reading as forecast.
        learn = learn or not judged
        learnt = value if learn else expected
        chances = [
            self._chance(reading, forecaster, value - forecast, learnt - forecast, learn)
            for forecaster, forecast in ((LEVEL, level), (SEASONAL, seasonal))
        ]
        probability = chances[forecaster] if judged else 1.0
        # Sparse readings are judged against their level too (step 9).
        probability, band = self._sparse(value, forecaster, probability, band, judged)
        forecast = expected  # what events are typed against (`_Verdicts.typed_against`)
        young = self._young_looks(reading, time, value, learnt, seasonal, probability, judged)
        if young is not None:  # steps 8 and 10
            expected, band, probability, by_season = young
            judged = not math.isnan(expected)
            if not by_season:  # the young look judges the level (step 8)
                forecast = expected
        unusual = probability <= settings.sensitivity
        surprise = -math.log(probability)
        quiet = reading - state.last_alarm <= settings.quiet
        # Inside an event's quiet time only something far more unusual alarms, or a burst of
        # its own once the series was back at its level (steps 5 and 11); the event's quiet
        # time and its level decision (recovery) go on from its first alarm.
        alarm = self._event(reading, unusual, surprise, quiet)
        if alarm and not quiet:
            state.last_alarm = reading
            # A young alarm decides no level shift and holds no evidence back (NaN).
            state.alarm_level = level if young is None else NAN
            trend, spread = self.drift_chance[forecaster], self.spread_chance[forecaster]
            if forecaster == LEVEL and min(trend, spread) <= DRIFT_LEARN:
                # An alarm while a drift look is unusual too (whichever look raised it) is
                # the drift's: one slow change, one event, typed by the more unusual one.
                state.drifting = 1
                kind = "trend" if trend <= spread else "spread"
                self.verdicts.drifts[len(self.verdicts.is_anomaly)] = kind
        elif state.drifting and (
            forecaster == SEASONAL
            or min(self.drift_chance[LEVEL], self.spread_chance[LEVEL]) > DRIFT_LEARN
        ):
            state.drifting = 0
        if not judged:
            expected = forecast = NAN
        self.verdicts.add(expected, forecast, band, probability, unusual, alarm, use_seasonal)
        self._remember(time, learnt, seasonal, forecast)

    def _young(self, reading: int, time: int, value: float) -> tuple[float, float, float] | None:
        """Before the tails can judge (module doc, step 8): the reading against the median of
        the readings so far (up to a level window) in units of their robust spread, read as a
        tail so heavy that YOUNG_BAR spreads are as rare as the sensitivity. Expected, band
        half-width and probability (NaN, NaN, 1 while the spread is 0); None: not judged so
        (too early, the tails judge, or less than a day of readings)."""
        if reading == 0:
            self.first_time = time
        if not YOUNG_FROM <= reading < self.layout.first_judged:
            return None
        # Within the first day a daily swing is unprecedented (a 5-minute cycle's first rise
        # alarmed on NAB's artificial daily series): not without times either.
        if not time - self.first_time >= DAY_MS:
            return None
        return self._robust(value, YOUNG_BAR) or (NAN, NAN, 1.0)

    def _event(self, reading: int, unusual: bool, surprise: float, quiet: bool) -> bool:
        """Whether the reading alarms (module doc, steps 5 and 11). Keeps the event's peak
        -log probability, negated once a reading inside its quiet time is itself back at its
        level (RETURNED_BAR robust sd or less: sparse readings only; the windowed looks may
        hold the burst a while longer): from then on a reading SPARSE_BAR robust sd out,
        REOPEN_AFTER readings or more after the event's first alarm, alarms again: the next
        burst, not the first one going on."""
        state = self.state
        peak = state.alarm_peak
        if not quiet:
            if unusual:
                state.alarm_peak = surprise
            return unusual
        sensitivity = self.settings.sensitivity
        chance = self.sparse_chance  # NaN where the sparse look does not judge
        far = chance <= sensitivity
        burst = peak < 0 and far and reading - state.last_alarm >= REOPEN_AFTER
        alarm = unusual and (burst or 0 < ESCALATE * abs(peak) <= surprise)
        magnitude = max(abs(peak), surprise) if unusual else abs(peak)
        # Back until the next burst, alarming or not (one too soon is over once back too).
        back = chance >= sensitivity ** (RETURNED_BAR / SPARSE_BAR) or (peak < 0 and not far)
        state.alarm_peak = -magnitude if back else magnitude
        return alarm

    def _sparse(
        self, value: float, forecaster: int, probability: float, band: float, judged: bool
    ) -> tuple[float, float]:
        """Readings SPARSE_CADENCE_MS or more apart (module doc, step 9): the probability,
        the smaller of the tails' and the robust look's at SPARSE_BAR, and the band (as
        given where the tails do not judge). The robust look's probability is kept for the
        event (`sparse_chance`: NaN where it does not look)."""
        self.sparse_chance = NAN
        if not judged:
            return probability, band
        season = self.state.season
        if math.isnan(season.cadence):
            # The cadence is set when the grids start, from readings an advance flushes at
            # its end: flushed here, it is known from the first judged reading in any split.
            _flush(season, self.waiting)
        if not season.cadence >= SPARSE_CADENCE_MS:  # NaN: all readings at one time so far
            return probability, band
        burst = self._robust(value, SPARSE_BAR)
        if burst is None:
            return probability, band
        self.sparse_chance = burst[2]
        # The level forecast is the same median: the band is the nearer of the two bars.
        return min(probability, burst[2]), min(band, burst[1]) if forecaster == LEVEL else band

    def _robust(self, value: float, bar: float) -> tuple[float, float, float] | None:
        """The reading against the median of the level window in units of its robust spread
        (1.4826 × MAD), read as a tail so heavy that `bar` spreads are as rare as the
        sensitivity: the median, the band half-width (`bar` spreads) and the probability;
        None while the spread is 0 (a series mostly at one value: its every step would
        alarm)."""
        window = self.window
        median = window[len(window) // 2]
        spread = MAD_TO_STD * _median_deviation(window)
        if not spread > 0:
            return None
        probability = _heavy_tail(self.settings.sensitivity, abs(value - median) / spread, bar)
        return median, bar * spread, probability

    def _young_looks(
        self,
        reading: int,
        time: int,
        value: float,
        learnt: float,
        seasonal: float,
        probability: float,
        judged: bool,
    ) -> tuple[float, float, float, bool] | None:
        """The young looks (module doc, steps 8 and 10), where they judge the reading more
        unusual than the tails do (`probability`, 1 if they do not judge it): expected, band
        half-width, probability, and whether the season's look did; None where neither does."""
        young = None if judged else self._young(reading, time, value)
        beats = probability if young is None else young[2]
        season = self._young_season(reading, seasonal, value, learnt, beats)
        if season is not None:
            return (*season, True)
        return None if young is None else (*young, False)

    def _young_season(
        self, reading: int, seasonal: float, value: float, learnt: float, beats: float
    ) -> tuple[float, float, float] | None:
        """A season too young for the choice (module doc, step 10): the reading against its
        forecast in units of its error scale, read as the young look reads the level
        (YOUNG_BAR scales as rare as the sensitivity). The scale is the larger of the fit's
        (its residuals, widened: `seasonal`) and the one of its YOUNG_SEASON_ERRORS or more
        forecast errors so far (their mean magnitude / sqrt(2 / pi)): a fit on two cycles of
        a series without noise has residuals of 0 and errs all the same. Expected, band
        half-width and probability if that probability is below `beats` (the reading's
        otherwise); None if not, while there is no such season, or while its errors are not
        clearly smaller than the level window's robust spread (YOUNG_SEASON_GAIN times)."""
        if math.isnan(seasonal):
            return None
        # The seasonal forecaster's errors before this reading's joined them (`_chance`).
        total, count = self.choice.errors(SEASONAL)
        total, count = total - abs(learnt - seasonal), count - 1
        if count < YOUNG_SEASON_ERRORS:
            return None
        if not (self.provisional or self.choice.seasonal_is_young(reading)):
            return None
        fitted = self.state.season.clip_scale
        scale = max(fitted if fitted > 0 else 0.0, total / count * MEAN_TO_STD)
        if not scale > 0:
            return None
        distance = abs(value - seasonal) / scale
        probability = _heavy_tail(self.settings.sensitivity, distance, YOUNG_BAR)
        # The level window's spread last: a walk over it, for the few readings this look
        # would judge more unusual than the others do.
        window = self.window
        if not probability < beats or len(window) < SETTLE:
            return None
        if YOUNG_SEASON_GAIN * scale > MAD_TO_STD * _median_deviation(window):
            return None
        return seasonal, YOUNG_BAR * scale, probability

    def _rebase_if_shifted(self, reading: int) -> None:
        """SETTLE readings after an alarm: if their median has left the level before it by
        more than the reading look's threshold (its 90 % quantile of errors), the level
        moved: the level window restarts at the alarm, so the level follows the new one
        now instead of once half a level window has passed (module doc, recovery)."""
        state, layout = self.state, self.layout
        since = sorted(state.recent[len(state.recent) - SETTLE :])
        threshold = self.fits.threshold[layout.point]
        moved = abs(since[SETTLE // 2] - state.alarm_level)
        # False on NaN (no level before the alarm, no fit yet).
        shifted = len(since) == SETTLE and moved > threshold
        # Clear: CLEAR_SHIFT thresholds off, over the SETTLE readings and over their last
        # half on the same side (a burst that fades is not a shift: bursts are learnt).
        latest = sorted(state.recent[len(state.recent) - SETTLE // 2 :])
        bar = CLEAR_SHIFT * threshold
        lately = latest[SETTLE // 4] - state.alarm_level
        clear = shifted and moved > bar and abs(lately) > bar
        clear = clear and (lately > 0) == (since[SETTLE // 2] > state.alarm_level)
        if not clear and len(state.held):
            # A spike, a burst, a small shift: its errors are the series' own behaviour.
            # They join the tail at the block's end (`_end_block`): the rest of the block
            # is judged from the tails it started with, whether this advance goes on or
            # another starts here (one pass = any split, to the bit).
            state.held_joins = 1
        else:
            state.held = array("f")
        if not shifted:
            return
        state.level_from = state.last_alarm
        self.window = since
        # The looks over several readings start again (unremarkable until their windows
        # fill): their sums hold errors against the old level, and would re-alarm on the
        # shift itself after the quiet time.
        for offset, length in layout.rings:
            state.sums[offset : offset + length] = array("d", [NAN]) * length
        self._restart_drift()
        if clear:
            # A clear shift's own errors stay out of the reading look's tail (held back from
            # the blocks before, and in this one's): they would widen the band by half for
            # as long as the tail remembers them, a week.
            first = max(0, reading % BLOCK - (reading - state.last_alarm))
            for at in range(first * layout.rows + layout.point, len(state.pending), layout.rows):
                state.pending[at] = NAN

    def _scheduled(self, reading: int) -> None:
        """A season check or a seasonal refit due before this reading."""
        state = self.state
        season = state.season
        _flush(season, self.waiting)
        if reading == season.next_check and state.last_timestamp_ms is not None:
            provisional = season.provisional()
            season.check(reading, newest_ms=state.last_timestamp_ms)
            if provisional and season.period and not season.provisional():
                # Confirmed: its errors so far (a young fit's, lagging any shift of the
                # level by four seasons) are not the ones the choice weighs it by.
                state.choice_sums, state.choice_counts = (
                    state.choice_sums.copy(),
                    state.choice_counts.copy(),
                )
                state.choice_sums[SEASONAL] = 0.0
                state.choice_counts[SEASONAL] = 0
                state.partial_sum[SEASONAL], state.partial_count[SEASONAL] = 0.0, 0
                self.choice = _Choice(state, self.layout)
            elif season.period and season.since == reading:  # a new season (not relocated)
                self.seasons.append((reading, season.period))
        if reading == season.next_refit and season.period:
            season.refit(reading, _error_scale(state, self.layout))
        self.forecast = season.forecaster()
        self.provisional = season.provisional()

    def _chance(
        self, reading: int, forecaster: int, error: float, learnt: float, learn: bool
    ) -> float:
        """The forecaster's probability for this reading (Bonferroni over its looks); its
        windowed sums, its evidence for the block's tails and its choice sums move on
        with `learnt`, the error of what is learnt (`error` itself unless masked: step 7)."""
        layout, state = self.layout, self.state
        base = forecaster * layout.ring_size
        count = layout.count
        # This reading's drift probabilities: 1 unless the drift looks judge it below.
        self.drift_chance[forecaster] = self.spread_chance[forecaster] = 1.0
        if math.isnan(error):  # no forecast: every sum is NaN, every look unremarkable
            for offset, length in layout.rings:
                state.sums[base + offset + reading % length] = NAN
            state.partial_drift[forecaster] = NAN
            state.partial_drift[2 + forecaster] = NAN
            state.pending.extend(layout.unknown)
            return 1.0
        found = (
            _window_sums(layout.chains[0], state.sums, base, reading, learnt),
            _window_sums(layout.chains[1], state.sums, base, reading, abs(learnt)),
        )
        # A window's sum is linear in its newest term: the judged sums differ from the
        # learnt ones by this much (0.0 for a reading learnt from, which changes nothing).
        shift = (error - learnt, abs(error) - abs(learnt))
        tail_share = 1.0 - self.settings.tail_quantile
        # A provisional season's errors teach no tail (`Season.provisional`).
        kept = learn and not (forecaster == SEASONAL and self.provisional)
        lowest = 1.0
        for look, (chain, place, horizon) in enumerate(layout.sources):
            magnitude = abs((found[chain][place] + shift[chain]) / horizon)
            state.pending.append(magnitude if kept else NAN)
            lowest = min(lowest, self.fits.chance(forecaster * count + look, magnitude, tail_share))
        self.choice.add(forecaster, abs(learnt))
        if not layout.drift_blocks:
            return min(max(lowest * count, TINIEST), 1.0)
        # The drift look: the mean error over the last drift_horizon readings or so, in
        # units clipped at one, against its own scale over a long memory (a normal tail: a
        # mean of hundreds).
        unit = self.drift_unit[forecaster]
        clipped = min(max(learnt / unit, -1.0), 1.0)
        wide = min(abs(learnt) / unit, SPREAD_CLIP)
        state.partial_drift[forecaster] += clipped
        state.partial_drift[2 + forecaster] += wide
        scale = self.drift_scale[forecaster]
        if math.isnan(scale):
            return min(max(lowest * count, TINIEST), 1.0)
        length = layout.drift_blocks * BLOCK + reading % BLOCK + 1
        total = self.drift_before[forecaster] + state.partial_drift[forecaster]
        total += min(max(error / unit, -1.0), 1.0) - clipped
        magnitude = abs(total / length)
        chance = math.erfc(magnitude / scale * _SQRT_HALF) if scale > 0 else float(magnitude == 0)
        # The spread drift: the mean of the errors' magnitudes (in the same units, clipped
        # at SPREAD_CLIP) above its own mean over the long memory: the noise widening
        # faster than the reading look's threshold follows it. Wider only.
        total = self.drift_before[2 + forecaster] + state.partial_drift[2 + forecaster]
        total += min(abs(error) / unit, SPREAD_CLIP) - wide
        above = total / length - self.spread_mean[forecaster]
        spread = self.spread_scale[forecaster]
        wider = 0.5 * math.erfc(above / spread * _SQRT_HALF) if spread > 0 else float(above <= 0)
        wider = min(wider, 1.0)
        self.drift_chance[forecaster] = chance
        self.spread_chance[forecaster] = wider
        # Nor do they alarm on an event already alarmed inside their window: its errors
        # are in their sums, and they would raise it again after its quiet time.
        covered = reading - state.last_alarm <= length
        # Only against the level: a seasonal fit that has taken an anomalous day in errs on
        # one side for days after it (three false alarms on NAB's artificial daily series).
        seasonal = forecaster == SEASONAL
        if state.drifting or covered or seasonal or math.isnan(chance) or math.isnan(wider):
            return min(max(lowest * count, TINIEST), 1.0)
        return min(max(min(lowest, chance, wider) * (count + 2), TINIEST), 1.0)

    def _remember(self, time: int, value: float, seasonal: float, expected: float) -> None:
        """The reading into what the next ones are judged from."""
        state, window, recent = self.state, self.window, self.state.recent
        width = self.settings.level_window
        state.chunk_max = max(state.chunk_max, abs(value))
        insort(window, value)
        if len(window) > width:  # the reading `width` back leaves (it is in the window)
            del window[bisect_left(window, recent[-width])]
        recent.append(value)
        if len(recent) > self.layout.keep:
            del recent[0]
        state.recent_expected.append(expected)
        if len(state.recent_expected) > BASELINE:
            del state.recent_expected[0]
        season = state.season
        self.waiting[0].append(time)
        self.waiting[1].append(value)
        # Nor is a provisional fit one to clip readings to: it lags a shift of the level, and
        # readings pulled to its forecasts would keep the fits after it lagging.
        fitted = NAN if self.provisional else seasonal
        self.waiting[2].append(_clipped(value, fitted, season.clip_scale))
        season.errors_seen += not math.isnan(seasonal)
        state.readings_seen += 1
        state.last_timestamp_ms = time
        if state.readings_seen % BLOCK == 0:
            _end_block(state, self.layout)
            self._new_block()

    def finish(self) -> None:
        _flush(self.state.season, self.waiting)


def _heavy_tail(sensitivity: float, distance: float, bar: float) -> float:
    """The probability of a reading `distance` scales from what it is judged against, read
    as a tail so heavy that `bar` scales are as rare as the sensitivity (the young looks and
    the sparse look: steps 8-10)."""
    return min(1.0, max(TINIEST, float(sensitivity ** (distance / bar))))


def _median_deviation(ordered: list[float]) -> float:
    """The median absolute deviation of sorted readings from their median (both the upper
    median, `ordered[n // 2]`): the deviations below it and above it are each in order, so
    the n // 2 smallest are stepped over (a quarter of numpy's cost on a level window)."""
    size = len(ordered)
    median = ordered[size // 2]
    below, above = size // 2 - 1, size // 2
    for _ in range(size // 2):
        if below >= 0 and (above >= size or median - ordered[below] <= ordered[above] - median):
            below -= 1
        else:
            above += 1
    lower = median - ordered[below] if below >= 0 else math.inf
    upper = ordered[above] - median if above < size else math.inf
    return min(lower, upper)


def _clipped(value: float, forecast: float, clip_scale: float) -> float:
    """What the seasonal grid keeps of a reading: within OUTLIER_SCALES scales of its
    forecast (the reading itself where there is none)."""
    limit = OUTLIER_SCALES * clip_scale
    if math.isnan(forecast) or math.isnan(limit):
        return value
    return forecast + min(max(value - forecast, -limit), limit)


def _flush(season: Season, waiting: tuple[list[int], list[float], list[float]]) -> None:
    """Readings judged into the season's grids (before a check or refit reads them)."""
    times, raw, fitted = waiting
    if times:
        season.observe(times, raw, fitted)
        times.clear()
        raw.clear()
        fitted.clear()


class _Choice:
    """Which forecaster has erred less over the last `choice_window` readings: the sums of
    absolute errors over whole blocks before the current one, plus the current block's."""

    def __init__(self, state: DetectorState, layout: _Layout) -> None:
        self.state = state
        self.size = layout.blocks * BLOCK
        self.full = state.choice_sums.shape[1] == layout.blocks
        self.sums = state.choice_sums.sum(axis=1).tolist()
        self.counts = state.choice_counts.sum(axis=1).tolist()

    def seasonal_is_better(self, reading: int, seasonal: float) -> bool:
        """Before the reading: a forecaster without a full window of errors does not win."""
        if not self.full or math.isnan(seasonal):
            return False
        state = self.state
        size = self.size + reading % BLOCK
        if self.counts[SEASONAL] + state.partial_count[SEASONAL] != size:
            return False
        if self.counts[LEVEL] + state.partial_count[LEVEL] != size:
            return True
        level = (self.sums[LEVEL] + state.partial_sum[LEVEL]) / size
        return bool((self.sums[SEASONAL] + state.partial_sum[SEASONAL]) / size < level)

    def errors(self, forecaster: int) -> tuple[float, int]:
        """The sum and count of the forecaster's absolute errors over the choice window."""
        state = self.state
        return (
            self.sums[forecaster] + state.partial_sum[forecaster],
            self.counts[forecaster] + state.partial_count[forecaster],
        )

    def seasonal_is_young(self, reading: int) -> bool:
        """Whether the seasonal forecaster lacks the full window of errors the choice needs."""
        state = self.state
        size = self.size + reading % BLOCK
        if not self.full:
            return True
        return bool(self.counts[SEASONAL] + state.partial_count[SEASONAL] != size)

    def add(self, forecaster: int, magnitude: float) -> None:
        if not math.isnan(magnitude):  # the forecaster had a forecast
            self.state.partial_sum[forecaster] += magnitude
            self.state.partial_count[forecaster] += 1


def _fade(state: DetectorState, layout: _Layout) -> float:
    """The weight of the tails' previous window: 1 - k / window after k readings of the
    current one (counted at the last block's end, when the tails were fitted)."""
    filled = state.readings_seen // BLOCK * BLOCK % layout.window
    return 1.0 - filled / layout.window


def _error_scale(state: DetectorState, layout: _Layout) -> float:
    """Typical absolute error of the seasonal forecasts: 1.4826 × their median magnitude."""
    row = layout.count * SEASONAL + layout.point
    return MAD_TO_STD * state.tails.quantile_of(row, 0.5, _fade(state, layout))


def _join_held(state: DetectorState, layout: _Layout) -> None:
    """The held evidence of an event whose level decision came in this block
    (`_Run._rebase_if_shifted`) into the reading look's tail, before the block's own, with
    the fade the block was judged with (readings_seen counts the block's last reading)."""
    filled = (state.readings_seen - BLOCK) // BLOCK * BLOCK % layout.window
    held = np.frombuffer(state.held, dtype=np.float32)
    evidence = np.full((layout.rows, held.shape[0]), np.nan)
    evidence[layout.point] = held
    fade = 1.0 - filled / layout.window
    state.tails.add(evidence, state.settings.tail_quantile, closes=False, fade=fade)
    state.held, state.held_joins = array("f"), 0


def _end_block(state: DetectorState, layout: _Layout) -> None:
    """A block is complete: its evidence into the tails, its errors into the choice, and
    the resolution for the next block."""
    settings = state.settings
    if state.held_joins:
        _join_held(state, layout)
    magnitudes = np.frombuffer(state.pending, dtype=np.float32).astype(np.float64)
    del state.pending[:]
    # Readings since an alarm whose level decision is still to come: their reading look's
    # evidence waits for it (`_Run._rebase_if_shifted`).
    end = state.readings_seen
    if end <= state.last_alarm + SETTLE and not math.isnan(state.alarm_level):
        since = max(0, state.last_alarm - (end - BLOCK))
        point = layout.point
        rows = magnitudes.reshape(BLOCK, layout.rows)
        state.held.extend(rows[since:, point].tolist())
        rows[since:, point] = np.nan
    state.tails.add(
        magnitudes.reshape(BLOCK, layout.rows).T,
        settings.tail_quantile,
        closes=state.readings_seen % layout.window == 0,
        fade=_fade(state, layout),
    )
    sums = np.array(state.partial_sum)[:, None]
    counts = np.array(state.partial_count, dtype=np.int64)[:, None]
    state.choice_sums = np.concatenate((state.choice_sums, sums), axis=1)[:, -layout.blocks :]
    state.choice_counts = np.concatenate((state.choice_counts, counts), axis=1)[:, -layout.blocks :]
    state.partial_sum[:] = array("d", [0.0, 0.0])
    state.partial_count[:] = array("q", [0, 0])
    if layout.drift_blocks:
        if state.drift_sums.shape[1] == layout.drift_blocks:
            # The look over the drift window that ends with this block, into its scale.
            ends = state.drift_sums.sum(axis=1) + np.array(state.partial_drift)
            means = (ends / ((layout.drift_blocks + 1) * BLOCK)).tolist()
            for forecaster in (LEVEL, SEASONAL):
                signed, wide = means[forecaster], means[2 + forecaster]
                if math.isnan(signed) or math.isnan(wide):
                    continue
                seen = state.drift_blocks[forecaster] + 1
                weight = max(1.0 / seen, 1.0 / DRIFT_MEMORY)
                for row, mean in ((forecaster, signed), (2 + forecaster, wide)):
                    state.drift_square[row] += weight * (mean * mean - state.drift_square[row])
                    state.drift_mean[row] += weight * (mean - state.drift_mean[row])
                state.drift_blocks[forecaster] = seen
        drift = np.array(state.partial_drift)[:, None]
        # A block with a reading without forecast is NaN: the look is unremarkable until
        # it leaves the window.
        state.drift_sums = np.concatenate((state.drift_sums, drift), axis=1)[
            :, -layout.drift_blocks :
        ]
        state.partial_drift[:] = array("d", [0.0] * 4)
    # The smallest step between distinct values among the readings kept (a level window).
    steps = np.diff(np.unique(np.frombuffer(state.recent, dtype=np.float64)))
    if steps.shape[0]:
        state.chunk_min = min(state.chunk_min, float(steps.min()))
    if state.readings_seen % CHUNK == 0:
        chunks = max(1, -(-settings.history // CHUNK))
        state.floor_mins = np.append(state.floor_mins, state.chunk_min)[-chunks:]
        state.floor_maxes = np.append(state.floor_maxes, state.chunk_max)[-chunks:]
        state.chunk_min, state.chunk_max = math.inf, 0.0
    step = min(float(state.floor_mins.min(initial=math.inf)), state.chunk_min)
    size = max(float(state.floor_maxes.max(initial=0.0)), state.chunk_max)
    state.floor = max(step if math.isfinite(step) else 0.0, 1e-6 * size)


def _result(
    before: DetectorState,
    verdicts: _Verdicts,
    times: np.ndarray,
    values: np.ndarray,
    real_times: bool,
    seasons: list[tuple[int, int]],
) -> DetectionResult:
    """The verdicts as a result with its events typed (the readings before the call, kept
    in the state, are the events' baseline)."""
    settings = before.settings
    expected = np.array(verdicts.expected, dtype=np.float64)
    probability = np.array(verdicts.probability, dtype=np.float64)
    unusual = np.array(verdicts.unusual, dtype=bool)
    is_anomaly = np.array(verdicts.is_anomaly, dtype=bool)
    strength = np.log(probability) / math.log(settings.sensitivity) + 0.0  # no -0.0
    score = np.where(unusual & ~is_anomaly, np.minimum(strength, JUST_UNDER_ONE), strength)
    params: dict[str, object] = {"method": "auto", **settings.as_params()}
    params["seasons"] = [{"from_reading": first, "period": period} for first, period in seasons]
    params["judged"] = int(np.count_nonzero(np.isfinite(expected)))
    result = DetectionResult.banded(
        "auto",
        params,
        expected=expected,
        half_width=np.array(verdicts.half_width, dtype=np.float64),
        score=score,
        probability=probability,
        is_anomaly=is_anomaly,
        events=[],
    )
    if not any(verdicts.is_anomaly):
        return result
    events = alarm_events(is_anomaly, unusual, strength, settings.quiet)
    shift = min(BASELINE, len(before.recent_expected))
    past_values = np.array(before.recent[len(before.recent) - shift :], dtype=np.float64)
    past_expected = np.array(before.recent_expected[len(before.recent_expected) - shift :])
    kinds = describe_all(
        np.concatenate((past_values, values)),
        np.concatenate((past_expected, np.array(verdicts.typed_against, dtype=np.float64))),
        np.array([event.start_index + shift for event in events]),
        np.array([event.peak_index + shift for event in events]),
        drifts=[verdicts.drifts.get(event.start_index) for event in events],
        times_ms=np.concatenate((np.zeros(shift, dtype=np.int64), times)) if real_times else None,
        seasonal=np.concatenate((np.zeros(shift, dtype=bool), np.array(verdicts.seasonal))),
        reading_offset=before.readings_seen - shift,
    )
    typed = [replace(event, kind=kind) for event, kind in zip(events, kinds, strict=True)]
    return replace(result, events=typed)
