"""Many metrics' detector states invalidated at once (a settings change, an upgrade), end to
end through the session's real worker, on each engine: each sweep rebuilds at most
SCAN_REBUILD_READINGS readings' worth of states, the longest-waiting first, while a metric
whose state is valid is judged every sweep; the sweep's record counts the rebuilds left
waiting, a waiting metric's scan lag grows, and every reading is judged, and stored, once.

A metric's own sensitivity is part of its state's settings (common.scans.judging): PATCHing
it invalidates that metric's state as a change of SCAN_SENSITIVITY, or an upgrade, does
the fleet's, without restarting the session's worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import pairwise

import httpx
import numpy as np
import pytest

from common import redis_keys as keys
from common.detection.adaptive import AdaptiveSettings, advance, new_state
from common.epoch import to_epoch_ms
from common.settings import Settings
from common.stores import RedisStores, Repositories
from common.users.models import User
from tests.common.scans.test_sweep_settings import anomaly_ids, patch_detection
from tests.fixtures_sweeps import ScannedMetric, Swept, owner_scan
from tests.support import AppServer
from tests.worker.support import seasonal_series

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

COUNT = 300  # readings each metric has when the states are invalidated
FLEET = 6
LOUDER = 2e-2  # the new sensitivity (the default: 3e-4)


# The series end this long ago: what sweeps find there is history (older than
# INCIDENT_RESOLVE_SECONDS), not incidents, whose open spans the detector would not learn
# from (common.anomalies.lessons): so what the sweeps saved is one plain pass.
AGO = timedelta(hours=6)


def series(seed: int, total: int) -> np.ndarray:
    values = seasonal_series(total, period=288, seed=seed, noise=2.0)
    values[COUNT + 1] += 40  # something to find among the readings judged after the change
    return values


def metric_view(client: httpx.Client, metric_id: str) -> dict[str, object]:
    answer = client.get(f"/api/metrics/{metric_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def judged_through(client: httpx.Client, metric: ScannedMetric) -> int:
    """The metric's judged_through (its newest reading judged) as epoch ms."""
    raw = metric_view(client, metric.id)["judged_through"]
    assert isinstance(raw, str)
    return to_epoch_ms(datetime.fromisoformat(raw))


def one_pass_after_change(
    client: httpx.Client,
    store: Repositories,
    stores: RedisStores,
    metric: ScannedMetric,
    first_after: int,
    stored_before: set[str],
) -> int:
    """Check that the metric's saved state is one pass at the new sensitivity and that its
    anomalies are those stored before the change and that pass's from `first_after` on;
    how many of the latter."""
    stored = store.readings.read_window(metric.id, None, None)
    whole, final = advance(
        new_state(AdaptiveSettings(sensitivity=LOUDER)), stored.timestamps_ms, stored.values
    )
    assert stores.client.hget(keys.scan_state(metric.id), "state") == final.to_bytes()
    after = {stored.ids[i] for i in np.flatnonzero(whole.is_anomaly) if i >= first_after}
    anomalies = anomaly_ids(client, metric.id)
    assert len(set(anomalies)) == len(anomalies), "an anomaly stored twice"
    assert set(anomalies) == stored_before | after, metric.id
    return len(after)


def test_rebuilds_are_spread_over_sweeps_while_valid_states_advance(
    client: httpx.Client,
    store: Repositories,
    stores: RedisStores,
    settings: Settings,
    sweep: Callable[..., Swept],
    scanned_metric: Callable[..., ScannedMetric],
) -> None:
    minutes = 5
    total = COUNT + minutes
    steady = scanned_metric(series(40, total), stored=COUNT, ago=AGO)
    fleet = [scanned_metric(series(41 + i, total), stored=COUNT, ago=AGO) for i in range(FLEET)]
    late = scanned_metric(series(50, total), stored=COUNT, ago=AGO)  # invalidated one sweep later
    sweep()  # every state built (and whatever the session's earlier tests left due)
    judged_before = {m.id: set(anomaly_ids(client, m.id)) for m in [*fleet, late]}
    for metric in fleet:
        patch_detection(client, metric.id, {"sensitivity": LOUDER})
    # Two rebuilds of COUNT + a few readings fit a sweep's budget, three do not.
    budget = settings.model_copy(update={"scan_rebuild_readings": 2 * COUNT + 20})

    # Per sweep: the metrics rebuilt, the longest-waiting first (the fleet in the order its
    # readings arrived after the change; `late`, invalidated a sweep later and sent first
    # from then on, waits behind all of them), and the rebuilds left waiting.
    rebuilt_by_sweep = [fleet[0:2], fleet[2:4], fleet[4:6], [late], []]
    waiting_by_sweep = [4, 3, 1, 0, 0]
    rebuilt: list[ScannedMetric] = []
    lags: dict[str, list[tuple[float, float]]] = {m.id: [] for m in [*fleet, late]}
    for minute in range(minutes):
        at = COUNT + minute
        order = [steady, *fleet, late] if minute == 0 else [late, steady, *fleet]
        for metric in order:
            metric.send(at, at + 1)
        swept = owner_scan(client, sweep(budget))
        if minute == 0:
            patch_detection(client, late.id, {"sensitivity": LOUDER})

        # The metric with a valid state, and every one rebuilt before, judged its new reading;
        # this sweep's rebuilds their whole history (COUNT + minute + 1 readings each).
        advanced = [steady, *rebuilt] + ([late] if minute == 0 else [])
        rebuilds = rebuilt_by_sweep[minute]
        assert swept["rebuilds_waiting"] == waiting_by_sweep[minute], minute
        assert swept["metrics_judged"] == len(advanced) + len(rebuilds), minute
        assert swept["readings_judged"] == len(advanced) + len(rebuilds) * (at + 1), minute
        assert swept["failures"] == 0
        rebuilt += rebuilds
        for metric in [*advanced, *rebuilds]:
            assert judged_through(client, metric) == metric.times_ms[at], minute
        for metric in [m for m in [*fleet, late] if m not in rebuilt and m not in advanced]:
            # Left as it was, and saying how long its readings have waited so far.
            view = metric_view(client, metric.id)
            last_judged = COUNT if metric is late else COUNT - 1
            assert judged_through(client, metric) == metric.times_ms[last_judged], minute
            lag = view["scan_lag_seconds"]
            assert isinstance(lag, float) and view["scan_waiting_since"] is not None, view
            lags[metric.id].append((time.monotonic(), lag))
    for metric in [steady, *fleet, late]:
        assert judged_through(client, metric) == metric.times_ms[total - 1]
        assert metric_view(client, metric.id)["scan_waiting_since"] is None

    # A waiting metric's lag grew with the time it waited, sweep after sweep.
    assert len(lags[fleet[5].id]) == 2 and len(lags[late.id]) == 2
    for seen in lags.values():
        for (then, lag_then), (now, lag_now) in pairwise(seen):
            assert lag_now >= lag_then + 0.8 * (now - then), seen

    # What was stored and saved is one pass of the detector, at the old sensitivity up to
    # the change and the new one after: nothing judged twice, nothing skipped.
    changed = [*((m, COUNT) for m in fleet), (late, COUNT + 1)]
    found_after = sum(
        one_pass_after_change(client, store, stores, metric, first, judged_before[metric.id])
        for metric, first in changed
    )
    assert found_after > 0, "the new sensitivity should flag some readings after the change"
    stored = store.readings.read_window(steady.id, None, None)
    whole, final = advance(new_state(AdaptiveSettings()), stored.timestamps_ms, stored.values)
    assert stores.client.hget(keys.scan_state(steady.id), "state") == final.to_bytes()
    assert sorted(anomaly_ids(client, steady.id)) == sorted(
        stored.ids[i] for i in np.flatnonzero(whole.is_anomaly)
    )


def test_an_owner_whose_rebuilds_all_wait_sees_the_sweep_that_left_them(
    client: httpx.Client,
    app_server: AppServer,
    make_user: Callable[..., tuple[User, str]],
    settings: Settings,
    sweep: Callable[..., Swept],
    scanned_metric: Callable[..., ScannedMetric],
) -> None:
    _, key = make_user()
    with httpx.Client(base_url=app_server.base_url, headers={"X-API-Key": key}) as other:
        mine = scanned_metric(series(60, COUNT + 2), stored=COUNT, ago=AGO)
        theirs = scanned_metric(series(61, COUNT + 2), stored=COUNT, ago=AGO, http=other)
        sweep()
        patch_detection(client, mine.id, {"sensitivity": LOUDER})
        patch_detection(other, theirs.id, {"sensitivity": LOUDER})
        one = settings.model_copy(update={"scan_rebuild_readings": 1})  # one rebuild a sweep
        mine.send(COUNT, COUNT + 1)  # appended first: waits longer
        theirs.send(COUNT, COUNT + 1)
        swept = sweep(one)
        assert swept.totals.rebuilds_waiting == 1
        seen = owner_scan(client, swept)
        assert (seen["metrics_judged"], seen["readings_judged"]) == (1, COUNT + 1)
        assert seen["rebuilds_waiting"] == 0 and seen["last_batch_at"] is not None
        # The other owner's metric waits: the sweep is in their list, with no batch of theirs.
        seen = owner_scan(other, swept)
        assert (seen["metrics_judged"], seen["rebuilds_waiting"]) == (0, 1)
        assert seen["last_batch_at"] is None and seen["duration_seconds"] is None

        swept = sweep(one)  # nothing new: the waiting metric is looked at again all the same
        assert owner_scan(other, swept)["readings_judged"] == COUNT + 1
        assert owner_scan(other, swept)["rebuilds_waiting"] == 0
        assert judged_through(other, theirs) == theirs.times_ms[COUNT]
