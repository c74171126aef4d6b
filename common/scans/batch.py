"""One batch of a sweep (the `neonomaly.scan-batch` task): judge the new readings of up to
SCAN_BATCH_METRICS metrics, about SCAN_BATCH_READINGS readings in all.

For the whole batch: one Redis round trip loads the detector states (of the metrics whose
lease the batch's sweep holds: common.scans.states), one graph read returns each metric's
readings after the newest one judged and its own detection settings (SCAN_READ_NEW: no
read per metric), the states advance, the anomalies found are stored and put into
incidents, one graph write records on each metric how far it was judged
(SAVE_SCAN_MARKS: what makes a later append at or before it late), one
Redis round trip saves the states (compare-and-set) and releases the leases, and one
script adds the batch's counts to the sweep's record. Metrics whose state is rebuilt
(common.scans.judging) read their history in groups of at most SCAN_BATCH_READINGS.

So a worker running a batch holds at most 2 × SCAN_BATCH_READINGS readings (the new ones
and one group of histories) and the states of SCAN_BATCH_METRICS metrics (16 KB each at
most), whatever the size of the fleet.

Safe to run again (a retry, a redelivery): the same sweep holds the same leases, and what
it writes is idempotent (one anomaly per reading; marks and states overwritten alike).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from common.anomalies.lessons import Lessons
from common.anomalies.models import Lesson
from common.anomalies.service import anomalies_found
from common.detection import DetectionError
from common.detection.adaptive import DetectorState
from common.epoch import now_ms
from common.incidents.recording import RecordingGraph, record_anomalies
from common.maintenance.models import MaintenanceWindow
from common.maintenance.service import applies, covered, schedules
from common.metrics.models import ReadingSeries, ScanMark, ScanRead
from common.metrics.repository import ReadingRepository
from common.own_metrics import SCAN_LAG, SWEEP_DURATION, SWEEP_METRICS_JUDGED
from common.scans.judging import (
    DEFAULT_CADENCE_MS,
    NOTHING_TAUGHT,
    NotJudged,
    ScanDetector,
    ScanDetectors,
    Teaching,
    Verdicts,
    advance_state,
    cadence_of,
    history_start,
    horizon_ms,
    judge_history,
    load_state,
)
from common.scans.records import BatchTally, SweepRecords
from common.scans.states import LoadedState, ScanStates, StateSave
from common.settings import Settings

log = logging.getLogger(__name__)


class ScanGraph(RecordingGraph, Protocol):
    """The repositories a batch uses (common.stores.Repositories has them all)."""

    @property
    def readings(self) -> ReadingRepository: ...


@dataclass(frozen=True)
class BatchEntry:
    """A metric of a batch, with the readings its sweep expects it to judge."""

    metric_id: str
    owner_id: str
    estimate: int
    rebuild: bool  # the sweep found no state to continue: the estimate is its history's size

    def as_message(self) -> list[object]:
        return [self.metric_id, self.owner_id, self.estimate, self.rebuild]

    @classmethod
    def of_message(cls, raw: Sequence[object]) -> BatchEntry:
        metric_id, owner_id, estimate, rebuild = raw
        return cls(str(metric_id), str(owner_id), int(str(estimate)), bool(rebuild))


@dataclass(frozen=True)
class Advance:
    """Judge the new readings from the saved state."""

    state: DetectorState


@dataclass(frozen=True)
class Rebuild:
    """Judge the metric's history from no state; store anomalies from `store_from_ms` on
    (None: every one found: the metric was never judged)."""

    store_from_ms: int | None


@dataclass(frozen=True)
class Judged:
    read: ScanRead
    detector: ScanDetector
    verdicts: Verdicts
    after_ms: int  # the readings judged are the ones after this, up to the last of them
    store_from_ms: int | None


@dataclass
class BatchWork:
    """What the batch found: metrics judged, notes to show, metrics to look at again."""

    judged: list[Judged] = field(default_factory=list)
    notes: list[tuple[ScanRead, str]] = field(default_factory=list)
    behind: set[str] = field(default_factory=set)
    tally: BatchTally = field(default_factory=BatchTally)


def plan_metric(
    read: ScanRead, loaded: LoadedState, detector: ScanDetector, tally: BatchTally
) -> Advance | Rebuild | None:
    """How to judge a metric (module doc of common.scans.judging); None: nothing to do."""
    judged_through = read.judged_through_ms
    if judged_through is None:
        return Rebuild(None)
    with tally.timing("state_codec"):
        state = load_state(detector, loaded.state)
    if state is None:  # none kept, corrupt, other settings (rolling/STL: never one)
        return Rebuild(judged_through + 1)
    last = state.last_timestamp_ms
    if last is None or last != judged_through:
        # A batch wrote the marks and died before saving the state: judge again what
        # follows the older of the two.
        return Rebuild(min(judged_through, judged_through if last is None else last) + 1)
    if read.late_from_ms is not None:
        return Rebuild(read.late_from_ms)  # readings arrived at or before the last judged
    boundary = read.compacted_through_ms
    if boundary is not None and judged_through + 1 < boundary:
        # Scans stopped for longer than the raw window: readings after the last judged were
        # compacted before a sweep saw them, and SCAN_READ_NEW reads raw readings only.
        return Rebuild(judged_through + 1)
    if not len(read.readings):
        return None
    return Advance(state)


def judge_batch(
    sweep_id: str,
    sweep_started_ms: int,
    entries: Sequence[BatchEntry],
    graph: ScanGraph,
    states: ScanStates,
    records: SweepRecords,
    settings: Settings,
    worker: str,
) -> BatchTally:
    """Judge the batch's metrics (module doc) and add to the sweep's record; its counts."""
    detectors = ScanDetectors(settings)
    horizon = horizon_ms(now_ms())
    work = BatchWork()
    timing = work.tally.timing
    with timing("redis"):
        loaded = states.load([entry.metric_id for entry in entries], sweep_id)
    # A metric whose lease is not its sweep's any more belongs to another sweep now.
    ours = [entry for entry in entries if loaded[entry.metric_id].leased]
    # An even share of the batch's readings each: the sweep packed metrics so that none
    # expects more (one with more is judged that far, and further by the next sweep).
    cap = max(1, settings.scan_batch_readings // max(1, len(ours)))
    with timing("read_new"):
        owners = {entry.metric_id: entry.owner_id for entry in ours}
        reads = graph.readings.read_for_scan(owners, horizon, cap) if owners else []
    with timing("read_lessons"):
        lessons = BatchLessons.read(graph, reads)
    expected = {entry.metric_id: entry for entry in ours}
    rebuilds: list[tuple[ScanRead, Rebuild, int]] = []
    for read in reads:
        detector = detectors.of(read.detection)
        plan = plan_metric(read, loaded[read.metric.id], detector, work.tally)
        if isinstance(plan, Advance):
            _advance(read, plan.state, detector, cap, work, lessons)
        elif isinstance(plan, Rebuild):
            entry = expected[read.metric.id]
            size = entry.estimate if entry.rebuild else settings.scan_history_readings
            rebuilds.append((read, plan, min(size, settings.scan_history_readings)))
    for group, limit in history_groups(rebuilds, settings.scan_batch_readings):
        windows = [
            (read.metric.id, history_start(read.latest_ms, horizon, settings))
            for read, _, _ in group
        ]
        with timing("read_history"):
            histories = graph.readings.read_history_for_scan(windows, horizon, limit)
        for read, plan, _ in group:
            detector = detectors.of(read.detection)
            _rebuild(read, plan, histories.get(read.metric.id), detector, work, lessons)
    saves = _store(work, graph, loaded, settings)
    saved = {save.metric_id for save in saves}
    # The other metrics the sweep leased to this batch are released as they were.
    saves += [
        StateSave(e.metric_id, loaded[e.metric_id].version)
        for e in ours
        if e.metric_id not in saved
    ]
    with timing("redis"):
        refused = states.save(sweep_id, saves)
        states.mark_behind(work.behind)
    if refused:
        log.warning(
            "sweep %s: %d metrics were leased to another sweep meanwhile: their states are "
            "that sweep's to save",
            sweep_id,
            len(refused),
        )
    ended = now_ms()
    if records.record_batch(sweep_id, sweep_started_ms, ended, worker, work.tally):
        SWEEP_DURATION.observe((ended - sweep_started_ms) / 1000)
    SWEEP_METRICS_JUDGED.inc(work.tally.total().metrics)
    return work.tally


@dataclass(frozen=True)
class BatchLessons:
    """What the batch's metrics' verdicts and maintenance windows teach their detectors
    (common.anomalies.lessons): one graph read of each for the whole batch."""

    lessons: dict[str, list[Lesson]]
    windows: dict[str, list[MaintenanceWindow]]  # per owner
    # The windows applying to a metric and their schedules, worked out once for the batch's
    # metrics that share them (by owner, service, and metric where a window names it): an
    # owner may have 1,000 windows, and going through them and their schedules for each
    # metric cost 1-5 ms a metric (tests/bench/bench_windows_covered.py).
    _applying: dict[
        tuple[str, str, str | None], tuple[list[MaintenanceWindow], tuple[object, ...]]
    ] = field(default_factory=dict, compare=False)
    _named: dict[str, set[str]] = field(default_factory=dict, compare=False)  # per owner

    @classmethod
    def read(cls, graph: ScanGraph, reads: Sequence[ScanRead]) -> BatchLessons:
        if not reads:
            return cls({}, {})
        metric_ids = [read.metric.id for read in reads]
        owner_ids = sorted({read.metric.owner_id for read in reads})
        return cls(graph.anomalies.lessons(metric_ids), graph.maintenance.of_owners(owner_ids))

    def teaching(self, read: ScanRead, series: ReadingSeries, before_ms: int | None) -> Teaching:
        metric = read.metric
        windows, whens = self.applying_to(metric.owner_id, metric.service_id, metric.id)
        found = self.lessons.get(metric.id, [])
        if not windows and not found:
            return NOTHING_TAUGHT
        cadence = cadence_of(series, before_ms, None) or DEFAULT_CADENCE_MS
        in_windows = covered(windows, series.timestamps_ms, whens)
        return Teaching.of(Lessons.of(found, cadence), series, in_windows)

    def applying_to(
        self, owner_id: str, service_id: str, metric_id: str
    ) -> tuple[list[MaintenanceWindow], tuple[object, ...]]:
        owned = self.windows.get(owner_id, [])
        named = self._named.get(owner_id)
        if named is None:
            named = self._named[owner_id] = {w.metric_id for w in owned if w.metric_id}
        key = (owner_id, service_id, metric_id if metric_id in named else None)
        found = self._applying.get(key)
        if found is None:
            windows = [w for w in owned if applies(w, metric_id, service_id)]
            found = self._applying[key] = (windows, schedules(windows))
        return found


def history_groups(
    rebuilds: Sequence[tuple[ScanRead, Rebuild, int]], budget: int
) -> Iterator[tuple[list[tuple[ScanRead, Rebuild, int]], int]]:
    """The rebuilds in groups read at once, each with its per-metric limit: smallest
    histories first, as many as fit `budget` readings when each has as many as the
    largest of its group."""
    ordered = sorted(rebuilds, key=lambda item: item[2])
    group: list[tuple[ScanRead, Rebuild, int]] = []
    for item in ordered:
        size = max(1, item[2])
        if group and (len(group) + 1) * size > budget:
            yield group, max(1, min(budget, max(i[2] for i in group)))
            group = []
        group.append(item)
    if group:
        yield group, max(1, min(budget, max(i[2] for i in group)))


def _advance(
    read: ScanRead,
    state: DetectorState,
    detector: ScanDetector,
    cap: int,
    work: BatchWork,
    lessons: BatchLessons,
) -> None:
    # What the metric's verdicts teach is worked out inside the metric's own try: a metric
    # whose lessons cannot be applied fails alone, not its whole batch.
    try:
        teaching = lessons.teaching(read, read.readings, state.last_timestamp_ms)
        with work.tally.timing("detect"):
            verdicts = advance_state(detector, state, read.readings, teaching)
    except Exception as exc:  # one metric's failure must not fail the rest of its batch
        _failed(read, exc, work)
        return
    work.judged.append(Judged(read, detector, verdicts, state.last_timestamp_ms or 0, None))
    if len(read.readings) >= cap:
        work.behind.add(read.metric.id)  # more may wait: the next sweep goes on


def _rebuild(
    read: ScanRead,
    plan: Rebuild,
    history: ReadingSeries | None,
    detector: ScanDetector,
    work: BatchWork,
    lessons: BatchLessons,
) -> None:
    if history is None or not len(history):
        return  # nothing up to the horizon (only readings stamped ahead of it)
    try:
        teaching = lessons.teaching(read, history, None)
        with work.tally.timing("detect"):
            verdicts = judge_history(detector, history, teaching)
    except NotJudged as not_judged:
        work.notes.append((read, not_judged.note))
        return
    except Exception as exc:
        _failed(read, exc, work)
        return
    first = int(history.timestamps_ms[0])
    work.judged.append(Judged(read, detector, verdicts, first - 1, plan.store_from_ms))


def _failed(read: ScanRead, exc: Exception, work: BatchWork) -> None:
    metric = read.metric
    if isinstance(exc, DetectionError):
        reason = str(exc)
    else:
        log.exception("scan of metric %s failed", metric.id)
        reason = f"internal error ({type(exc).__name__}); the worker log has the details"
    tally = work.tally.of(metric.owner_id)
    tally.failures += 1
    tally.last_error = f"metric {metric.id} ({metric.name}): {reason}"
    work.behind.add(metric.id)  # tried again by the next sweep


def _store(
    work: BatchWork,
    graph: ScanGraph,
    loaded: dict[str, LoadedState],
    settings: Settings,
) -> list[StateSave]:
    """Store the anomalies found, put them into incidents, mark how far each metric was
    judged; the states to save."""
    marks: list[ScanMark] = []
    saves: list[StateSave] = []
    timing = work.tally.timing
    for judged in work.judged:
        read, verdicts, detector = judged.read, judged.verdicts, judged.detector
        metric, series = read.metric, verdicts.series
        anomalies = anomalies_found(
            metric.id, series, verdicts.result, detector.method_name, judged.store_from_ms
        )
        stored = 0
        if anomalies:
            with timing("write_anomalies"):
                # The one way a judgement is stored (capped, one per reading, incidents);
                # before the marks: if this fails, the retried batch judges and records again.
                stored = record_anomalies(graph, metric, anomalies, None, settings).stored
        lag_ms = None
        if metric.id not in work.behind and read.appended_at_ms is not None:
            lag_ms = max(0, now_ms() - read.appended_at_ms)
        boundary = read.compacted_through_ms
        marks.append(
            ScanMark(
                metric_id=metric.id,
                after_ms=judged.after_ms,
                through_ms=int(series.timestamps_ms[-1]),
                judged=len(series),
                raw=len(series)
                if boundary is None
                else int(np.count_nonzero(series.timestamps_ms >= boundary)),
                compacted_through_ms=boundary,
                late_seq=read.late_seq,
                appended_at_ms=read.appended_at_ms,
                lag_ms=lag_ms,
                note=verdicts.note,
            )
        )
        tally = work.tally.of(metric.owner_id)
        tally.metrics += 1
        tally.readings += len(series)
        tally.anomalies += stored
        if lag_ms is not None:
            tally.add_lag(lag_ms)
            SCAN_LAG.observe(lag_ms / 1000)
        if verdicts.note is not None and verdicts.note != read.scan_note:
            tally.skipped += 1  # said once: the next sweeps find the same note
        state = loaded[metric.id]
        with timing("state_codec"):
            encoded = b"" if verdicts.state is None else verdicts.state.to_bytes()
        saves.append(
            StateSave(
                metric.id,
                state.version,
                judged=True,
                state=encoded,
                settings_key=detector.settings_key,
                cadence_ms=cadence_of(series, read.judged_through_ms, state.cadence_ms),
            )
        )
    for read, note in work.notes:
        through = read.judged_through_ms
        marks.append(
            ScanMark(
                metric_id=read.metric.id,
                after_ms=through,
                through_ms=through,
                judged=0,
                raw=0,
                compacted_through_ms=read.compacted_through_ms,
                late_seq=read.late_seq,
                appended_at_ms=read.appended_at_ms,
                lag_ms=None,
                note=note,
            )
        )
        if note != read.scan_note:
            work.tally.of(read.metric.owner_id).skipped += 1
    with timing("write_marks"):
        graph.metrics.save_scan_marks(marks)
    return saves
