"""Sweeps over compacted history, end to end through the session's real worker, on each
engine: a rebuild reads the raw window and the chunks (the one read path), and a late
reading merged straight into a chunk is judged by the next sweep, and stored once.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import numpy as np
import pytest

from common import redis_keys as keys
from common.detection.adaptive import AdaptiveSettings, DetectorState, advance, new_state
from common.detection.result import DetectionResult
from common.metrics.compaction import MaintenanceReport, compact_metric
from common.metrics.models import CompactionTarget, NewReading, ReadingSeries
from common.queue import JobQueue
from common.scans.batch import BatchEntry
from common.scans.sweep import run_sweep
from common.settings import Settings
from common.stores import RedisStores, Repositories
from tests.fixtures_sweeps import (
    ScannedMetric,
    Swept,
    give_back_waiting,
    owner_scan,
    stored_anomalies,
    waiting_batches,
)
from tests.worker.support import seasonal_series

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

FLOATS = ("expected", "lower", "upper", "score", "probability")


def compact_before(store: Repositories, metric_id: str, boundary_ms: int, latest_ms: int) -> None:
    """Move the metric's readings older than `boundary_ms` into chunks."""
    report = MaintenanceReport()
    target = CompactionTarget(metric_id, store.readings.boundary(metric_id), latest_ms)
    compact_metric(store.readings, target, boundary_ms, report)
    assert report.compacted > 0 and store.readings.boundary(metric_id) == boundary_ms


def one_pass(
    store: Repositories, metric_id: str
) -> tuple[ReadingSeries, DetectionResult, DetectorState]:
    """The metric's whole series through the one read path, and one pass of the detector."""
    series = store.readings.read_window(metric_id, None, None)
    result, state = advance(new_state(AdaptiveSettings()), series.timestamps_ms, series.values)
    return series, result, state


def assert_stored_as_one_pass(
    store: Repositories, metric_id: str, result: DetectionResult, series: ReadingSeries
) -> None:
    flagged = np.flatnonzero(result.is_anomaly)
    stored = stored_anomalies(store, metric_id)
    assert [a.reading_id for a in stored] == [series.ids[i] for i in flagged]
    for name in FLOATS:
        np.testing.assert_allclose(
            [getattr(a, name) for a in stored],
            getattr(result, name)[flagged],
            rtol=1e-9,
            err_msg=name,
        )


def test_a_rebuild_reads_the_compacted_history_too(
    client: httpx.Client,
    store: Repositories,
    stores: RedisStores,
    sweep: Callable[..., Swept],
    scanned_metric: Callable[..., ScannedMetric],
) -> None:
    count, compacted, more = 600, 400, 50
    values = seasonal_series(count + more, period=288, seed=31)
    for at in (280, 450, 630):  # alarms in the compacted part, the raw part, the new readings
        values[at] += 40
    metric = scanned_metric(values, stored=count)
    metric_id, times = metric.id, metric.times_ms
    sweep()
    compact_before(store, metric_id, int(times[compacted]), int(times[count - 1]))
    stores.client.delete(keys.scan_state(metric_id))
    metric.send(count, count + more, prefix="n")
    rebuilt = owner_scan(client, sweep())

    # The rebuild judged the whole history (chunks and raw window): the state it saved and
    # the anomalies stored are one pass of the detector over the series.
    assert rebuilt["readings_judged"] == count + more and rebuilt["failures"] == 0
    series, result, state = one_pass(store, metric_id)
    assert len(series) == count + more and series.ids[:count] == metric.ids[:count]
    assert stores.client.hget(keys.scan_state(metric_id), "state") == state.to_bytes()
    assert {"r280", "r450", "n630"} <= {series.ids[i] for i in np.flatnonzero(result.is_anomaly)}
    assert_stored_as_one_pass(store, metric_id, result, series)


def test_a_late_reading_merged_into_a_chunk_is_judged_once(
    client: httpx.Client,
    store: Repositories,
    stores: RedisStores,
    sweep: Callable[..., Swept],
    scanned_metric: Callable[..., ScannedMetric],
) -> None:
    count, compacted = 600, 400
    values = seasonal_series(count + 1, period=288, seed=32)
    values[450] += 40
    metric = scanned_metric(values, stored=count)
    metric_id, times = metric.id, metric.times_ms
    sweep()
    compact_before(store, metric_id, int(times[compacted]), int(times[count - 1]))
    before = {a.reading_id for a in stored_anomalies(store, metric_id)}
    assert "r450" in before

    # Between two compacted readings, far off: merged straight into its chunk.
    late = NewReading("late", int(times[300]) + 60_000, float(values[300] + 60))
    assert store.readings.append(metric_id, [late]) == 1
    assert store.readings.boundary(metric_id) == int(times[compacted])
    assert "late" in store.readings.read_window(metric_id, None, int(times[compacted])).ids
    assert store.readings.append(metric_id, [late]) == 0  # a duplicate, not a new arrival
    rebuilt = owner_scan(client, sweep())

    assert rebuilt["readings_judged"] == count + 1 and rebuilt["failures"] == 0
    stored = [a.reading_id for a in stored_anomalies(store, metric_id)]
    assert "late" in stored
    assert len(set(stored)) == len(stored), "an anomaly stored twice"
    assert before <= set(stored)
    series, _, state = one_pass(store, metric_id)
    assert stores.client.hget(keys.scan_state(metric_id), "state") == state.to_bytes()
    # Judged: the next sweep goes on from the rebuilt state with the next reading only.
    metric.send(count, count + 1, prefix="next")
    assert owner_scan(client, sweep())["readings_judged"] == 1
    assert len(series) == count + 1


def test_readings_compacted_before_a_sweep_saw_them_are_judged(
    client: httpx.Client,
    store: Repositories,
    stores: RedisStores,
    sweep: Callable[..., Swept],
    scanned_metric: Callable[..., ScannedMetric],
) -> None:
    count, judged = 600, 300
    values = seasonal_series(count, period=288, seed=33)
    values[400] += 40
    metric = scanned_metric(values, stored=judged)
    sweep()
    # Scans stop for longer than the raw window: readings arrive, and some are compacted
    # before any sweep judged them.
    metric.send(judged, count)
    compact_before(store, metric.id, int(metric.times_ms[500]), int(metric.times_ms[-1]))
    swept = owner_scan(client, sweep())

    assert swept["readings_judged"] == count and swept["failures"] == 0  # a rebuild
    series, result, state = one_pass(store, metric.id)
    assert stores.client.hget(keys.scan_state(metric.id), "state") == state.to_bytes()
    assert "r400" in {series.ids[i] for i in np.flatnonzero(result.is_anomaly)}
    assert_stored_as_one_pass(store, metric.id, result, series)


def test_a_sweep_sizes_readings_compacted_before_it_saw_them_as_a_rebuild(
    client: httpx.Client,
    store: Repositories,
    stores: RedisStores,
    sweep: Callable[..., Swept],
    scanned_metric: Callable[..., ScannedMetric],
    own_queue: tuple[Settings, JobQueue],
) -> None:
    count, judged = 600, 300
    metric = scanned_metric(seasonal_series(count, period=288, seed=34), stored=judged)
    sweep()
    metric.send(judged, count)
    compact_before(store, metric.id, int(metric.times_ms[500]), int(metric.times_ms[-1]))
    own, queue = own_queue
    try:
        # No worker reads this queue: the sweep's batch stays there to be looked at.
        run_sweep(store, stores.scan_states, stores.sweeps, queue, own)
        entries = [
            BatchEntry.of_message(entry)  # type: ignore[arg-type]
            for batch in waiting_batches(stores, own.sweep_queue)
            for entry in batch[2]  # type: ignore[union-attr]
        ]
    finally:
        give_back_waiting(stores, own.sweep_queue)
    # The batch will rebuild it (common.scans.batch.plan_metric): the sweep sizes it as its
    # history, raw and compacted (counted by the graph: what the batch reads), not as the
    # 300 readings after the last judged, and counts it against SCAN_REBUILD_READINGS.
    [entry] = [entry for entry in entries if entry.metric_id == metric.id]
    assert (entry.rebuild, entry.estimate) == (True, count)
