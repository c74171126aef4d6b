"""A metric's series for charts: its readings, or equal time buckets with min and max each.

A chart a few thousand pixels wide gains nothing from 100,000 points, but an average per
pixel would flatten a one-reading spike; the lowest and highest value of each bucket keep
it. The buckets themselves are aggregated by the graph engine
(ReadingRepository.window_buckets); `chart_series` picks the window and the slots, the
rest of this module is the arithmetic around them (and around a band laid on the same
slots, see common.jobs.band), pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.epoch import to_epoch_ms
from common.metrics.models import Metric, ReadingSeries
from common.metrics.repository import ReadingRepository


@dataclass(frozen=True)
class ChartSeries:
    """Columns of equal length, one entry per slot: a reading, or a bucket of readings."""

    metric_id: str
    start_ms: int | None  # the window (end exclusive); None: no readings to bound it
    end_ms: int | None
    span: tuple[int, int] | None  # the window read; None: nothing to read
    readings: int  # readings in the window
    # (first slot's time, bucket width) when the window is sent as buckets, else None.
    bucketing: tuple[int, int] | None
    slot_keys: np.ndarray  # bucket numbers, or the readings' timestamps
    timestamps_ms: np.ndarray  # the reading's timestamp, or the bucket's start
    low: np.ndarray  # the reading's value, or the bucket's lowest
    high: np.ndarray
    count: np.ndarray  # readings in the slot


def chart_series(
    readings: ReadingRepository,
    metric: Metric,
    start_ms: int | None,
    end_ms: int | None,
    points: int,
) -> ChartSeries:
    """The readings themselves when the window holds at most `points`, else `points` equal
    time buckets with each one's min and max (so a spike shows). An open end stops after
    the newest reading (the metric knows it), or at the start when that is later (an empty
    window, not one that ends before it starts); an open start is the oldest reading."""
    latest = metric.latest_reading
    window_end = end_ms
    if window_end is None and latest is not None:
        window_end = to_epoch_ms(latest.timestamp) + 1
        if start_ms is not None:
            window_end = max(window_end, start_ms)
    window_start = start_ms
    if window_start is None and latest is not None:
        window_start = readings.first_timestamp(metric.id, None, end_ms)
    span = None
    if window_start is not None and window_end is not None and window_start < window_end:
        span = (window_start, window_end)
    count_in_window = 0
    if span is not None:
        bucket_ms = bucket_width(span[0], span[1], points)
        buckets = readings.window_buckets(metric.id, span[0], span[1], bucket_ms)
        count_in_window = int(buckets.readings.sum())
        if count_in_window > points:
            return ChartSeries(
                metric_id=metric.id,
                start_ms=window_start,
                end_ms=window_end,
                span=span,
                readings=count_in_window,
                bucketing=(span[0], bucket_ms),
                slot_keys=buckets.index,
                timestamps_ms=span[0] + buckets.index * bucket_ms,
                low=buckets.low,
                high=buckets.high,
                count=buckets.readings,
            )
    # Few enough to send as they are (the bucket query only counted them).
    window = ReadingSeries(ids=[], timestamps_ms=np.array([], np.int64), values=np.array([]))
    if span is not None and count_in_window:
        window = readings.read_window(metric.id, span[0], span[1])
    return ChartSeries(
        metric_id=metric.id,
        start_ms=window_start,
        end_ms=window_end,
        span=span,
        readings=len(window),
        bucketing=None,
        slot_keys=window.timestamps_ms,
        timestamps_ms=window.timestamps_ms,
        low=window.values,
        high=window.values,
        count=np.ones(len(window), dtype=np.int64),
    )


@dataclass(frozen=True)
class SlotBand:
    """A per-reading result gathered onto a series' slots: the mean expected value, the
    lowest lower bound, the highest upper bound and the highest score (NaN: not judged)."""

    expected: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    score: np.ndarray


def band_on_slots(
    series: ChartSeries,
    timestamps_ms: np.ndarray,
    expected: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    score: np.ndarray,
) -> SlotBand:
    """Per-reading columns (at `timestamps_ms`) gathered onto the series' slots."""
    if series.bucketing is None:
        keys = timestamps_ms
    else:
        first_ms, bucket_ms = series.bucketing
        keys = (timestamps_ms - first_ms) // bucket_ms
    positions = slot_positions(series.slot_keys, keys)
    # Points outside the window do not count: the last bucket (its width rounded up) can
    # reach past the window's end.
    start_ms, end_ms = series.span or (0, 0)
    positions[(timestamps_ms < start_ms) | (timestamps_ms >= end_ms)] = -1
    slots = len(series.slot_keys)
    return SlotBand(
        expected=slot_mean(positions, expected, slots),
        lower=slot_extreme(positions, lower, slots, highest=False),
        upper=slot_extreme(positions, upper, slots, highest=True),
        score=slot_extreme(positions, score, slots, highest=True),
    )


def bucket_width(start_ms: int, end_ms: int, buckets: int) -> int:
    """The width in ms of `buckets` equal buckets covering [start_ms, end_ms), at least 1."""
    return max(1, -(-(end_ms - start_ms) // buckets))


def slot_positions(slot_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """For each key, its position in the sorted `slot_keys`, or -1 where it has none.

    Slots are the chart's x values (bucket numbers, or reading timestamps when the series
    is not downsampled); keys are where other per-reading columns (a detection result) fall.
    """
    slot_keys = np.asarray(slot_keys, dtype=np.int64)
    keys = np.asarray(keys, dtype=np.int64)
    positions = np.searchsorted(slot_keys, keys)
    inside = positions < len(slot_keys)
    matched = np.zeros(len(keys), dtype=bool)
    matched[inside] = slot_keys[positions[inside]] == keys[inside]
    return np.where(matched, positions, -1)


def slot_mean(positions: np.ndarray, values: np.ndarray, slots: int) -> np.ndarray:
    """Mean of the finite values falling in each slot; NaN for a slot with none."""
    kept = (positions >= 0) & np.isfinite(values)
    sums = np.bincount(positions[kept], weights=values[kept], minlength=slots)
    counts = np.bincount(positions[kept], minlength=slots)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def slot_extreme(
    positions: np.ndarray, values: np.ndarray, slots: int, highest: bool
) -> np.ndarray:
    """Lowest (or highest) finite value falling in each slot; NaN for a slot with none."""
    kept = (positions >= 0) & np.isfinite(values)
    out = np.full(slots, -np.inf if highest else np.inf)
    (np.maximum if highest else np.minimum).at(out, positions[kept], values[kept])
    out[~np.isfinite(out)] = np.nan
    return out
