"""Periodic sweeps, end to end: the planner here, the batches in a real worker, on each engine.

A sweep's verdicts are the detector's one pass over the whole series, however the readings
arrived between sweeps; late readings are judged in a rebuild; each reading is judged
once; a reading stamped far ahead blocks nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
import numpy as np
import pytest

from common import redis_keys as keys
from common.anomalies.models import Anomaly
from common.detection.adaptive import AdaptiveSettings, advance, new_state
from common.epoch import to_epoch_ms
from common.graph.params import KeysetPage
from common.metrics.models import NewReading
from common.stores import RedisStores, Repositories
from tests.common.scans.conftest import Swept
from tests.worker.support import add_metric, recent_start, seasonal_series

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

STEP = timedelta(minutes=5)
FLOATS = ("expected", "lower", "upper", "score", "probability")


def stored_anomalies(store: Repositories, metric_id: str) -> list[Anomaly]:
    return store.anomalies.list_page(metric_id, KeysetPage(None, None, 10_000))


def append(
    store: Repositories, metric_id: str, times_ms: np.ndarray, values: np.ndarray, ids: list[str]
) -> None:
    store.readings.append(
        metric_id,
        [
            NewReading(id=i, timestamp_ms=int(t), value=float(v))
            for i, t, v in zip(ids, times_ms, values, strict=True)
        ],
    )


def spiky_series(count: int, seed: int) -> np.ndarray:
    """A daily-like season with noise and a few spikes, at least a quiet time apart."""
    values = seasonal_series(count, period=288, seed=seed)
    for at in range(260, count, 170):
        values[at] += 40 if at % 340 else -40
    return values


def test_sweeps_judge_exactly_as_one_pass_of_the_detector(
    client: httpx.Client,
    store: Repositories,
    stores: RedisStores,
    sweep: Callable[..., Swept],
) -> None:
    count = 900
    values = spiky_series(count, seed=3)
    start = recent_start(count, STEP)
    times = np.array([to_epoch_ms(start + i * STEP) for i in range(count)], dtype=np.int64)
    ids = [f"r{i}" for i in range(count)]
    metric_id, _ = add_metric(client, store, values[:300], start=start, step=STEP)
    # Sweeps after 300, 450, 451 and 900 readings (the last 449 sent in two appends).
    swept = [sweep()]
    for first, stop in ((300, 450), (450, 451), (451, 700), (700, 900)):
        append(store, metric_id, times[first:stop], values[first:stop], ids[first:stop])
        if stop != 700:
            swept.append(sweep())

    # One pass of the default detector over the whole series, as stored (FalkorDB keeps 15
    # significant digits).
    series = store.readings.read_window(metric_id, None, None)
    assert series.ids == ids
    whole, final = advance(new_state(AdaptiveSettings()), series.timestamps_ms, series.values)
    flagged = np.flatnonzero(whole.is_anomaly)
    assert flagged.size >= 3, "the series should have alarms to compare"
    stored = stored_anomalies(store, metric_id)
    assert [a.reading_id for a in stored] == [ids[i] for i in flagged]
    for name in FLOATS:
        np.testing.assert_allclose(
            [getattr(a, name) for a in stored],
            getattr(whole, name)[flagged],
            rtol=1e-9,
            err_msg=name,
        )
    assert all(a.method == "auto-online" for a in stored)
    # The state the sweeps saved is the one pass's, byte for byte.
    saved = stores.client.hget(keys.scan_state(metric_id), "state")
    assert saved == final.to_bytes()

    # Every reading judged once, across the sweeps (this owner's counts only).
    listed = client.get("/api/scans", params={"limit": 500}).json()["scans"]
    mine = {scan["id"]: scan for scan in listed}
    assert [s.plan.sweep_id in mine for s in swept] == [True] * len(swept)
    assert sum(mine[s.plan.sweep_id]["readings_judged"] for s in swept) == count
    assert sum(mine[s.plan.sweep_id]["anomalies"] for s in swept) == flagged.size
    metric = client.get(f"/api/metrics/{metric_id}").json()
    assert metric["judged_through"] is not None
    assert to_epoch_ms(datetime.fromisoformat(metric["judged_through"])) == times[-1]
    assert metric["last_judged_at"] is not None and metric["scan_lag_seconds"] >= 0
    assert metric["scan_note"] is None


def test_a_late_reading_is_judged_in_a_rebuild_and_nothing_is_stored_twice(
    client: httpx.Client,
    store: Repositories,
    stores: RedisStores,
    sweep: Callable[..., Swept],
) -> None:
    count = 500
    values = seasonal_series(count, period=288, seed=5)
    values[300] += 30
    start = recent_start(count, STEP)
    metric_id, ids = add_metric(client, store, values, start=start, step=STEP)
    sweep()
    before = stored_anomalies(store, metric_id)
    assert ids[300] in {a.reading_id for a in before}

    # A reading between two judged ones, far off: spliced into the chain, judged next sweep.
    late_ms = to_epoch_ms(start + 420 * STEP) + 60_000
    store.readings.append(metric_id, [NewReading(id="late", timestamp_ms=late_ms, value=95.0)])
    swept = sweep()
    after = stored_anomalies(store, metric_id)
    assert "late" in {a.reading_id for a in after}
    assert len({a.reading_id for a in after}) == len(after), "an anomaly stored twice"
    assert {a.reading_id for a in before} <= {a.reading_id for a in after}
    assert swept.totals.readings_judged >= count + 1  # rebuilt from its history
    # The rebuilt state goes on as usual: a new spike after it is judged from it.
    newest = to_epoch_ms(start + (count - 1) * STEP)
    store.readings.append(
        metric_id, [NewReading(id="next", timestamp_ms=newest + 300_000, value=95.0)]
    )
    sweep()
    assert "next" in {a.reading_id for a in stored_anomalies(store, metric_id)}
    assert stores.client.hget(keys.scan_state(metric_id), "state") is not None


def test_concurrent_sweeps_judge_each_reading_once(
    client: httpx.Client,
    store: Repositories,
    stores: RedisStores,
    sweep: Callable[..., Swept],
) -> None:
    values = seasonal_series(400, period=288, spike_at=350, seed=8)
    metric_id, ids = add_metric(client, store, values, start=recent_start(400, STEP), step=STEP)
    results: list[Swept] = []
    sweeps = [threading.Thread(target=lambda: results.append(sweep())) for _ in range(3)]
    for thread in sweeps:
        thread.start()
    for thread in sweeps:
        thread.join(120)
    assert len(results) == 3
    listed = client.get("/api/scans", params={"limit": 500}).json()["scans"]
    judged = [
        s["readings_judged"] for s in listed if s["id"] in {r.plan.sweep_id for r in results}
    ]
    assert sum(judged) == 400, "a reading was judged twice, or not at all"
    stored = stored_anomalies(store, metric_id)
    assert ids[350] in {a.reading_id for a in stored}
    assert len({a.reading_id for a in stored}) == len(stored)
