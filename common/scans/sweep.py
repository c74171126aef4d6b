"""Periodic scans: a sweep (the `neonomaly.scan` task, sent by celery beat every
SCAN_INTERVAL_SECONDS) finds the metrics with readings not judged yet and queues them in
batches (common.scans.batch) that any worker of the sweep queue takes.

A sweep:
1. reads the metrics that received readings since the previous sweep started (a minute of
   slack) and those an earlier sweep left behind, with how far scans judged them; keeps
   the ones with a reading to judge up to the horizon (now + FUTURE_SLACK_MS);
2. leases them to itself (common.scans.states): a metric whose previous batch is still
   pending is left for a later sweep, so a metric never has two batches queued and the
   backlog stays bounded by the number of metrics;
3. estimates each metric's readings: new ones (elapsed time over its cadence) for a metric
   whose state it continues; for a rebuild, its history, counted by the graph;
4. takes every metric whose state it continues, and of the rebuilds (a state missing,
   corrupt, built with other settings: after an upgrade or a settings change, the whole
   fleet's) the longest-waiting first, up to SCAN_REBUILD_READINGS readings (one at
   least). The rest wait for later sweeps: their leases go back, they are looked at again
   by the next sweep (the behind set) and marked waiting on the graph from the first sweep
   that leaves them (MARK_REBUILDS_WAITING: their scan lag grows meanwhile, and it is their
   place in the queue). So a settings change costs each sweep a bounded time, metrics with
   a valid state keep their lag, and a rebuild waits at most (the waiting readings ahead of
   it) / (SCAN_REBUILD_READINGS - SCAN_HISTORY_READINGS) + 1 sweeps;
5. packs the metrics taken into batches of at most SCAN_BATCH_METRICS metrics and
   SCAN_BATCH_READINGS readings, starts the sweep's record (common.scans.records: with the
   rebuilds left waiting, per owner) and queues the batches.
No job record and no stored result per metric: the sweep's record, and on each metric
`last_judged_at`, `judged_through`, its scan lag and note.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from common.epoch import from_epoch_ms, now_ms
from common.errors import DependencyUnavailableError
from common.ids import new_id
from common.metrics.models import DueMetric
from common.metrics.repository import MetricRepository, ReadingRepository
from common.own_metrics import SWEEP_DURATION
from common.queue import JobQueue
from common.scans.batch import BatchEntry
from common.scans.judging import (
    DEFAULT_CADENCE_MS,
    ScanDetectors,
    history_start,
    horizon_ms,
)
from common.scans.records import SweepRecords
from common.scans.states import Claimed, ScanStates
from common.settings import Settings

log = logging.getLogger(__name__)

# A sweep looks at appends since the previous sweep started, minus this much: an append
# whose server time was taken just before that sweep may have landed just after its query.
APPEND_SLACK_MS = 60_000
# Metrics claimed, or counted, per Redis script or graph query.
CHUNK = 1000
# A small sweep is cut into this many batches, so that every worker process takes a share
# (a cold start's few long histories would otherwise be a batch or two on one process);
# never below MIN_BATCH_READINGS readings a batch, so that a fleet's batches stay large.
SPREAD_BATCHES = 16
MIN_BATCH_READINGS = 1000


class SweepGraph(Protocol):
    @property
    def metrics(self) -> MetricRepository: ...
    @property
    def readings(self) -> ReadingRepository: ...


@dataclass(frozen=True)
class SweepPlan:
    sweep_id: str
    started_ms: int
    since_ms: int
    due: int  # metrics appended since, or left behind
    queued: int  # metrics queued in batches
    pending: int  # left for a later sweep: their previous batch was still pending
    batches: int
    rebuilds_waiting: int = 0  # rebuilds left for a later sweep (SCAN_REBUILD_READINGS)


@dataclass(frozen=True)
class Selection:
    """What a sweep queues (`entries`) and the rebuilds it leaves waiting."""

    entries: list[BatchEntry]
    waiting: list[DueMetric]


def has_work(metric: DueMetric, horizon: int) -> bool:
    """Whether the metric has a reading not judged yet, up to the horizon."""
    if metric.latest_ms is None:
        return False
    judged = metric.judged_through_ms
    return (
        judged is None or metric.late_from_ms is not None or min(metric.latest_ms, horizon) > judged
    )


def run_sweep(
    graph: SweepGraph,
    states: ScanStates,
    records: SweepRecords,
    queue: JobQueue,
    settings: Settings,
    sweep_id: str | None = None,
    started_ms: int | None = None,
) -> SweepPlan:
    """One sweep (module doc). `sweep_id`: the task's id, so that a retried sweep takes
    the leases it already holds."""
    sweep_id = sweep_id or new_id()
    started = now_ms() if started_ms is None else started_ms
    horizon = horizon_ms(started)
    cursor = states.cursor()
    since = (
        cursor - APPEND_SLACK_MS
        if cursor is not None
        else started - settings.scan_window_seconds * 1000
    )
    behind = states.behind()
    due = graph.metrics.due_for_scan(since, behind)
    todo = [metric for metric in due if has_work(metric, horizon)]
    claimed: dict[str, Claimed] = {}
    for first in range(0, len(todo), CHUNK):
        claimed |= states.claim([m.id for m in todo[first : first + CHUNK]], sweep_id)
    pending = [metric.id for metric in todo if metric.id not in claimed]
    selection = _estimates([m for m in todo if m.id in claimed], claimed, graph, horizon, settings)
    entries, waiting = selection.entries, [metric.id for metric in selection.waiting]
    for first in range(0, len(waiting), CHUNK):
        states.release(waiting[first : first + CHUNK], sweep_id)
    graph.metrics.mark_rebuilds_waiting(
        [
            (metric.id, metric.appended_at_ms or started)
            for metric in selection.waiting
            if metric.waiting_since_ms is None  # else its wait began at an earlier sweep
        ]
    )
    batches = pack(entries, batch_budget(entries, settings), settings.scan_batch_metrics)
    waiting_by_owner = Counter(metric.owner_id for metric in selection.waiting)
    records.start(
        sweep_id,
        started,
        len(batches),
        queued=len(entries),
        pending=len(pending),
        rebuilds_waiting=waiting_by_owner,
    )
    if not batches:  # otherwise its last batch observes it
        SWEEP_DURATION.observe((now_ms() - started) / 1000)
    queued = 0
    try:
        for batch in batches:
            queue.enqueue_scan_batch(sweep_id, started, [entry.as_message() for entry in batch])
            queued += 1
    except DependencyUnavailableError:
        # The next sweep takes them (its own leases).
        states.release([entry.metric_id for batch in batches[queued:] for entry in batch], sweep_id)
        raise
    # What was behind is queued now, pending or waiting for a rebuild (still behind), or
    # has nothing to judge.
    states.forget_behind(set(behind) - set(pending) - set(waiting))
    states.mark_behind(pending + waiting)
    states.advance_cursor(started)
    plan = SweepPlan(
        sweep_id,
        started,
        since,
        len(due),
        len(entries),
        len(pending),
        len(batches),
        len(waiting),
    )
    log.info(
        "sweep %s since %s: %d metrics due, %d queued in %d batches, %d left for later "
        "(their last batch is pending), %d rebuilds waiting (SCAN_REBUILD_READINGS)",
        sweep_id,
        from_epoch_ms(since).isoformat(),
        plan.due,
        plan.queued,
        plan.batches,
        plan.pending,
        plan.rebuilds_waiting,
    )
    return plan


def _estimates(
    metrics: Sequence[DueMetric],
    claimed: dict[str, Claimed],
    graph: SweepGraph,
    horizon: int,
    settings: Settings,
) -> Selection:
    """Each metric taken with the readings it will judge (its new ones, or its history),
    and the rebuilds left waiting (module doc, step 4)."""
    detectors = ScanDetectors(settings)
    entries = []
    stateless = []  # rolling/STL: their bounded history each sweep, by design
    rebuilds = []
    for metric in metrics:
        known = claimed[metric.id]
        judged, latest = metric.judged_through_ms, metric.latest_ms
        detector = detectors.of(metric.detection)
        if not detector.stateful:
            stateless.append(metric)
            continue
        boundary = metric.compacted_through_ms
        if (
            judged is None
            or latest is None
            or not known.has_state
            or known.settings_key != detector.settings_key
            or metric.late_from_ms is not None
            # Readings after the last judged were compacted before a sweep saw them: the
            # batch rebuilds (common.scans.batch.plan_metric).
            or (boundary is not None and judged + 1 < boundary)
        ):
            rebuilds.append(metric)
            continue
        cadence = known.cadence_ms or DEFAULT_CADENCE_MS
        estimate = min((min(latest, horizon) - judged) // cadence + 1, settings.scan_batch_readings)
        entries.append(BatchEntry(metric.id, metric.owner_id, max(1, estimate), rebuild=False))
    entries += _histories(stateless, graph, horizon, settings)
    # The longest-waiting rebuilds first: a metric already waiting since its first wait
    # began, the others since their last append (later than any wait already begun).
    rebuilds.sort(key=lambda m: (m.waiting_since_ms or m.appended_at_ms or 0, m.id))
    budget = settings.scan_rebuild_readings
    taken = 0
    for first in range(0, len(rebuilds), CHUNK):
        counted = _histories(rebuilds[first : first + CHUNK], graph, horizon, settings)
        for at, entry in enumerate(counted, start=first):
            if taken and taken + entry.estimate > budget:
                # In order, never a smaller one past a larger: each waits its turn.
                return Selection(entries, rebuilds[at:])
            entries.append(entry)
            taken += entry.estimate
    return Selection(entries, [])


def _histories(
    metrics: Sequence[DueMetric], graph: SweepGraph, horizon: int, settings: Settings
) -> list[BatchEntry]:
    """The metrics as rebuilds, each with its history's readings (counted by the graph),
    in the order given."""
    entries = []
    for first in range(0, len(metrics), CHUNK):
        chunk = metrics[first : first + CHUNK]
        counts = graph.readings.count_for_scan(
            [(m.id, history_start(m.latest_ms, horizon, settings)) for m in chunk],
            horizon,
            settings.scan_history_readings,
        )
        entries += [BatchEntry(m.id, m.owner_id, counts.get(m.id, 0), rebuild=True) for m in chunk]
    return entries


def batch_budget(entries: Sequence[BatchEntry], settings: Settings) -> int:
    """Readings a batch may hold: SCAN_BATCH_READINGS, less for a small sweep."""
    spread = -(-sum(max(entry.estimate, 1) for entry in entries) // SPREAD_BATCHES)
    return min(settings.scan_batch_readings, max(spread, MIN_BATCH_READINGS))


def pack(entries: Sequence[BatchEntry], budget: int, most: int) -> list[list[BatchEntry]]:
    """Batches of at most `most` metrics whose readings, each counted as the batch's
    largest estimate, stay within `budget` (a metric above it goes alone)."""
    batches: list[list[BatchEntry]] = []
    batch: list[BatchEntry] = []
    largest = 0
    for entry in sorted(entries, key=lambda e: (e.estimate, e.metric_id)):
        size = max(largest, entry.estimate, 1)
        if batch and (len(batch) == most or (len(batch) + 1) * size > budget):
            batches.append(batch)
            batch, size = [], max(entry.estimate, 1)
        batch.append(entry)
        largest = size
    if batch:
        batches.append(batch)
    return batches
