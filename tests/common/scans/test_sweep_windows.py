"""Maintenance windows over readings sweeps already judged, end to end on the session's real
worker and each engine (issue 20): a window made over them mutes their anomalies and
makes the next sweep rebuild the metric's state without them, so that later readings are
judged as one pass with them kept out would judge them; deleted, they are learnt again."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

import httpx
import numpy as np
import pytest

from common import redis_keys as keys
from common.detection.adaptive import AdaptiveSettings, advance, new_state
from common.epoch import from_epoch_ms, to_epoch_ms
from common.metrics.models import NewReading
from common.settings import Settings
from common.stores import RedisStores, Repositories
from tests.fixtures_sweeps import Swept, judge_here, owner_scan, stored_anomalies
from tests.worker.support import add_metric, recent_start, wait_for_reach

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

STEP = timedelta(minutes=5)
# An outage of 60 readings (+12, noisy) judged by a first sweep; later a +8 spike that a
# band widened by the outage lets pass and one without it does not.
OUTAGE = slice(260, 320)
COUNT, AFTER, TOTAL = 360, 500, 560


def outage_series() -> np.ndarray:
    rng = np.random.default_rng(3)
    values = rng.normal(100.0, 1.0, TOTAL)
    values[OUTAGE] += 12.0 + rng.normal(0.0, 6.0, OUTAGE.stop - OUTAGE.start)
    values[AFTER] += 8.0
    return values


def one_pass(
    store: Repositories, metric_id: str, learn: np.ndarray | None
) -> tuple[set[int], bytes]:
    """The readings one pass of the default detector over the metric's series as stored
    alarms on, and its state after them."""
    series = store.readings.read_window(metric_id, None, None)
    result, state = advance(
        new_state(AdaptiveSettings()), series.timestamps_ms, series.values, learn
    )
    return set(np.flatnonzero(result.is_anomaly).tolist()), state.to_bytes()


def in_open_incidents(client: httpx.Client) -> set[str]:
    """The anomalies the open incidents of the client's owner hold."""
    listed = client.get("/api/incidents", params={"status": "open", "limit": 50})
    return {
        member["id"]
        for incident in listed.json()["incidents"]
        for member in client.get(f"/api/incidents/{incident['id']}").json()["anomalies"]
    }


def test_a_window_over_judged_readings_mutes_them_and_rebuilds_the_state_without_them(
    client: httpx.Client,
    store: Repositories,
    stores: RedisStores,
    sweep: Callable[..., Swept],
) -> None:
    values = outage_series()
    start = recent_start(TOTAL, STEP)
    times = np.array([to_epoch_ms(start + i * STEP) for i in range(TOTAL)], dtype=np.int64)
    metric_id, ids = add_metric(client, store, values[:COUNT], start, STEP)
    sweep()
    index_of = {reading_id: i for i, reading_id in enumerate(ids)}
    outage_alarms = [
        a
        for a in stored_anomalies(store, metric_id)
        if OUTAGE.start <= index_of[a.reading_id] < OUTAGE.stop
    ]
    assert outage_alarms and not any(a.muted for a in outage_alarms)

    window = client.post(
        "/api/maintenance-windows",
        json={
            "metric_id": metric_id,
            "start": from_epoch_ms(int(times[OUTAGE.start])).isoformat(),
            "end": from_epoch_ms(int(times[OUTAGE.stop])).isoformat(),
            "reason": "load test",
        },
    )
    assert window.status_code == 201, window.text
    # The anomalies already stored in it are muted by the worker right after.
    wait_for_reach(store, window.json()["id"])
    shown = client.get(f"/api/maintenance-windows/{window.json()['id']}").json()
    assert shown["reach_pending"] is False
    muted = {a.reading_id: a.muted for a in stored_anomalies(store, metric_id)}
    assert all(muted[a.reading_id] for a in outage_alarms)

    # The next sweep rebuilds the metric's state from its history, outage kept out.
    assert owner_scan(client, sweep())["readings_judged"] == COUNT
    in_window = np.zeros(TOTAL, dtype=bool)
    in_window[OUTAGE] = True
    _, kept_out_state = one_pass(store, metric_id, ~in_window[:COUNT])
    assert stores.client.hget(keys.scan_state(metric_id), "state") == kept_out_state

    # Later readings are judged as one pass with the outage kept out judges them: the spike
    # a band widened by the outage would let pass alarms.
    store.readings.append(
        metric_id,
        [NewReading(f"n{i}", int(times[i]), float(values[i])) for i in range(COUNT, TOTAL)],
    )
    sweep()
    masked, _ = one_pass(store, metric_id, ~in_window)
    learnt, _ = one_pass(store, metric_id, None)
    assert AFTER in masked and AFTER not in learnt  # (the same series in one pass)
    later = {
        int(a.reading_id.removeprefix("n"))
        for a in stored_anomalies(store, metric_id)
        if a.reading_id.startswith("n")
    }
    assert later == {i for i in masked if i >= COUNT}

    # Deleted, the window's readings are learnt from again: rebuilt, as one pass learns.
    assert client.delete(f"/api/maintenance-windows/{window.json()['id']}").status_code == 204
    wait_for_reach(store, window.json()["id"])
    assert owner_scan(client, sweep())["readings_judged"] == TOTAL
    _, learnt_state = one_pass(store, metric_id, None)
    assert stores.client.hget(keys.scan_state(metric_id), "state") == learnt_state
    # Its anomalies stay muted: they were in maintenance when they were raised.
    muted = {a.reading_id: a.muted for a in stored_anomalies(store, metric_id)}
    assert all(muted[a.reading_id] for a in outage_alarms)


def late_from(store: Repositories, metric_id: str) -> int | None:
    """From where the next sweep must judge the metric again (None: it just goes on)."""
    [due] = store.metrics.due_for_scan(2**62, [metric_id])
    return due.late_from_ms


def test_only_a_window_that_reaches_judged_readings_rebuilds(
    client: httpx.Client, store: Repositories, sweep: Callable[..., Swept]
) -> None:
    start = recent_start(COUNT, STEP)
    metric_id, _ = add_metric(client, store, outage_series()[:COUNT], start, STEP)
    sweep()
    ahead = start + (COUNT + 12) * STEP
    window = client.post(
        "/api/maintenance-windows",
        json={
            "metric_id": metric_id,
            "start": ahead.isoformat(),
            "end": (ahead + timedelta(hours=1)).isoformat(),
            "reason": "deploy",
        },
    ).json()
    wait_for_reach(store, window["id"])
    renamed = client.patch(f"/api/maintenance-windows/{window['id']}", json={"reason": "4.2"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["reach_pending"] is False  # a new reason reaches nothing
    assert late_from(store, metric_id) is None  # nothing judged is covered, nor changed
    # Widened back over judged readings: they are judged again from the window's start.
    earlier = start + (COUNT - 30) * STEP
    widened = client.patch(
        f"/api/maintenance-windows/{window['id']}", json={"start": earlier.isoformat()}
    )
    assert widened.status_code == 200, widened.text
    wait_for_reach(store, window["id"])
    assert late_from(store, metric_id) == to_epoch_ms(earlier)
    assert owner_scan(client, sweep())["readings_judged"] == COUNT
    assert late_from(store, metric_id) is None


def test_a_window_over_an_open_incidents_anomalies_takes_them_out_of_it(
    client: httpx.Client, store: Repositories, sweep: Callable[..., Swept]
) -> None:
    step, count = timedelta(minutes=1), 300
    values = 100 + np.random.default_rng(5).normal(0, 0.5, count)
    values[count - 10 :] += 9.0  # ten minutes ago: recent enough to open an incident
    start = recent_start(count, step)
    metric_id, ids = add_metric(client, store, values, start, step)
    sweep()
    raised = [a for a in stored_anomalies(store, metric_id) if a.reading_id in ids[-10:]]
    assert raised and {a.id for a in raised} <= in_open_incidents(client)
    window = client.post(
        "/api/maintenance-windows",
        json={
            "metric_id": metric_id,
            "start": (start + (count - 10) * step).isoformat(),
            "end": (start + count * step).isoformat(),
            "reason": "failover drill",
        },
    )
    assert window.status_code == 201, window.text
    wait_for_reach(store, window.json()["id"])
    assert all(a.muted for a in stored_anomalies(store, metric_id) if a.reading_id in ids[-10:])
    assert in_open_incidents(client).isdisjoint(a.id for a in raised)
    # Left with no member, the incident is resolved at once, by maintenance.
    resolved = client.get("/api/incidents", params={"status": "resolved"}).json()["incidents"]
    assert [i["resolved_by"] for i in resolved] == ["maintenance"]


def test_a_window_made_while_a_batch_judges_into_it_is_kept_out_all_the_same(
    client: httpx.Client,
    store: Repositories,
    stores: RedisStores,
    settings: Settings,
    sweep: Callable[..., Swept],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch reads the windows (none); a window over the readings it judges is made and
    its reach applied (the metric judged only up to before it), then the batch learns from
    them and saves: the next sweep rebuilds the state without them all the same."""
    values = outage_series()
    start = recent_start(TOTAL, STEP)
    times = [to_epoch_ms(start + i * STEP) for i in range(TOTAL)]
    metric_id, _ = add_metric(client, store, values[: OUTAGE.start], start, STEP)
    sweep()
    store.readings.append(
        metric_id,
        [NewReading(f"n{i}", times[i], float(values[i])) for i in range(OUTAGE.start, COUNT)],
    )
    of_owners = store.maintenance.of_owners
    made: list[str] = []

    def then_a_window_is_made(owner_ids: Sequence[str]) -> object:
        windows = of_owners(owner_ids)
        if not made:  # between the batch's read of the windows and its saves
            window = client.post(
                "/api/maintenance-windows",
                json={
                    "metric_id": metric_id,
                    "start": from_epoch_ms(times[OUTAGE.start]).isoformat(),
                    "end": from_epoch_ms(times[OUTAGE.stop]).isoformat(),
                    "reason": "load test",
                },
            )
            assert window.status_code == 201, window.text
            made.append(window.json()["id"])
            wait_for_reach(store, made[0])  # by the session's worker, the batch holding on
        return windows

    monkeypatch.setattr(store.maintenance, "of_owners", then_a_window_is_made)
    judge_here(store, stores, settings, [metric_id])
    monkeypatch.undo()
    assert made
    _, learnt = one_pass(store, metric_id, None)
    assert stores.client.hget(keys.scan_state(metric_id), "state") == learnt  # the race ran

    sweep()
    in_window = np.zeros(COUNT, dtype=bool)
    in_window[OUTAGE] = True
    _, kept_out = one_pass(store, metric_id, ~in_window)
    assert stores.client.hget(keys.scan_state(metric_id), "state") == kept_out
