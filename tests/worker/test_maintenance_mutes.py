"""Maintenance windows end to end, on each engine: detection jobs on a real worker store the
anomalies of readings in a window marked muted, and those open no incident and notify
nobody; a weekly window follows its time zone across a daylight-saving change."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pytest

from common.notifications.dispatch import SweepReport
from common.stores import Repositories
from tests.worker.incident_support import detect, flat_series, metric, service
from tests.worker.support import WorkerProcess, add_metric, wait_for, wait_for_reach
from tests.worker.webhook_receiver import Receiver, verify

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def anomalies(client: httpx.Client, metric_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/metrics/{metric_id}/anomalies")
    assert response.status_code == 200, response.text
    return response.json()["anomalies"]  # type: ignore[no-any-return]


def open_incidents(client: httpx.Client) -> list[dict[str, Any]]:
    return client.get("/api/incidents", params={"status": "open"}).json()["incidents"]  # type: ignore[no-any-return]


def test_a_mute_stops_incidents_and_notifications_but_not_storage(
    client: httpx.Client,
    store: Repositories,
    celery_worker: WorkerProcess,
    receiver: Receiver,
    sweep: Callable[[], SweepReport],
) -> None:
    channel = client.post(
        "/api/notification-channels", json={"type": "webhook", "url": receiver.url}
    ).json()
    db = service(client, "db")
    now = datetime.now(UTC)
    window = client.post(
        "/api/maintenance-windows",
        json={
            "service_id": db,
            "start": (now - timedelta(hours=1)).isoformat(),
            "end": (now + timedelta(hours=1)).isoformat(),
            "reason": "failover drill",
        },
    ).json()
    lag = metric(client, store, db, "lag", flat_series(20))  # a burst 20 minutes ago
    job = detect(client, lag)
    stored = anomalies(client, lag)
    assert len(stored) == job["summary"]["anomalies_stored"] >= 2
    assert all(a["muted"] for a in stored)
    assert open_incidents(client) == []
    sweep()
    assert client.get(channel["deliveries_url"]).json() == [] and receiver.received == []

    # The window over, the same behaviour of another metric of the service pages people,
    # and its incident does not mention the muted anomalies (same service, same minutes).
    assert client.delete(f"/api/maintenance-windows/{window['id']}").status_code == 204
    connections = metric(client, store, db, "connections", flat_series(20, seed=5))
    detect(client, connections)
    [incident] = open_incidents(client)
    detail = client.get(f"/api/incidents/{incident['id']}").json()
    assert {a["metric_id"] for a in detail["anomalies"]} == {connections}
    assert detail["members"] == len(anomalies(client, connections))
    sweep()
    wait_for(lambda: receiver.processed, 60, "the incident's notification")
    [event] = receiver.processed.values()
    assert event["event"] == "incident.opened"
    assert "lag" not in event["incident"]["title"]
    # A job over the muted readings again keeps them muted and out of the incident.
    detect(client, lag)
    assert all(a["muted"] for a in anomalies(client, lag))
    assert client.get(f"/api/incidents/{incident['id']}").json()["members"] == detail["members"]
    client.delete(f"/api/notification-channels/{channel['id']}")


def test_a_window_muting_some_members_of_an_open_incident_sends_one_update(
    client: httpx.Client,
    store: Repositories,
    celery_worker: WorkerProcess,
    receiver: Receiver,
    sweep: Callable[[], SweepReport],
) -> None:
    """A window made later over part of an open incident's anomalies takes them out (on the
    worker, as the window's reach); the incident stays open, and its receivers are told the
    new count, once, signed like every event."""
    channel = client.post(
        "/api/notification-channels", json={"type": "webhook", "url": receiver.url}
    ).json()
    lag = metric(client, store, service(client, "db"), "lag", flat_series(20, spike_len=4))
    detect(client, lag)
    [incident] = open_incidents(client)
    members = incident["members"]
    assert members >= 2
    sweep()
    [opened] = wait_for(lambda: list(receiver.processed.values()), 60, "incident.opened")
    assert opened["event"] == "incident.opened" and opened["incident"]["members"] == members

    first = min(a["timestamp"] for a in anomalies(client, lag))
    start = datetime.fromisoformat(first.replace("Z", "+00:00"))
    window = client.post(
        "/api/maintenance-windows",
        json={
            "metric_id": lag,
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=1)).isoformat(),
            "reason": "failover drill",
        },
    )
    assert window.status_code == 201, window.text
    wait_for_reach(store, window.json()["id"])
    [still_open] = open_incidents(client)
    assert still_open["id"] == incident["id"] and still_open["members"] == members - 1
    assert sweep().events == 1
    wait_for(lambda: len(receiver.processed) == 2, 60, "incident.updated")
    updated = list(receiver.processed.values())[1]
    assert updated["event"] == "incident.updated"
    assert updated["incident"]["members"] == members - 1
    assert updated["incident"]["revision"] == opened["incident"]["revision"] + 1
    for request in receiver.received:
        assert verify(channel["secret"], request.headers, request.body)
    assert sweep().events == 0  # told once
    client.delete(f"/api/notification-channels/{channel['id']}")


def test_weekly_window_mutes_by_local_time_across_a_dst_change(
    client: httpx.Client, store: Repositories, celery_worker: WorkerProcess
) -> None:
    # Readings every 10 minutes from Sunday 15 March 2026 to 8 April; Europe/Berlin moves
    # from UTC+1 to UTC+2 on Sunday 29 March. A spike at each of these (UTC) times:
    start, step = datetime(2026, 3, 15, tzinfo=UTC), timedelta(minutes=10)
    spikes = {
        "2026-03-22T00:30": False,  # 01:30 CET: before the window
        "2026-03-22T01:30": True,  # 02:30 CET
        "2026-03-29T01:30": True,  # 03:30 CEST, the night of the change
        "2026-04-05T00:30": True,  # 02:30 CEST (01:30 at winter's offset: would be out)
        "2026-04-05T02:30": False,  # 04:30 CEST (03:30 at winter's offset: would be in)
        "2026-04-06T01:30": False,  # a Monday
    }
    values = 50 + np.random.default_rng(11).normal(0, 0.5, 24 * 6 * 24)
    for moment in spikes:
        at = datetime.fromisoformat(moment).replace(tzinfo=UTC)
        values[(at - start) // step] += 40
    metric_id, _ = add_metric(client, store, values, start=start, step=step)
    weekly = {
        "days": ["sun"],
        "start_time": "02:00",
        "end_time": "04:00",
        "time_zone": "Europe/Berlin",
    }
    created = client.post(
        "/api/maintenance-windows",
        json={"metric_id": metric_id, "weekly": weekly, "reason": "weekly backup"},
    )
    assert created.status_code == 201, created.text
    detect(client, metric_id)
    found = {a["timestamp"].removesuffix(":00Z"): a["muted"] for a in anomalies(client, metric_id)}
    assert found == spikes
