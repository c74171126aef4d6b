"""A metric's own detection settings in sweeps, end to end: PATCHed through the API, judged
by the session's real worker, on each engine.

Direction and minimum deviations gate the verdicts of later sweeps without rebuilding the
state; a sensitivity is part of the state: changing it rebuilds the state once, and the
rebuild stores no anomaly twice.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import numpy as np
import pytest

from common import redis_keys as keys
from common.detection.adaptive import AdaptiveSettings, advance, new_state
from common.stores import RedisStores, Repositories
from tests.fixtures_sweeps import ScannedMetric, Swept, owner_scan
from tests.worker.support import seasonal_series

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

COUNT = 300


def patch_detection(client: httpx.Client, metric_id: str, detection: dict[str, object]) -> None:
    answer = client.patch(f"/api/metrics/{metric_id}", json={"detection": detection})
    assert answer.status_code == 200, answer.text
    assert answer.json()["detection"] | detection == answer.json()["detection"]


def anomaly_ids(client: httpx.Client, metric_id: str) -> list[str]:
    answer = client.get(f"/api/metrics/{metric_id}/anomalies", params={"limit": 1000})
    assert answer.status_code == 200, answer.text
    return [a["reading_id"] for a in answer.json()["anomalies"]]


def test_direction_and_min_deviation_gate_later_sweeps_without_a_rebuild(
    client: httpx.Client,
    store: Repositories,
    sweep: Callable[..., Swept],
    scanned_metric: Callable[..., ScannedMetric],
) -> None:
    values = seasonal_series(COUNT + 1, period=288, seed=21)
    # Twins: one keeps the defaults, the other is PATCHed; both then get the same reading.
    dips = [scanned_metric(values, stored=COUNT) for _ in range(2)]
    spikes = [scanned_metric(values, stored=COUNT) for _ in range(2)]
    sweep()
    patch_detection(client, dips[1].id, {"direction": "up"})
    patch_detection(client, spikes[1].id, {"min_deviation": 25.0})

    at_ms = int(dips[0].times_ms[COUNT])
    expected = values[COUNT - 288]  # a season back: where the series would be
    for metric in dips:
        metric.send_one("dip", at_ms, float(expected - 40))
    for metric in spikes:  # far out for its noise (sd 0.5), yet under 25
        metric.send_one("bump", at_ms, float(expected + 12))
    swept = sweep()

    assert "dip" in anomaly_ids(client, dips[0].id)
    assert "dip" not in anomaly_ids(client, dips[1].id)  # direction "up": a dip is no alarm
    assert "bump" in anomaly_ids(client, spikes[0].id)
    assert "bump" not in anomaly_ids(client, spikes[1].id)  # 12 from expected, under 25
    # The gate changes no state: each metric judged its one new reading, none rebuilt.
    scan = owner_scan(client, swept)
    assert (scan["metrics_judged"], scan["readings_judged"], scan["anomalies"]) == (4, 4, 2)


def test_a_sensitivity_change_rebuilds_the_state_once(
    client: httpx.Client,
    store: Repositories,
    stores: RedisStores,
    sweep: Callable[..., Swept],
    scanned_metric: Callable[..., ScannedMetric],
) -> None:
    total = COUNT + 100
    metric = scanned_metric(seasonal_series(total, period=288, seed=22, noise=2.0), stored=COUNT)
    metric_id, ids = metric.id, metric.ids[:COUNT]
    sweep()
    before = anomaly_ids(client, metric_id)

    louder = 2e-2  # far above the default 3e-4: many more alarms
    patch_detection(client, metric_id, {"sensitivity": louder})
    metric.send(COUNT, COUNT + 50, prefix="n")
    rebuilt = owner_scan(client, sweep())
    assert rebuilt["readings_judged"] == COUNT + 50  # its whole history, with the new setting
    metric.send(COUNT + 50, total, prefix="n")
    assert owner_scan(client, sweep())["readings_judged"] == 50  # from the rebuilt state

    # What the sweeps stored and saved is one pass of the detector at the new sensitivity,
    # from the first reading after the change on; nothing before it is stored again.
    series = store.readings.read_window(metric_id, None, None)
    whole, final = advance(
        new_state(AdaptiveSettings(sensitivity=louder)), series.timestamps_ms, series.values
    )
    assert stores.client.hget(keys.scan_state(metric_id), "state") == final.to_bytes()
    flagged_after = [i for i in np.flatnonzero(whole.is_anomaly) if i >= COUNT]
    assert flagged_after, "the louder sensitivity should flag some of the new readings"
    stored = anomaly_ids(client, metric_id)
    assert sorted(stored) == sorted(before + [series.ids[i] for i in flagged_after])
    assert all(reading_id in ids or reading_id.startswith("n") for reading_id in stored)
