"""Chart reads over real HTTP: the readings page as columns, and the downsampled series."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import httpx
import numpy as np
import pytest

from common.metrics.models import Reading, ReadingSeries
from common.stores import Repositories
from common.users.models import User
from tests.support import AppServer
from tests.worker.support import T0, WorkerProcess, add_metric, poll_job, seasonal_series
from web.schemas.readings import reading_page_json

T0_MS = int(T0.timestamp() * 1000)
STEP = timedelta(minutes=5)


def series(client: httpx.Client, metric_id: str, **params: object) -> dict[str, object]:
    response = client.get(f"/api/metrics/{metric_id}/series", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_readings_page_is_what_the_models_would_write(
    client: httpx.Client, store: Repositories
) -> None:
    metric_id, ids = add_metric(client, store, np.array([1.5, -2.0, 3.25, 1e300]))
    # A timestamp with milliseconds, written by pydantic as .250000Z.
    client.post(
        f"/api/metrics/{metric_id}/readings",
        json={"value": 7, "timestamp": (T0 + timedelta(hours=1, milliseconds=250)).isoformat()},
    )
    response = client.get(f"/api/metrics/{metric_id}/readings", params={"limit": 3})
    assert response.headers["content-type"] == "application/json"
    first = response.json()
    expected = [
        Reading(id=ids[i], timestamp=T0 + i * STEP, value=v).model_dump(mode="json")
        for i, v in enumerate([1.5, -2.0, 3.25])
    ]
    assert first["readings"] == expected
    rest = client.get(
        f"/api/metrics/{metric_id}/readings", params={"cursor": first["next_cursor"]}
    ).json()
    assert [r["value"] for r in rest["readings"]] == [1e300, 7.0]
    assert rest["readings"][1]["timestamp"] == "2026-03-02T01:00:00.250000Z"
    assert rest["next_cursor"] is None


def test_small_window_is_the_readings_themselves(client: httpx.Client, store: Repositories) -> None:
    values = np.array([3.0, 1.0, 4.0, 1.0, 5.0])
    metric_id, _ = add_metric(client, store, values)
    body = series(client, metric_id, points=10)
    assert body["downsampled"] is False and body["bucket_ms"] is None
    assert body["readings"] == 5
    assert body["timestamps_ms"] == [T0_MS + i * 300_000 for i in range(5)]
    assert body["min"] == body["max"] == values.tolist()
    assert body["start"] == "2026-03-02T00:00:00Z"
    assert body["band"] is None


def test_downsampling_keeps_a_one_reading_spike_and_dip(
    client: httpx.Client, store: Repositories
) -> None:
    values = np.full(5000, 10.0)
    values[1234] = 500.0
    values[4321] = -300.0
    metric_id, _ = add_metric(client, store, values)
    body = series(client, metric_id, points=200)
    assert body["downsampled"] is True
    assert 100 < len(body["timestamps_ms"]) <= 200  # type: ignore[arg-type]
    assert max(body["max"]) == 500.0  # type: ignore[type-var]
    assert min(body["min"]) == -300.0  # type: ignore[type-var]
    assert sum(body["count"]) == 5000  # type: ignore[arg-type]
    # The spike's bucket is the one holding its timestamp.
    bucket_ms = body["bucket_ms"]
    assert isinstance(bucket_ms, int)
    spike_slot = body["max"].index(500.0)  # type: ignore[attr-defined]
    bucket_start = body["timestamps_ms"][spike_slot]  # type: ignore[index]
    assert bucket_start <= T0_MS + 1234 * 300_000 < bucket_start + bucket_ms


def test_window_bounds_select_and_bucket_from_start(
    client: httpx.Client, store: Repositories
) -> None:
    metric_id, _ = add_metric(client, store, np.arange(100, dtype=float))
    start, end = T0 + 10 * STEP, T0 + 60 * STEP
    body = series(client, metric_id, start=start.isoformat(), end=end.isoformat(), points=10)
    assert body["readings"] == 50 and body["downsampled"] is True
    assert body["bucket_ms"] == 5 * 300_000
    assert body["min"] == [float(v) for v in range(10, 60, 5)]
    assert body["max"] == [float(v) for v in range(14, 60, 5)]
    assert body["timestamps_ms"][0] == int(start.timestamp() * 1000)  # type: ignore[index]


def test_open_end_after_a_start_past_the_newest_reading_is_an_empty_window(
    client: httpx.Client, store: Repositories
) -> None:
    metric_id, _ = add_metric(client, store, np.arange(10, dtype=float))
    start = (T0 + 100 * STEP).isoformat().replace("+00:00", "Z")
    body = series(client, metric_id, start=start)
    assert body["readings"] == 0 and body["timestamps_ms"] == []
    assert body["start"] == body["end"] == start


def test_empty_metric_has_an_empty_series(client: httpx.Client) -> None:
    service = client.post("/api/services", json={"name": "empty"}).json()
    metric = client.post("/api/metrics", json={"name": "m", "service_id": service["id"]}).json()
    body = series(client, metric["id"])
    assert body["readings"] == 0 and body["timestamps_ms"] == [] and body["start"] is None
    # A window that ends before it starts is empty too, as for the readings page.
    backwards = {"start": "2026-03-02T01:00:00Z", "end": "2026-03-02T00:00:00Z"}
    body = series(client, metric["id"], **backwards)
    assert body["readings"] == 0 and body["end"] == "2026-03-02T00:00:00Z"


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"points": 1}, "points"),
        ({"points": 10_001}, "points"),
        ({"start": "1700000000"}, "ISO 8601"),
    ],
)
def test_bad_series_parameters_are_422_saying_what(
    client: httpx.Client, store: Repositories, params: dict[str, object], problem: str
) -> None:
    metric_id, _ = add_metric(client, store, np.ones(3))
    response = client.get(f"/api/metrics/{metric_id}/series", params=params)
    assert response.status_code == 422
    assert problem in response.text


def test_another_users_series_is_not_found(
    client: httpx.Client,
    store: Repositories,
    app_server: AppServer,
    make_user: Callable[..., tuple[User, str]],
) -> None:
    metric_id, _ = add_metric(client, store, np.ones(3))
    _, other_key = make_user("other")
    response = httpx.get(
        f"{app_server.base_url}/api/metrics/{metric_id}/series", headers={"X-API-Key": other_key}
    )
    assert response.status_code == 404


@pytest.mark.slow
def test_job_band_lands_on_the_same_slots(
    client: httpx.Client, store: Repositories, celery_worker: WorkerProcess
) -> None:
    values = seasonal_series(3000, spike_at=2500)
    metric_id, _ = add_metric(client, store, values)
    submitted = client.post(
        "/api/metrics/anomaly-detection",
        json={"metric_id": metric_id, "method": "rolling", "window": 48},
    ).json()
    job = poll_job(client, submitted["job_id"])
    assert job["status"] == "succeeded", job
    result = client.get(f"/api/jobs/{job['id']}/result", params={"limit": 3000}).json()

    raw = series(client, metric_id, points=5000, job_id=job["id"])
    assert raw["downsampled"] is False
    band = raw["band"]
    assert isinstance(band, dict) and band["method"] == "rolling"
    assert band["expected"] == [p["expected"] for p in result["points"]]
    assert band["upper"] == [p["upper"] for p in result["points"]]

    # A zoomed window reads only the result's chunks it overlaps (1,000 points each): one
    # across the first boundary, one inside the last chunk; and one after the newest reading.
    points = result["points"]
    for first, stop in ((900, 1100), (2100, 2200)):
        zoomed = series(
            client, metric_id, start=points[first]["timestamp"], end=points[stop]["timestamp"],
            points=5000, job_id=job["id"],
        )  # fmt: skip
        band = zoomed["band"]
        assert isinstance(band, dict) and zoomed["readings"] == stop - first
        assert band["expected"] == [p["expected"] for p in points[first:stop]]
        assert band["score"] == [p["score"] for p in points[first:stop]]
    # Bucketed, the last bucket's width is rounded up past the window's end, where the
    # spike is: the spike's score must not leak into the band of a window without it.
    before_spike = series(
        client, metric_id, start=points[2400]["timestamp"], end=points[2500]["timestamp"],
        points=7, job_id=job["id"],
    )  # fmt: skip
    band = before_spike["band"]
    assert isinstance(band, dict) and before_spike["downsampled"] is True
    inside = [p["score"] for p in points[2400:2500] if p["score"] is not None]
    assert max(s for s in band["score"] if s is not None) == max(inside) < points[2500]["score"]
    later = series(
        client, metric_id, start="2100-01-01T00:00:00Z", end="2100-01-02T00:00:00Z",
        job_id=job["id"],
    )  # fmt: skip
    band = later["band"]
    assert isinstance(band, dict) and later["readings"] == 0 and band["expected"] == []

    bucketed = series(client, metric_id, points=100, job_id=job["id"])
    band = bucketed["band"]
    assert isinstance(band, dict)
    assert len(band["score"]) == len(bucketed["timestamps_ms"])  # type: ignore[arg-type]
    # The spike's bucket carries the job's highest score.
    spike_slot = int(np.argmax(bucketed["max"]))  # type: ignore[arg-type]
    scores = [s if s is not None else 0.0 for s in band["score"]]
    assert int(np.argmax(scores)) == spike_slot and scores[spike_slot] >= 1

    other_metric, _ = add_metric(client, store, np.ones(3))
    response = client.get(f"/api/metrics/{other_metric}/series", params={"job_id": job["id"]})
    assert response.status_code == 422 and "not on" in response.text
    response = client.get(f"/api/metrics/{metric_id}/series", params={"job_id": "nope"})
    assert response.status_code == 404


def test_page_json_escapes_ids_and_writes_null_for_what_json_cannot_hold() -> None:
    ids = ['quote " and \\ backslash', "emoji 🚀 ünïcode", "plain"]
    page = ReadingSeries(
        ids=ids,
        timestamps_ms=np.array([T0_MS, T0_MS + 1, T0_MS + 1000], dtype=np.int64),
        values=np.array([1.5, 2.0, 3.0]),
    )
    body = json.loads(reading_page_json(page, "next"))
    assert [r["id"] for r in body["readings"]] == ids
    assert body["next_cursor"] == "next"
    page = ReadingSeries(ids=["a"], timestamps_ms=np.array([T0_MS]), values=np.array([np.nan]))
    assert json.loads(reading_page_json(page, None))["readings"][0]["value"] is None
