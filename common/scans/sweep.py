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
3. estimates each metric's readings (new ones: elapsed time over its cadence; a rebuild:
   its history, counted by the graph) and packs them into batches of at most
   SCAN_BATCH_METRICS metrics and SCAN_BATCH_READINGS readings;
4. starts the sweep's record (common.scans.records) and queues the batches.
No job record and no stored result per metric: the sweep's record, and on each metric
`last_judged_at`, `judged_through`, its scan lag and note.
"""

from __future__ import annotations

import logging
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
    entries = _estimates([m for m in todo if m.id in claimed], claimed, graph, horizon, settings)
    batches = pack(entries, batch_budget(entries, settings), settings.scan_batch_metrics)
    records.start(sweep_id, started, len(batches), queued=len(entries), pending=len(pending))
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
    # What was behind is queued now, or pending (still behind), or has nothing to judge.
    states.forget_behind(set(behind) - set(pending))
    states.mark_behind(pending)
    states.advance_cursor(started)
    plan = SweepPlan(sweep_id, started, since, len(due), len(entries), len(pending), len(batches))
    log.info(
        "sweep %s since %s: %d metrics due, %d queued in %d batches, %d left for later "
        "(their last batch is pending)",
        sweep_id,
        from_epoch_ms(since).isoformat(),
        plan.due,
        plan.queued,
        plan.batches,
        plan.pending,
    )
    return plan


def _estimates(
    metrics: Sequence[DueMetric],
    claimed: dict[str, Claimed],
    graph: SweepGraph,
    horizon: int,
    settings: Settings,
) -> list[BatchEntry]:
    """Each metric with the readings it will judge: its new ones, or its history."""
    detectors = ScanDetectors(settings)
    entries = []
    rebuilds = []
    for metric in metrics:
        known = claimed[metric.id]
        judged, latest = metric.judged_through_ms, metric.latest_ms
        detector = detectors.of(metric.detection)
        continues = (
            detector.stateful
            and known.has_state
            and known.settings_key == detector.settings_key
            and metric.late_from_ms is None
        )
        if not continues or judged is None or latest is None:
            rebuilds.append(metric)
            continue
        cadence = known.cadence_ms or DEFAULT_CADENCE_MS
        estimate = min((min(latest, horizon) - judged) // cadence + 1, settings.scan_batch_readings)
        entries.append(BatchEntry(metric.id, metric.owner_id, max(1, estimate), rebuild=False))
    for first in range(0, len(rebuilds), CHUNK):
        chunk = rebuilds[first : first + CHUNK]
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
