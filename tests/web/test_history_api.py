"""The readings API over real HTTP, before and after compaction: pages (a cursor taken
before compaction keeps working after it, across the boundary), the chart series, the
metric's latest reading and a late reading into the compacted past."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from common.epoch import to_epoch_ms
from common.metrics.compaction import MaintenanceReport, compact_metric
from common.metrics.models import CompactionTarget
from common.stores import Repositories

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def pages(
    client: httpx.Client, metric_id: str, limit: int, cursor: str | None = None
) -> list[dict[str, object]]:
    """Every page from `cursor` on, as the API sends them."""
    out = []
    while True:
        params: dict[str, object] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = client.get(f"/api/metrics/{metric_id}/readings", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        out.append(body)
        cursor = body["next_cursor"]
        if cursor is None:
            return out


def test_pages_cursors_and_series_read_the_same_across_the_boundary(
    client: httpx.Client, store: Repositories
) -> None:
    service = client.post("/api/services", json={"name": "db"}).json()["id"]
    metric = client.post("/api/metrics", json={"name": "qps", "service_id": service}).json()["id"]
    batch = [
        {
            "value": round(100 + (i % 13) * 0.25, 2),
            "timestamp": (T0 + timedelta(minutes=i)).isoformat(),
        }
        for i in range(3000)
    ]
    assert (
        client.post(f"/api/metrics/{metric}/readings", json={"readings": batch}).status_code == 201
    )
    before = pages(client, metric, 700)
    cursor = before[0]["next_cursor"]
    series_before = client.get(f"/api/metrics/{metric}/series", params={"points": 300}).json()
    metric_before = client.get(f"/api/metrics/{metric}").json()

    boundary = to_epoch_ms(T0 + timedelta(minutes=2000))
    report = MaintenanceReport()
    latest = to_epoch_ms(T0 + timedelta(minutes=2999))
    compact_metric(store.readings, CompactionTarget(metric, None, latest), boundary, report)
    assert report.compacted == 2000

    assert pages(client, metric, 700) == before
    assert pages(client, metric, 700, cursor) == before[1:]  # a cursor from before
    assert (
        client.get(f"/api/metrics/{metric}/series", params={"points": 300}).json() == series_before
    )
    assert client.get(f"/api/metrics/{metric}").json() == metric_before

    # A late reading into the compacted past is stored once, and read in its place.
    late = {"value": 1.5, "timestamp": (T0 + timedelta(minutes=10, seconds=30)).isoformat()}
    for stored in (1, 0):
        answer = client.post(f"/api/metrics/{metric}/readings", json=late).json()
        assert answer["stored"] == stored and answer["duplicates"] == 1 - stored
    first = client.get(f"/api/metrics/{metric}/readings", params={"limit": 12}).json()
    assert first["readings"][11] == answer_reading(late)


def answer_reading(sent: dict[str, object]) -> dict[str, object]:
    """A reading sent without an id, as the API reads it back."""
    moment = datetime.fromisoformat(str(sent["timestamp"]))
    return {
        "id": f"{to_epoch_ms(moment)}:{sent['value']}",
        "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "value": sent["value"],
    }
