"""What a window covers: its spans in time, and which timestamps fall in one.

A weekly window recurs in its own time zone (zoneinfo, the IANA database), so "Sunday
02:00-04:00 Europe/Berlin" stays at 02:00 local time across a daylight-saving change: in
UTC it moves by an hour. A local time a change skips (02:30 on the spring-forward night)
is taken as if the clock had not changed yet, and one it repeats (02:30 on the fall-back
night) as its first occurrence: Python's fold=0 (PEP 495).
"""

from __future__ import annotations

import heapq
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from common.epoch import optional_ms, to_epoch_ms
from common.errors import (
    ConflictError,
    DependencyUnavailableError,
    InvalidRequestError,
    NotFoundError,
)
from common.graph.params import MIN_MS
from common.maintenance.models import (
    WEEKDAYS,
    MaintenanceWindow,
    RelearnTarget,
    WeeklySchedule,
    WindowSpec,
)
from common.maintenance.repository import MaintenanceRepository

log = logging.getLogger(__name__)

DAY = timedelta(days=1)
DAY_MS = 24 * 3600 * 1000
# How far back a weekly window without a start mutes anomalies stored before it was made.
MUTE_LOOKBACK_MS = 366 * DAY_MS
# At most this many spans of a window are muted at once (a year of a daily weekly window).
MUTE_SPANS_MAX = 400
Span = tuple[int, int]  # [start_ms, end_ms)


def time_zone(name: str) -> ZoneInfo:
    """The IANA zone `name`; InvalidRequestError naming it when there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidRequestError(
            f"weekly.time_zone: {name!r} is not an IANA time zone name (e.g. Europe/Berlin, UTC)"
        ) from exc


def check(spec: WindowSpec) -> None:
    """InvalidRequestError saying what to fix, unless `spec` is a window that can cover
    something."""
    if spec.service_id is not None and spec.metric_id is not None:
        raise InvalidRequestError(
            "give service_id or metric_id, not both (neither: all of your metrics)"
        )
    if spec.weekly is None and (spec.start_ms is None or spec.end_ms is None):
        raise InvalidRequestError("a one-off window needs start and end (or give weekly)")
    if spec.start_ms is not None and spec.end_ms is not None and spec.start_ms >= spec.end_ms:
        raise InvalidRequestError("end must be after start")
    if spec.weekly is not None:
        if not spec.weekly.days:
            raise InvalidRequestError("weekly.days: name at least one day (mon … sun)")
        if len(set(spec.weekly.days)) != len(spec.weekly.days):
            raise InvalidRequestError("weekly.days: a day is named twice")
        time_zone(spec.weekly.time_zone)


def spec_of(window: MaintenanceWindow) -> WindowSpec:
    return WindowSpec(
        reason=window.reason,
        start_ms=optional_ms(window.start),
        end_ms=optional_ms(window.end),
        weekly=window.weekly,
        service_id=window.service_id,
        metric_id=window.metric_id,
    )


class ReachQueue(Protocol):
    """Where a window's reach into the past is sent (common.queue.JobQueue)."""

    def enqueue_window_reach(self, window_id: str) -> None: ...


def create_window(
    repository: MaintenanceRepository,
    queue: ReachQueue,
    owner_id: str,
    spec: WindowSpec,
    max_windows: int,
) -> MaintenanceWindow:
    check(spec)
    _check_target(repository, owner_id, spec)
    window = repository.create(owner_id, spec, max_windows)
    _ask_reach(queue, window.id)
    return window


def update_window(
    repository: MaintenanceRepository,
    queue: ReachQueue,
    owner_id: str,
    window: MaintenanceWindow,
    changes: dict[str, Any],
) -> MaintenanceWindow:
    """The window with `changes` (WindowSpec's fields) merged in, checked whole, stored."""
    spec = replace(spec_of(window), **changes)
    check(spec)
    _check_target(repository, owner_id, spec, kept_by=window)
    updated = repository.update(owner_id, window.id, spec)
    if updated is None:
        raise NotFoundError(f"maintenance window {window.id} not found")
    if updated.reach_pending:  # it covers something else now (a new reason alone: not)
        _ask_reach(queue, updated.id)
    return updated


def delete_window(
    repository: MaintenanceRepository,
    queue: ReachQueue,
    owner_id: str,
    window: MaintenanceWindow,
) -> None:
    """Delete the window; the readings it covered are learnt from again (its anomalies
    stay muted: they were in maintenance when they were stored)."""
    if repository.delete(owner_id, window.id):
        _ask_reach(queue, window.id)


def _ask_reach(queue: ReachQueue, window_id: str) -> None:
    """Queue the window's reach into the past (common.maintenance.reach). The change is
    stored already, with its reach pending: if the queue cannot be reached, the periodic
    look for lost reaches queues it later, and the request still succeeds."""
    try:
        queue.enqueue_window_reach(window_id)
    except DependencyUnavailableError:
        log.warning(
            "maintenance window %s: its reach into the past could not be queued now; "
            "the look for lost reaches will queue it",
            window_id,
        )


def relearn_target(window: MaintenanceWindow) -> RelearnTarget:
    """The metrics the window covers, from its first covered reading (a weekly window
    without a start: from the beginning)."""
    start_ms = optional_ms(window.start)
    return RelearnTarget(
        window.service_id, window.metric_id, MIN_MS if start_ms is None else start_ms
    )


def past_spans(window: MaintenanceWindow, now: int) -> list[Span]:
    """The spans of the window whose anomalies may be stored already: a one-off window
    whole; a weekly one's of the last MUTE_LOOKBACK_MS (from its start, if later) up to a
    day ahead (readings can be stamped ahead of the clock)."""
    if window.weekly is None:
        return spans(window, MIN_MS, 2**62)
    return spans(window, now - MUTE_LOOKBACK_MS, now + DAY_MS, limit=MUTE_SPANS_MAX)


def _check_target(
    repository: MaintenanceRepository,
    owner_id: str,
    spec: WindowSpec,
    kept_by: MaintenanceWindow | None = None,
) -> None:
    """NotFoundError unless the service or metric `spec` names is the owner's; a window
    edited (`kept_by`) that keeps a target deleted since: ConflictError saying what to do
    (a window outlives its metric or service, muting nothing)."""
    if repository.target_owned(owner_id, spec.service_id, spec.metric_id):
        return
    what = f"service {spec.service_id}" if spec.service_id else f"metric {spec.metric_id}"
    if kept_by is not None and (kept_by.service_id, kept_by.metric_id) == (
        spec.service_id,
        spec.metric_id,
    ):
        raise ConflictError(
            f"this window's {what} was deleted: delete the window, or give it another "
            "target (metric_id or service_id; both null: all of your metrics)"
        )
    raise NotFoundError(f"{what} not found")


def _weekly_span(day: date, weekly: WeeklySchedule, zone: ZoneInfo) -> Span | None:
    """The span of the weekly window that starts on local `day`, if it starts on that day."""
    if WEEKDAYS[day.weekday()] not in weekly.days:
        return None
    start = datetime.combine(day, weekly.start_time, zone)
    end_day = day if weekly.end_time > weekly.start_time else day + DAY
    end = datetime.combine(end_day, weekly.end_time, zone)
    start_ms, end_ms = to_epoch_ms(start), to_epoch_ms(end)
    return (start_ms, end_ms) if end_ms > start_ms else None


def spans(window: MaintenanceWindow, from_ms: int, to_ms: int, limit: int = 10_000) -> list[Span]:
    """The window's spans that overlap [from_ms, to_ms), in time order, at most `limit`
    (clipped to the window's own start and end)."""
    return list(islice(iter_spans(window, from_ms, to_ms), limit))


def iter_spans(window: MaintenanceWindow, from_ms: int, to_ms: int) -> Iterator[Span]:
    """The window's spans that overlap [from_ms, to_ms), in time order, each worked out
    when it is asked for (a weekly window over centuries has millions)."""
    start_ms, end_ms = optional_ms(window.start), optional_ms(window.end)
    low = from_ms if start_ms is None else max(from_ms, start_ms)
    high = to_ms if end_ms is None else min(to_ms, end_ms)
    if low >= high:
        return
    if window.weekly is None:
        yield (low, high)
        return
    zone = time_zone(window.weekly.time_zone)
    # From the day before: a window that starts the evening before can run past midnight.
    day = datetime.fromtimestamp(low / 1000, UTC).astimezone(zone).date() - DAY
    last = datetime.fromtimestamp(high / 1000, UTC).astimezone(zone).date()
    while day <= last:
        span = _weekly_span(day, window.weekly, zone)
        if span is not None and span[0] < high and span[1] > low:
            yield (max(span[0], low), min(span[1], high))
        day += DAY


def applies(window: MaintenanceWindow, metric_id: str, service_id: str) -> bool:
    """Whether an owner's window covers this metric of theirs (its own, its service's, or
    one for all of the owner's metrics)."""
    if window.metric_id is not None:
        return window.metric_id == metric_id
    return window.service_id is None or window.service_id == service_id


def covered(
    windows: Sequence[MaintenanceWindow],
    timestamps_ms: np.ndarray,
    whens: tuple[object, ...] | None = None,
) -> np.ndarray:
    """For each timestamp (epoch ms), whether one of `windows` covers it. `whens`: the
    windows' `schedules`, when the caller asks for many metrics with the same windows."""
    timestamps_ms = np.asarray(timestamps_ms, dtype=np.int64)
    inside = np.zeros(len(timestamps_ms), dtype=bool)
    if not windows or len(timestamps_ms) == 0:
        return inside
    whens = schedules(windows) if whens is None else whens
    for low, high in _stretches(timestamps_ms):
        starts, ends = _merged_spans(windows, whens, low, high)
        here = (low <= timestamps_ms) & (timestamps_ms < high)
        before = np.searchsorted(starts, timestamps_ms[here], side="right") - 1
        hit = before >= 0
        hit[hit] = timestamps_ms[here][hit] < ends[before[hit]]
        inside[here] = hit
    return inside


def _stretches(timestamps_ms: np.ndarray) -> list[Span]:
    """The whole days holding the timestamps, as spans of consecutive days (a gap of a day
    or two joined): a window's spans are worked out day by day, and readings of 1970 and of
    today are two days' work, not 20,000. Readings on most days of their range (a sweep's):
    one stretch, without looking."""
    first, last = int(timestamps_ms.min()) // DAY_MS, int(timestamps_ms.max()) // DAY_MS
    if last - first <= max(31, 2 * len(timestamps_ms)):
        return [(first * DAY_MS, (last + 1) * DAY_MS)]
    days = np.unique(timestamps_ms // DAY_MS)
    breaks = np.flatnonzero(np.diff(days) > 2)
    firsts = np.concatenate(([days[0]], days[breaks + 1]))
    lasts = np.concatenate((days[breaks], [days[-1]]))
    return [(int(a) * DAY_MS, (int(b) + 1) * DAY_MS) for a, b in zip(firsts, lasts, strict=True)]


# The merged spans of a set of windows over a span of whole days, by what the windows
# cover when (so an edit is never answered from before it): a sweep's batch asks for each
# metric with the windows of its owner that apply to it, mostly the same ones over the
# same days. Worked out window by window for each metric, an owner with 1,000 weekly
# windows cost 7-9 ms a metric judged (96-99 ms with a week of history), against 0.5 ms
# for all the rest of a sweep's work on it (tests/bench/bench_windows_covered.py).
_MERGED_CACHED = 256
_merged: dict[tuple[object, ...], tuple[np.ndarray, np.ndarray]] = {}
_merged_lock = threading.Lock()


def schedules(windows: Sequence[MaintenanceWindow]) -> tuple[object, ...]:
    """What decides the windows' spans, one entry a window (the cache key of `covered`)."""
    return tuple(_when(window) for window in windows)


def _when(window: MaintenanceWindow) -> tuple[object, ...]:
    """What decides a window's spans."""
    weekly = window.weekly
    if weekly is None:
        return (window.start, window.end)
    schedule = (tuple(weekly.days), weekly.start_time, weekly.end_time, weekly.time_zone)
    return (window.start, window.end, *schedule)


def _merged_spans(
    windows: Sequence[MaintenanceWindow], whens: tuple[object, ...], low: int, high: int
) -> tuple[np.ndarray, np.ndarray]:
    """The union of the windows' spans within [low, high) as disjoint spans in time order:
    their starts and ends. `whens`: what each window covers when (_when)."""
    key = (low, high, whens)
    with _merged_lock:
        found = _merged.get(key)
    if found is not None:
        return found
    # Merged as they are worked out (each window's spans come in time order): the union is
    # kept, never every window's spans at once (1,000 daily windows over decades: millions).
    starts: list[int] = []
    ends: list[int] = []
    for start, end in heapq.merge(*(iter_spans(window, low, high) for window in windows)):
        if ends and start <= ends[-1]:
            ends[-1] = max(ends[-1], end)
        else:
            starts.append(start)
            ends.append(end)
    merged = (np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64))
    with _merged_lock:  # a web process's threads may ask at once
        if len(_merged) >= _MERGED_CACHED:
            _merged.pop(next(iter(_merged)))  # the oldest
        _merged[key] = merged
    return merged


def metric_spans(
    windows: Sequence[MaintenanceWindow], from_ms: int, to_ms: int, limit: int
) -> tuple[list[tuple[Span, MaintenanceWindow]], bool]:
    """The spans of `windows` within [from_ms, to_ms) in time order, at most `limit`, and
    whether there were more. Merged as they are worked out, so the work is about `limit`
    spans whatever the range: `limit` of each window, then sorted, was up to 10,000 spans a
    window for every one of an owner's 1,000 (50 daily windows over 170 years: 8 s of a
    web process for one request)."""

    def of(window: MaintenanceWindow) -> Iterator[tuple[Span, MaintenanceWindow]]:
        for span in iter_spans(window, from_ms, to_ms):
            yield span, window

    merged = heapq.merge(*map(of, windows), key=lambda item: (item[0], item[1].id))
    found = list(islice(merged, limit + 1))
    return found[:limit], len(found) > limit
