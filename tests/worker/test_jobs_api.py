"""Detection jobs end to end: HTTP → Redis broker → a real worker process → graph + Redis."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis
from PIL import PngImagePlugin

from common import redis_keys as keys
from common.detection import minimum_points
from common.graph.params import KeysetPage
from common.ids import new_id
from common.stores import Repositories
from common.users.models import User
from tests.support import AppServer, start_app, stop_app
from tests.worker.support import WorkerProcess, add_metric, poll_job, seasonal_series

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

SPIKE = 500


def detect_and_wait(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    """Submit a detection job with ?wait=30; the job as it was when the wait ended."""
    answer = client.post("/api/metrics/anomaly-detection", params={"wait": 30}, json=body)
    assert answer.status_code in (200, 202), answer.text
    job: dict[str, Any] = answer.json()["job"]
    return job


@pytest.fixture
def spiky_metric(client: httpx.Client, store: Repositories) -> tuple[str, list[str]]:
    return add_metric(client, store, seasonal_series(600, period=48, spike_at=SPIKE))


def test_detection_job_flags_the_spike_and_stores_it(
    client: httpx.Client,
    store: Repositories,
    celery_worker: WorkerProcess,
    spiky_metric: tuple[str, list[str]],
) -> None:
    metric_id, ids = spiky_metric
    submitted = client.post(
        "/api/metrics/anomaly-detection",
        json={"metric_id": metric_id, "method": "stl", "period": 48},
    )
    assert submitted.status_code == 202, submitted.text
    accepted = submitted.json()
    assert accepted["status"] == "queued"
    assert accepted["status_url"] == f"/api/jobs/{accepted['job_id']}"

    job = poll_job(client, accepted["job_id"])
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0 and job["attempts"] == 1
    assert job["started_at"] and job["finished_at"] and job["error"] is None
    summary = job["summary"]
    assert summary["method"] == "stl" and summary["points"] == 600
    assert summary["anomalies_stored"] >= 1
    assert set(summary["latest"]) >= {
        "timestamp", "value", "window_mean", "window_std_dev", "is_anomaly"
    }  # fmt: skip

    page = client.get(job["result_url"], params={"offset": 450, "limit": 100}).json()
    assert page["total"] == 600 and page["offset"] == 450 and page["next_offset"] == 550
    assert len(page["points"]) == 100
    spike = page["points"][SPIKE - 450]
    assert spike["reading_id"] == ids[SPIKE] and spike["is_anomaly"] is True
    assert spike["score"] >= 1 and spike["value"] > spike["upper"]
    assert any(event["peak_index"] == SPIKE for event in page["events"])

    stored = store.anomalies.list_page(metric_id, KeysetPage(None, None, 1000))
    assert ids[SPIKE] in {anomaly.reading_id for anomaly in stored}
    assert all(anomaly.job_id == job["id"] for anomaly in stored)
    listed = client.get(f"/api/metrics/{metric_id}/anomalies").json()["anomalies"]
    assert {a["reading_id"] for a in listed} == {a.reading_id for a in stored}
    spike_anomaly = next(a for a in listed if a["reading_id"] == ids[SPIKE])
    assert spike_anomaly["kind"] == "spike" and spike_anomaly["summary"].startswith("spike +")
    assert 0 < spike_anomaly["probability"] < 1e-3


def test_default_detector_alarms_once_and_says_what_it_saw(
    client: httpx.Client,
    store: Repositories,
    celery_worker: WorkerProcess,
    spiky_metric: tuple[str, list[str]],
) -> None:
    metric_id, ids = spiky_metric
    job = detect_and_wait(client, {"metric_id": metric_id})
    assert job["status"] == "succeeded", job
    assert job["summary"]["method"] == "auto"
    assert job["summary"]["method_params"]["sensitivity"] == 3e-4
    page = client.get(job["result_url"], params={"offset": 0, "limit": 600}).json()
    spike = page["points"][SPIKE]
    assert spike["is_anomaly"] is True and spike["probability"] <= 3e-4
    assert [e["kind"] for e in page["events"] if e["start_index"] == SPIKE] == ["spike"]
    # Quiet on the rest: the seasonal series is otherwise normal.
    assert page["flagged"] <= 2
    stored = {
        a["reading_id"]: a
        for a in client.get(f"/api/metrics/{metric_id}/anomalies").json()["anomalies"]
    }
    assert stored[ids[SPIKE]]["kind"] == "spike" and stored[ids[SPIKE]]["method"] == "auto"


def test_rerunning_a_job_does_not_duplicate_anomalies(
    client: httpx.Client,
    store: Repositories,
    celery_worker: WorkerProcess,
    spiky_metric: tuple[str, list[str]],
) -> None:
    metric_id, _ = spiky_metric
    body = {"metric_id": metric_id, "method": "rolling", "window": 24}
    first = poll_job(
        client, client.post("/api/metrics/anomaly-detection", json=body).json()["job_id"]
    )
    count = len(store.anomalies.list_page(metric_id, KeysetPage(None, None, 10_000)))
    second = poll_job(
        client, client.post("/api/metrics/anomaly-detection", json=body).json()["job_id"]
    )
    assert first["status"] == second["status"] == "succeeded"
    assert first["summary"]["anomalies_stored"] == second["summary"]["anomalies_stored"] == count
    assert len(store.anomalies.list_page(metric_id, KeysetPage(None, None, 10_000))) == count


def test_seed_body_with_wait_answers_the_final_job(
    client: httpx.Client, store: Repositories, celery_worker: WorkerProcess
) -> None:
    values = seasonal_series(200, spike_at=199)
    # Readings half a minute off the minute: the last two hours hold exactly 120 of them.
    start = datetime.now(UTC) - timedelta(minutes=200, seconds=-30)
    metric_id, _ = add_metric(client, store, values, start=start, step=timedelta(minutes=1))
    service_id = client.get(f"/api/metrics/{metric_id}").json()["service_id"]
    answer = client.post(
        "/api/metrics/anomaly-detection",
        params={"wait": 30},
        json={
            "service_id": service_id,
            "metric_name": "cpu",
            "time_window_seconds": 7200,
            "sigma_threshold": 3,
        },
    )
    assert answer.status_code == 200, answer.text
    job = answer.json()["job"]
    assert job["status"] == "succeeded" and job["summary"]["points"] == 120
    latest = job["summary"]["latest"]
    assert latest["value"] == pytest.approx(values[-1])
    assert latest["is_anomaly"] is True and latest["window_std_dev"] > 0


@pytest.mark.parametrize(("in_the_hour", "last_seconds_ago"), [(60, 30), (59, 90)])
def test_seed_body_judges_an_hour_of_per_minute_readings(
    client: httpx.Client,
    store: Repositories,
    celery_worker: WorkerProcess,
    in_the_hour: int,
    last_seconds_ago: int,
) -> None:
    """The seed's own request on the seed's own cadence: the last hour of per-minute
    readings holds 59 or 60 of them, one short of the default window of 60 (the job failed
    with "needs at least 61 readings"). The window fits the readings there are."""
    values = seasonal_series(200, spike_at=199)
    end = datetime.now(UTC) - timedelta(seconds=last_seconds_ago)
    start = end - timedelta(minutes=199)
    metric_id, _ = add_metric(client, store, values, start=start, step=timedelta(minutes=1))
    service_id = client.get(f"/api/metrics/{metric_id}").json()["service_id"]
    job = detect_and_wait(
        client,
        {
            "service_id": service_id,
            "metric_name": "cpu",
            "time_window_seconds": 3600,
            "sigma_threshold": 3,
        },
    )
    assert job["status"] == "succeeded", job
    summary = job["summary"]
    assert summary["points"] == in_the_hour
    assert summary["method_params"]["window"] == in_the_hour - 1
    assert "window_fitted" in summary["method_params"]
    assert summary["latest"]["is_anomaly"] is True
    assert summary["latest"]["method_is_anomaly"] is True


def test_too_few_readings_fail_with_a_clear_message(
    client: httpx.Client, store: Repositories, celery_worker: WorkerProcess
) -> None:
    metric_id, _ = add_metric(client, store, seasonal_series(10))
    job_id = client.post(
        "/api/metrics/anomaly-detection",
        json={"metric_id": metric_id, "method": "stl", "period": 48},
    ).json()["job_id"]
    job = poll_job(client, job_id)
    assert job["status"] == "failed" and job["summary"] is None
    assert str(minimum_points("stl", 48, None)) in job["error"], job["error"]
    result = client.get(job["result_url"])
    assert result.status_code == 409 and "failed" in result.json()["detail"]


def test_unknown_metric_is_not_found(client: httpx.Client) -> None:
    answer = client.post("/api/metrics/anomaly-detection", json={"metric_id": new_id()})
    assert answer.status_code == 404
    by_name = client.post(
        "/api/metrics/anomaly-detection",
        json={"service_id": new_id(), "metric_name": "cpu", "time_window_seconds": 60},
    )
    assert by_name.status_code == 404


def test_metric_without_readings_is_refused_at_once(client: httpx.Client) -> None:
    service = client.post("/api/services", json={"name": "empty"}).json()
    metric = client.post("/api/metrics", json={"name": "m", "service_id": service["id"]}).json()
    answer = client.post("/api/metrics/anomaly-detection", json={"metric_id": metric["id"]})
    assert answer.status_code == 422 and "no readings" in answer.json()["detail"]


def test_another_users_job_is_not_found(
    client: httpx.Client,
    app_server: AppServer,
    make_user: Callable[..., tuple[User, str]],
    celery_worker: WorkerProcess,
    spiky_metric: tuple[str, list[str]],
) -> None:
    metric_id, _ = spiky_metric
    job_id = client.post("/api/metrics/anomaly-detection", json={"metric_id": metric_id}).json()[
        "job_id"
    ]
    _, other_key = make_user("other")
    with httpx.Client(base_url=app_server.base_url, headers={"X-API-Key": other_key}) as other:
        for path in ("", "/result", "/plot.png"):
            assert other.get(f"/api/jobs/{job_id}{path}").status_code == 404
        assert job_id not in {job["id"] for job in other.get("/api/jobs").json()["jobs"]}
        assert other.get(f"/api/metrics/{metric_id}/anomalies").status_code == 404
    assert client.get(f"/api/jobs/{new_id()}").status_code == 404
    assert job_id in {job["id"] for job in client.get("/api/jobs").json()["jobs"]}


def test_ids_of_the_wrong_shape_are_not_found(
    client: httpx.Client,
    app_server: AppServer,
    make_user: Callable[..., tuple[User, str]],
    celery_worker: WorkerProcess,
    spiky_metric: tuple[str, list[str]],
) -> None:
    metric_id, _ = spiky_metric
    job_id = detect_and_wait(client, {"metric_id": metric_id})["id"]
    # "<id>:result" named the job's result in Redis (a hash): WRONGTYPE, a 500, for the
    # owner and for anyone else, while an unknown id was 404 (telling them the id exists).
    wrong = [f"{job_id}:result", f"{job_id}:finished", f"{job_id.upper()}", "job", "*", "a" * 200]
    _, other_key = make_user("other")
    with httpx.Client(base_url=app_server.base_url, headers={"X-API-Key": other_key}) as other:
        for http in (client, other):
            for bad in wrong:
                for path in ("", "/result", "/plot.png"):
                    answer = http.get(f"/api/jobs/{bad}{path}")
                    assert answer.status_code == 404, (bad, path, answer.text)
                    assert answer.json() == {"detail": f"job {bad} not found"}
            answer = http.get(
                f"/api/metrics/{metric_id}/series", params={"job_id": f"{job_id}:result"}
            )
            assert answer.status_code == 404, answer.text
        # Another user's real id answers exactly as an unknown one does.
        unknown = new_id()
        assert other.get(f"/api/jobs/{job_id}").json() == {"detail": f"job {job_id} not found"}
        assert other.get(f"/api/jobs/{unknown}").json() == {"detail": f"job {unknown} not found"}
    assert client.get(f"/api/jobs/{job_id}:result").status_code == 404


def test_result_plot_is_a_png(
    client: httpx.Client, celery_worker: WorkerProcess, spiky_metric: tuple[str, list[str]]
) -> None:
    metric_id, _ = spiky_metric
    job_id = detect_and_wait(client, {"metric_id": metric_id})["id"]
    plot = client.get(f"/api/jobs/{job_id}/plot.png")
    assert plot.status_code == 200 and plot.headers["content-type"] == "image/png"
    assert plot.content.startswith(b"\x89PNG")
    # Titled with the names a person knows (stored with the result), not the metric's id.
    service_id = client.get(f"/api/metrics/{metric_id}").json()["service_id"]
    service_name = client.get(f"/api/services/{service_id}").json()["name"]
    title = PngImagePlugin.PngImageFile(io.BytesIO(plot.content)).text["Title"]
    assert title.startswith(f"{service_name} / cpu — ") and metric_id not in title


def test_expired_result_is_reported(
    client: httpx.Client,
    service_env: dict[str, str],
    celery_worker: WorkerProcess,
    spiky_metric: tuple[str, list[str]],
) -> None:
    metric_id, _ = spiky_metric
    job_id = detect_and_wait(client, {"metric_id": metric_id})["id"]
    assert client.get(f"/api/jobs/{job_id}").json()["result_expired"] is False
    with redis.Redis.from_url(service_env["REDIS_URL"]) as direct:
        assert direct.ttl(keys.job_result(job_id)) > 0  # it would expire on its own
        direct.delete(keys.job_result(job_id))  # as if RESULT_TTL_SECONDS had passed
    job = client.get(f"/api/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and job["result_expired"] is True
    assert job["summary"] is not None
    gone = client.get(f"/api/jobs/{job_id}/result")
    assert gone.status_code == 410 and "expired" in gone.json()["detail"]
    assert client.get(f"/api/jobs/{job_id}/plot.png").status_code == 410


def test_anomalies_are_paged(
    client: httpx.Client, store: Repositories, celery_worker: WorkerProcess
) -> None:
    values = seasonal_series(400, period=48)
    for index in (100, 150, 200, 250, 300):
        values[index] += 40
    metric_id, ids = add_metric(client, store, values)
    detect_and_wait(client, {"metric_id": metric_id, "method": "stl", "period": 48})
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        params: dict[str, str | int] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/api/metrics/{metric_id}/anomalies", params=params).json()
        seen += [a["reading_id"] for a in page["anomalies"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert {ids[i] for i in (100, 150, 200, 250, 300)} <= set(seen)


def test_redis_down_answers_503_naming_redis(
    service_env: dict[str, str], make_user: Callable[..., tuple[User, str]]
) -> None:
    app = start_app(service_env, {"REDIS_URL": "redis://127.0.0.1:1/0"})
    try:
        _, key = make_user("no-redis")
        with httpx.Client(base_url=app.base_url, headers={"X-API-Key": key}, timeout=30) as http:
            for answer in (http.get(f"/api/jobs/{new_id()}"), http.get("/api/jobs")):
                assert answer.status_code == 503, answer.text
                # Which dependency, never where it is (port 1 here).
                assert answer.json()["detail"] == "the job store (Redis) is unavailable"
    finally:
        stop_app(app)
