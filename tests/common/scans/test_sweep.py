"""Periodic sweeps, end to end: the planner here, the batches in a real worker, on each engine.

A sweep's verdicts are the detector's one pass over the whole series, however the readings
arrived between sweeps; late readings are judged in a rebuild; each reading is judged
once; a reading stamped far ahead blocks nothing.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pytest

from common import redis_keys as keys
from common.detection.adaptive import AdaptiveSettings, advance, new_state
from common.epoch import to_epoch_ms
from common.settings import Settings
from common.stores import RedisStores, Repositories
from common.users.models import User
from tests.fixtures_sweeps import ScannedMetric, Swept, judge_here, owner_scan, stored_anomalies
from tests.support import ROOT, AppServer
from tests.worker.support import (
    WorkerProcess,
    seasonal_series,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

FLOATS = ("expected", "lower", "upper", "score", "probability")


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
    scanned_metric: Callable[..., ScannedMetric],
) -> None:
    count = 900
    metric = scanned_metric(spiky_series(count, seed=3), stored=300)
    metric_id, ids, times = metric.id, metric.ids, metric.times_ms
    # Sweeps after 300, 450, 451 and 900 readings (the last 449 sent in two appends).
    swept = [sweep()]
    for first, stop in ((300, 450), (450, 451), (451, 700), (700, 900)):
        metric.send(first, stop)
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
    scanned_metric: Callable[..., ScannedMetric],
) -> None:
    count = 500
    values = seasonal_series(count, period=288, seed=5)
    values[300] += 30
    metric = scanned_metric(values)
    metric_id = metric.id
    sweep()
    before = stored_anomalies(store, metric_id)
    assert "r300" in {a.reading_id for a in before}

    # A reading between two judged ones, far off: spliced into the chain, judged next sweep.
    metric.send_one("late", int(metric.times_ms[420]) + 60_000, 95.0)
    swept = sweep()
    after = stored_anomalies(store, metric_id)
    assert "late" in {a.reading_id for a in after}
    assert len({a.reading_id for a in after}) == len(after), "an anomaly stored twice"
    assert {a.reading_id for a in before} <= {a.reading_id for a in after}
    assert swept.totals.readings_judged >= count + 1  # rebuilt from its history
    # The rebuilt state goes on as usual: a new spike after it is judged from it.
    metric.send_one("next", int(metric.times_ms[-1]) + 300_000, 95.0)
    sweep()
    assert "next" in {a.reading_id for a in stored_anomalies(store, metric_id)}
    assert stores.client.hget(keys.scan_state(metric_id), "state") is not None


def test_concurrent_sweeps_judge_each_reading_once(
    client: httpx.Client,
    store: Repositories,
    stores: RedisStores,
    sweep: Callable[..., Swept],
    scanned_metric: Callable[..., ScannedMetric],
) -> None:
    metric = scanned_metric(seasonal_series(400, period=288, spike_at=350, seed=8))
    results: list[Swept] = []
    sweeps = [threading.Thread(target=lambda: results.append(sweep())) for _ in range(3)]
    for thread in sweeps:
        thread.start()
    for thread in sweeps:
        thread.join(120)
    assert len(results) == 3
    listed = client.get("/api/scans", params={"limit": 500}).json()["scans"]
    judged = [s["readings_judged"] for s in listed if s["id"] in {r.plan.sweep_id for r in results}]
    assert sum(judged) == 400, "a reading was judged twice, or not at all"
    stored = stored_anomalies(store, metric.id)
    assert "r350" in {a.reading_id for a in stored}
    assert len({a.reading_id for a in stored}) == len(stored)


def judged_from_nothing(store: Repositories, metric_id: str, settings_: AdaptiveSettings) -> bytes:
    """The state of one pass of the detector over the metric's readings as stored."""
    series = store.readings.read_window(metric_id, None, None)
    return advance(new_state(settings_), series.timestamps_ms, series.values)[1].to_bytes()


def test_a_corrupt_or_missing_state_is_rebuilt_from_the_history(
    client: httpx.Client,
    store: Repositories,
    stores: RedisStores,
    sweep: Callable[..., Swept],
    scanned_metric: Callable[..., ScannedMetric],
) -> None:
    metric = scanned_metric(seasonal_series(600, period=288, seed=9), stored=400)
    metric_id = metric.id
    sweep()
    state_key = keys.scan_state(metric_id)
    for damage, (first, stop) in (("corrupt", (400, 500)), ("missing", (500, 600))):
        if damage == "corrupt":
            saved = stores.client.hget(state_key, "state")
            assert saved is not None
            stores.client.hset(state_key, "state", saved[:-1] + bytes([saved[-1] ^ 1]))
        else:
            stores.client.delete(state_key)
        metric.send(first, stop, prefix=damage)
        swept = sweep()
        assert swept.totals.failures == 0
        # Rebuilt from every reading (fewer than SCAN_HISTORY_READINGS): the one pass's.
        assert stores.client.hget(state_key, "state") == judged_from_nothing(
            store, metric_id, AdaptiveSettings()
        ), damage


def test_other_detector_settings_rebuild_the_state(
    client: httpx.Client,
    store: Repositories,
    stores: RedisStores,
    settings: Settings,
    sweep: Callable[..., Swept],
    scanned_metric: Callable[..., ScannedMetric],
) -> None:
    metric = scanned_metric(seasonal_series(500, period=288, seed=10), stored=400)
    metric_id = metric.id
    sweep()
    metric.send(400, 500, prefix="n")
    louder = settings.model_copy(update={"scan_sensitivity": 1e-2})
    tally = judge_here(store, stores, louder, [metric_id])
    assert tally.total().readings == 500  # every reading again, with the new settings
    saved = stores.client.hget(keys.scan_state(metric_id), "state")
    expected = judged_from_nothing(store, metric_id, AdaptiveSettings(sensitivity=1e-2))
    assert saved == expected


def test_a_short_metric_is_skipped_and_says_so_once(
    client: httpx.Client,
    store: Repositories,
    stores: RedisStores,
    settings: Settings,
    sweep: Callable[..., Swept],
    scanned_metric: Callable[..., ScannedMetric],
) -> None:
    values = seasonal_series(300, period=288, seed=12)
    metric = scanned_metric(values, stored=50)
    metric_id = metric.id

    first = owner_scan(client, sweep())
    assert (first["skipped"], first["failures"], first["readings_judged"]) == (1, 0, 50)
    note = client.get(f"/api/metrics/{metric_id}").json()["scan_note"]
    assert note is not None and "from its 225th reading on" in note
    metric.send(50, 70, prefix="a")
    again = owner_scan(client, sweep())
    assert (again["skipped"], again["failures"], again["readings_judged"]) == (0, 0, 20)
    assert client.get(f"/api/metrics/{metric_id}").json()["scan_note"] == note
    metric.send(70, 300, prefix="b")
    sweep()
    assert client.get(f"/api/metrics/{metric_id}").json()["scan_note"] is None

    # Rolling keeps no state: below its window it is not judged at all, and says so once.
    rolling = settings.model_copy(update={"scan_method": "rolling"})
    short = scanned_metric(values, stored=30)
    short_id = short.id
    tally = judge_here(store, stores, rolling, [short_id])
    assert (tally.total().skipped, tally.total().failures, tally.total().readings) == (1, 0, 0)
    rolling_note = client.get(f"/api/metrics/{short_id}").json()["scan_note"]
    assert rolling_note is not None and "rolling needs at least 61" in rolling_note
    short.send(30, 40, prefix="c")
    tally = judge_here(store, stores, rolling, [short_id])
    assert (tally.total().skipped, tally.total().failures) == (0, 0)
    short.send(40, 100, prefix="d")
    tally = judge_here(store, stores, rolling, [short_id])
    assert tally.total().readings == 100 and tally.total().failures == 0
    judged = client.get(f"/api/metrics/{short_id}").json()
    assert judged["scan_note"] is None and judged["judged_through"] is not None


def test_a_reading_stamped_far_ahead_blocks_no_later_one(
    client: httpx.Client,
    store: Repositories,
    sweep: Callable[..., Swept],
    scanned_metric: Callable[..., ScannedMetric],
) -> None:
    metric = scanned_metric(seasonal_series(300, period=288, seed=13))
    metric_id = metric.id
    sweep()
    last = int(metric.times_ms[-1])
    metric.send_one("2199", to_epoch_ms(datetime(2199, 1, 1, tzinfo=UTC)), 50.0)
    for number, (reading_id, value) in enumerate((("calm", 52.0), ("spike", 99.0)), start=1):
        metric.send_one(reading_id, last + number * 60_000, value)
        swept = sweep()
        assert swept.totals.failures == 0
        shown = client.get(f"/api/metrics/{metric_id}").json()
        judged_through = to_epoch_ms(datetime.fromisoformat(shown["judged_through"]))
        assert judged_through == last + number * 60_000  # judged now, not held up by 2199
    stored = {a.reading_id for a in stored_anomalies(store, metric_id)}
    assert "spike" in stored and "2199" not in stored


def test_each_owner_sees_the_sweep_with_their_own_counts(
    client: httpx.Client,
    store: Repositories,
    app_server: AppServer,
    make_user: Callable[..., tuple[User, str]],
    sweep: Callable[..., Swept],
    scanned_metric: Callable[..., ScannedMetric],
) -> None:
    _, other_key = make_user("other")
    _, idle_key = make_user("idle")
    base = app_server.base_url
    with (
        httpx.Client(base_url=base, headers={"X-API-Key": other_key}, timeout=30) as other,
        httpx.Client(base_url=base, headers={"X-API-Key": idle_key}, timeout=30) as idle,
    ):
        scanned_metric(seasonal_series(260, seed=14))
        scanned_metric(seasonal_series(300, seed=15), http=other)
        scanned_metric(seasonal_series(240, seed=16), http=other)
        swept = sweep()
        assert swept.totals.metrics_judged >= 3 and swept.totals.readings_judged >= 800

        def listed(http: httpx.Client) -> list[dict[str, object]]:
            answer = http.get("/api/scans")
            assert answer.status_code == 200, answer.text
            return [s for s in answer.json()["scans"] if s["id"] == swept.plan.sweep_id]

        mine, theirs = owner_scan(client, swept), owner_scan(other, swept)
        assert (mine["metrics_judged"], mine["readings_judged"]) == (1, 260)
        assert (theirs["metrics_judged"], theirs["readings_judged"]) == (2, 540)
        assert mine["finished"] and theirs["finished"]
        assert listed(idle) == []
        assert idle.get("/api/scans").json() == {"scans": [], "next_offset": None}


def start_beat(env: dict[str, str], directory: Path, name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "worker.celery_app:app", "beat",
         "--loglevel=INFO", f"--schedule={directory / name}", f"--pidfile={directory / name}.pid"],
        env={**env, "SCAN_INTERVAL_SECONDS": "1"},
        cwd=ROOT,
        stdout=(directory / f"{name}.log").open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip


def test_two_beats_judge_each_reading_once(
    client: httpx.Client,
    store: Repositories,
    service_env: dict[str, str],
    celery_worker: WorkerProcess,
    tmp_path: Path,
    scanned_metric: Callable[..., ScannedMetric],
) -> None:
    metric = scanned_metric(seasonal_series(300, period=288, spike_at=295, seed=11))
    beats = [start_beat(service_env, tmp_path, f"beat{i}") for i in range(2)]
    try:

        def judged() -> int:
            scans = client.get("/api/scans", params={"limit": 500}).json()["scans"]
            return sum(scan["readings_judged"] for scan in scans)

        wait_for(lambda: judged() >= 300, 90, "a sweep to judge the metric")
        # Several more ticks of both beats: every reading still judged once.
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            assert all(beat.poll() is None for beat in beats), "a beat exited"
            time.sleep(0.5)
        assert judged() == 300
    finally:
        for beat in beats:
            beat.terminate()
            beat.wait(10)
    stored = stored_anomalies(store, metric.id)
    assert "r295" in {a.reading_id for a in stored}
    assert len({a.reading_id for a in stored}) == len(stored)
