"""Tail summaries: how often a series' past evidence was this large, in a few hundred bytes.

The default detector judges each kind of evidence (one forecaster's error at one horizon)
against the magnitudes the same evidence took over the last `history` readings. Keeping
those magnitudes (2,000 per tail, eight tails) would make a metric's state ~128 KB; a
tail is summarised instead by two histograms on logarithmic bins: the current window
(the readings since the last multiple of `history`) and the previous one. The tail is
read from the current window plus the previous one weighted (1 - k / history) after k
readings of the current: always `history` readings' worth, the newest at full weight,
the oldest fading out; right after a window closes it is exactly the last `history`.

Each histogram: BINS_PER_OCTAVE bins per octave (each 1/16 of its octave wide: 3-6 %),
SPAN of them around the tail's threshold (from a quarter of it to twice it), moved when
the threshold wanders out of the middle; below the bins a count and a sum, above them a
count and a sum (the mean excess over the threshold stays exact however far a spike
went); exact zeros apart (a quantised series' errors are mostly zero). A tail keeps its
first MIN_TAIL_HISTORY magnitudes as they are and places its bins around their exact
threshold, so that they need not move while the series behaves as it began.

What the detector reads from a tail, once it has MIN_TAIL_HISTORY magnitudes: the
threshold (the `quantile` quantile, inside its bin as if the bin's weight were spread
evenly) and the mean excess above it (the exponential tail's scale). Bin edges are exact
binary fractions (m = (1 + s/16) * 2^e), so a magnitude falls in the same bin on any
machine.

All tails of a detector live in one `Tails` (rows), so each step is one numpy call for
all of them. Everything here is a pure function of the arrays it is given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BINS_PER_OCTAVE = 16
# Bins kept around the threshold: two octaves below it, one above.
SPAN = 3 * BINS_PER_OCTAVE
# Where the threshold's bin is put when the bins are re-anchored, and the zone it may
# wander in before they are (half an octave either side).
CENTRE = 2 * BINS_PER_OCTAVE
DRIFT = BINS_PER_OCTAVE // 2
# A tail needs this many past values before its probabilities mean anything.
MIN_TAIL_HISTORY = 100
NO_ANCHOR = np.iinfo(np.int32).min
# Columns of Tails.masses: weights and sums outside the bins.
ZEROS, UNDER, UNDER_SUM, OVER, OVER_SUM = range(5)
CURRENT, PREVIOUS = 0, 1


def bin_of(magnitude: np.ndarray) -> np.ndarray:
    """Global bin number of each positive magnitude: 16 * e + s for (1 + s/16) * 2^e (exact)."""
    mantissa, exponent = np.frexp(magnitude)  # mantissa in [0.5, 1)
    sub = np.floor((2.0 * mantissa - 1.0) * BINS_PER_OCTAVE)
    return np.asarray(BINS_PER_OCTAVE * (exponent.astype(np.int64) - 1) + sub.astype(np.int64))


def edge(number: np.ndarray) -> np.ndarray:
    """Lower edge of global bin `number` (the upper edge of number - 1), exactly."""
    number = np.asarray(number, dtype=np.int64)
    octave, sub = np.divmod(number, BINS_PER_OCTAVE)
    return np.asarray(np.ldexp(1.0 + sub / BINS_PER_OCTAVE, octave.astype(np.int32)))


@dataclass
class Tails:
    """Rows of tail summaries (module doc); mutable, updated once per block of readings."""

    counts: np.ndarray  # (rows, 2, SPAN) float16: per window (current, previous), per bin
    masses: np.ndarray  # (rows, 2, 5) float32: zeros, under, under sum, over, over sum
    anchor: np.ndarray  # (rows,) int32: global bin number of the first bin (NO_ANCHOR: warming)
    seen: np.ndarray  # (rows,) int64: finite magnitudes ever added
    threshold: np.ndarray  # (rows,) float64: the fit in use (NaN: not fitted yet)
    excess: np.ndarray  # (rows,) float64: mean excess above the threshold
    warm: np.ndarray  # float32: the magnitudes of the warming rows so far, row after row

    @classmethod
    def empty(cls, rows: int) -> Tails:
        return cls(
            counts=np.zeros((rows, 2, SPAN), dtype=np.float16),
            masses=np.zeros((rows, 2, 5), dtype=np.float32),
            anchor=np.full(rows, NO_ANCHOR, dtype=np.int32),
            seen=np.zeros(rows, dtype=np.int64),
            threshold=np.full(rows, np.nan),
            excess=np.full(rows, np.nan),
            warm=np.zeros(0, dtype=np.float32),
        )

    def copy(self) -> Tails:
        return Tails(
            self.counts.copy(),
            self.masses.copy(),
            self.anchor.copy(),
            self.seen.copy(),
            self.threshold.copy(),
            self.excess.copy(),
            self.warm,
        )

    def add(self, magnitudes: np.ndarray, quantile: float, *, closes: bool, fade: float) -> None:
        """Add a block's magnitudes (rows × readings; NaN: none) to the current window,
        close it if `closes` (it becomes the previous one), and refit with the previous
        window weighted `fade`."""
        # Empty rows and bins divide by zero on the way; their results are not used.
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            finite = np.isfinite(magnitudes)
            binned = finite & (self.anchor != NO_ANCHOR)[:, None]
            before = self.seen
            self.seen = before + finite.sum(axis=1)
            counts = self.counts[:, CURRENT].astype(np.float64)
            masses = self.masses[:, CURRENT].astype(np.float64)
            if (self.anchor == NO_ANCHOR).any():
                self._warm_up(magnitudes, finite, before, counts, masses, quantile)
            _bin(np.where(binned, magnitudes, 0.0), binned, self.anchor, counts, masses)
            window = PREVIOUS if closes else CURRENT
            self.counts, self.masses = self.counts.copy(), self.masses.copy()
            self.counts[:, window] = counts
            self.masses[:, window] = masses
            if closes:
                self.counts[:, CURRENT] = 0
                self.masses[:, CURRENT] = 0
            self._refit(quantile, fade)

    def _warm_up(
        self,
        magnitudes: np.ndarray,
        finite: np.ndarray,
        before: np.ndarray,
        counts: np.ndarray,
        masses: np.ndarray,
        quantile: float,
    ) -> None:
        """Warming rows keep the block's magnitudes; those that now have MIN_TAIL_HISTORY get
        their bins, placed around the exact threshold of what they kept, all of it binned
        (into the current window's `counts` and `masses`)."""
        still: list[np.ndarray] = []
        at = 0
        for row in np.flatnonzero(self.anchor == NO_ANCHOR).tolist():
            kept = np.concatenate(
                (self.warm[at : at + before[row]], magnitudes[row][finite[row]].astype(np.float32))
            )
            at += int(before[row])
            if self.seen[row] < MIN_TAIL_HISTORY:
                still.append(kept)
                continue
            values = kept.astype(np.float64)
            threshold = float(np.quantile(values, quantile))
            if threshold <= 0:  # mostly zeros: the bins go where the positive ones are
                positive = values[values > 0]
                threshold = float(np.quantile(positive, quantile)) if positive.shape[0] else 1.0
            anchor = int(bin_of(np.array([threshold]))[0]) - CENTRE
            self.anchor[row] = anchor
            _bin(
                values[None, :],
                np.ones((1, values.shape[0]), dtype=bool),
                np.array([anchor]),
                counts[row : row + 1],
                masses[row : row + 1],
            )
        self.warm = np.concatenate(still) if still else self.warm[:0]

    def weights(self, fade: float) -> tuple[np.ndarray, np.ndarray]:
        """Counts and masses as the tail reads them: the current window plus the previous
        one weighted `fade` (float64)."""
        counts = self.counts.astype(np.float64)
        masses = self.masses.astype(np.float64)
        return counts[:, CURRENT] + fade * counts[:, PREVIOUS], masses[:, CURRENT] + (
            fade * masses[:, PREVIOUS]
        )

    def _refit(self, quantile: float, fade: float) -> None:
        """Threshold and mean excess of every row with enough history; bins moved first
        where the threshold wandered out of the middle (rarely: the noise changed)."""
        ready = self.anchor != NO_ANCHOR
        share = np.array([1.0 - quantile])
        for _ in range(3):  # a moved row is read again; twice is the most seen
            counts, masses = self.weights(fade)
            edges = edge(self.anchor.astype(np.int64)[:, None] + np.arange(SPAN + 1))
            at = _quantiles(counts, masses, edges, share)[:, 0]
            # Out of the middle: in a bin DRIFT or more away from the centre one.
            wandered = (at < edges[:, CENTRE - DRIFT + 1]) | (at >= edges[:, CENTRE + DRIFT])
            moved = ready & (at > 0) & wandered
            if not moved.any():
                break
            for row in np.flatnonzero(moved).tolist():
                self._reanchor(row, int(bin_of(at[row : row + 1])[0]))
        self.threshold = np.where(ready, at, np.nan)
        self.excess = np.where(ready, _mean_excess(counts, masses, edges, at), np.nan)

    def _reanchor(self, row: int, place: int) -> None:
        """Both windows' bins of a row moved so that bin `place` is CENTRE (`_moved`)."""
        anchor = int(self.anchor[row])
        for window in (CURRENT, PREVIOUS):
            counts, masses = _moved(
                self.counts[row, window].astype(np.float64),
                self.masses[row, window].astype(np.float64),
                anchor,
                place - CENTRE,
            )
            self.counts[row, window] = counts
            self.masses[row, window] = masses
        self.anchor[row] = place - CENTRE

    def quantile_of(self, row: int, quantile: float, fade: float) -> float:
        """The row's `quantile` quantile of the magnitudes it remembers."""
        if self.anchor[row] == NO_ANCHOR:
            return 0.0
        counts, masses = self.weights(fade)
        edges = edge(self.anchor.astype(np.int64)[:, None] + np.arange(SPAN + 1))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            found = _quantiles(counts, masses, edges, np.array([1.0 - quantile]))
        return float(found[row, 0])


def _quantiles(
    counts: np.ndarray, masses: np.ndarray, edges: np.ndarray, shares: np.ndarray
) -> np.ndarray:
    """Per row, the magnitudes with each of `shares` of its weight at or above them.

    Inside the bins a bin's weight is read as spread evenly over it; above them, the mass
    there as an exponential tail from their top with its mean; below them, as spread
    evenly from zero to their bottom; 0 where the zeros alone reach it.
    """
    zeros, under, over = masses[:, ZEROS], masses[:, UNDER], masses[:, OVER]
    total = zeros + under + counts.sum(axis=1) + over
    target = shares[None, :] * total[:, None]  # (rows, shares): weight above the magnitude
    above = _above(counts, over)
    number = (above[:, :SPAN, None] >= target[:, None, :]).sum(axis=1) - 1
    inside = np.clip(number, 0, SPAN - 1)
    rows = np.arange(counts.shape[0])[:, None]
    low, high = edges[rows, inside], edges[rows, inside + 1]
    higher, weight = above[rows, inside + 1], counts[rows, inside]
    at = high - (target - higher) / weight * (high - low)
    bottom, top = edges[:, :1], edges[:, SPAN:]
    mean_over = np.maximum(masses[:, OVER_SUM] / over - top[:, 0], 0.0)[:, None]
    at_over = top + mean_over * np.log(over[:, None] / target)
    at_under = bottom * (1.0 - (target - above[:, :1]) / under[:, None])
    at = np.where(over[:, None] >= target, at_over, at)
    at = np.where((number < 0) & (under[:, None] > 0), at_under, at)
    at = np.where((number < 0) & ((total - zeros)[:, None] < target), 0.0, at)
    return np.asarray(np.where(total[:, None] > 0, at, 0.0), dtype=np.float64)


def _mean_excess(
    counts: np.ndarray, masses: np.ndarray, edges: np.ndarray, at: np.ndarray
) -> np.ndarray:
    """Per row, the mean of (magnitude - at) over the weight above `at` (0 if none)."""
    low, high = edges[:, :-1], edges[:, 1:]
    threshold = at[:, None]
    # Each bin's weight spread evenly over it: the part above `at` and its mean.
    weight = counts * np.clip((high - threshold) / (high - low), 0.0, 1.0)
    middle = np.maximum(low, threshold) / 2 + high / 2
    excess = (weight * (middle - threshold)).sum(axis=1)
    weight_above = weight.sum(axis=1)
    # The mass above the bins (it may hold the threshold: then only its part above).
    over, over_sum, top = masses[:, OVER], masses[:, OVER_SUM], edges[:, SPAN]
    mean_over = np.maximum(over_sum / over - top, 0.0)
    share = np.where(at > top, np.exp(-(at - top) / mean_over), 1.0)
    share = np.where((over > 0) & np.isfinite(share), share, 0.0)
    excess += np.where(at > top, over * share * mean_over, over_sum - over * at)
    weight_above += over * share
    # At a threshold of 0, the magnitudes below the bins lie above it too.
    zero = at == 0.0
    excess += np.where(zero, masses[:, UNDER_SUM], 0.0)
    weight_above += np.where(zero, masses[:, UNDER], 0.0)
    return np.asarray(np.where(weight_above > 0, excess / weight_above, 0.0))


def _moved(
    counts: np.ndarray, masses: np.ndarray, anchor: int, new_anchor: int
) -> tuple[np.ndarray, np.ndarray]:
    """One window's bins starting at bin `new_anchor` instead of `anchor`. Bins that fall
    outside join the masses there (count and sum); the masses outside that the new bins
    now reach are spread into them as `_quantiles` reads them (exponential above, even
    below)."""
    old_bottom, old_top = (float(x) for x in edge(np.array([anchor, anchor + SPAN])))
    edges = edge(np.arange(SPAN + 1) + new_anchor)
    low, high = edges[:-1], edges[1:]
    fresh = np.zeros(SPAN)
    if masses[OVER] > 0:  # an exponential from the old top with its mean excess
        mean = max(masses[OVER_SUM] / masses[OVER] - old_top, 1e-300)
        tail = np.exp(-np.maximum(edges - old_top, 0.0) / mean)
        moved = masses[OVER] * np.where(high > old_top, tail[:-1] - tail[1:], 0.0)
        fresh += moved
        masses[OVER_SUM] -= float((moved * (low + high) / 2).sum())
        masses[OVER] -= float(moved.sum())
    if masses[UNDER] > 0:  # evenly from zero to the old bottom
        overlap = np.clip(np.minimum(high, old_bottom) - low, 0.0, None) / old_bottom
        moved = masses[UNDER] * np.where(low < old_bottom, overlap, 0.0)
        fresh += moved
        masses[UNDER_SUM] -= float((moved * (low + high) / 2).sum())
        masses[UNDER] -= float(moved.sum())
    old = np.arange(SPAN) + anchor
    middles = (edge(old) + edge(old + 1)) / 2
    offset = old - new_anchor
    inside = (offset >= 0) & (offset < SPAN)
    fresh[offset[inside]] += counts[inside]
    below, beyond = offset < 0, offset >= SPAN
    masses[UNDER] += counts[below].sum()
    masses[UNDER_SUM] += (counts[below] * middles[below]).sum()
    masses[OVER] += counts[beyond].sum()
    masses[OVER_SUM] += (counts[beyond] * middles[beyond]).sum()
    masses[[UNDER, UNDER_SUM, OVER, OVER_SUM]] = np.maximum(
        masses[[UNDER, UNDER_SUM, OVER, OVER_SUM]], 0.0
    )
    return fresh, masses


def _bin(
    values: np.ndarray,
    known: np.ndarray,
    anchor: np.ndarray,
    counts: np.ndarray,
    masses: np.ndarray,
) -> None:
    """Add magnitudes (rows × any, where `known`) at weight 1 into counts and masses (in place)."""
    rows = counts.shape[0]
    positive = known & (values > 0)
    masses[:, ZEROS] += (known & (values == 0)).sum(axis=1)
    number = np.where(positive, bin_of(np.where(positive, values, 1.0)), 0)
    offset = number - anchor[:, None].astype(np.int64)
    under = positive & (offset < 0)
    over = positive & (offset >= SPAN)
    inside = positive & ~under & ~over
    masses[:, UNDER] += under.sum(axis=1)
    masses[:, UNDER_SUM] += np.where(under, values, 0.0).sum(axis=1)
    masses[:, OVER] += over.sum(axis=1)
    masses[:, OVER_SUM] += np.where(over, values, 0.0).sum(axis=1)
    flat = (np.arange(rows)[:, None] * SPAN + offset)[inside]
    counts += np.bincount(flat, minlength=rows * SPAN).reshape(rows, SPAN)


def _above(counts: np.ndarray, over: np.ndarray) -> np.ndarray:
    """Per row, the weight in bins >= b and above them (column SPAN: above them alone)."""
    above = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1] + over[:, None]
    return np.concatenate((above, over[:, None]), axis=1)
