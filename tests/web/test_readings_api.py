"""Readings of many metrics in one request (`POST /api/readings`) over real HTTP, on each
engine: metrics named by id or by service and name, created when asked, refused series
reported beside the stored ones, retries stored once, the metric limit and the clock skew.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from common.metrics.integrity import check_chain
from common.stores import Repositories
from common.users.models import User
from tests.support import AppServer, start_app, stop_app

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def iso(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def batch(prefix: str, count: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"id": f"{prefix}-{i}", "value": float(i), "timestamp": iso(i)}
        for i in range(start, start + count)
    ]


def new_service(http: httpx.Client, name: str) -> str:
    response = http.post("/api/services", json={"name": name})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def new_metric(http: httpx.Client, service_id: str, name: str) -> str:
    response = http.post("/api/metrics", json={"name": name, "service_id": service_id})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def post(http: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return http.post("/api/readings", json=body)


def test_series_named_by_id_and_by_name_are_stored_in_one_request(
    client: httpx.Client, store: Repositories
) -> None:
    service_id = new_service(client, "checkout")
    cpu = new_metric(client, service_id, "cpu")
    memory = new_metric(client, service_id, "memory")
    disk = new_metric(client, service_id, "disk")
    response = post(
        client,
        {
            "series": [
                {"metric_id": cpu, "readings": batch("c", 3)},
                {"service_id": service_id, "metric_name": "memory", "readings": batch("m", 2)},
                {"service_name": "checkout", "metric_name": "disk", "readings": batch("d", 1)},
            ]
        },
    )
    assert response.status_code == 201, response.text
    answer = response.json()
    assert {k: answer[k] for k in ("received", "stored", "duplicates", "refused")} == {
        "received": 6, "stored": 6, "duplicates": 0, "refused": 0,
    }  # fmt: skip
    assert [s["metric_id"] for s in answer["series"]] == [cpu, memory, disk]
    assert answer["series"][0]["ids"] == ["c-0", "c-1", "c-2"]
    assert all(s["error"] is None and not s["created"] for s in answer["series"])
    for metric_id, count in ((cpu, 3), (memory, 2), (disk, 1)):
        report = check_chain(store.readings, metric_id)
        assert report.ok and report.readings == count, report.problems
    assert client.get(f"/api/metrics/{cpu}").json()["latest_reading"]["id"] == "c-2"


def test_create_missing_makes_service_and_metric_with_labels_once(client: httpx.Client) -> None:
    body = {
        "create_missing": True,
        "series": [
            {
                "service_name": "node",
                "metric_name": 'node_cpu_seconds_total{cpu="0",mode="idle"}',
                "labels": {"cpu": "0", "mode": "idle"},
                "readings": batch("a", 3),
            },
            {"service_name": "node", "metric_name": "node_load1", "readings": batch("b", 2)},
        ],
    }
    first = post(client, body)
    assert first.status_code == 201, first.text
    created = first.json()
    assert created["metrics_created"] == 2 and created["stored"] == 5
    assert [s["created"] for s in created["series"]] == [True, True]
    [service] = client.get("/api/services").json()
    assert service["name"] == "node"
    listed = {m["name"]: m for m in client.get(f"/api/metrics/service/{service['id']}").json()}
    cpu = listed['node_cpu_seconds_total{cpu="0",mode="idle"}']
    assert cpu["labels"] == {"cpu": "0", "mode": "idle"}
    assert listed["node_load1"]["labels"] == {}
    assert cpu["latest_reading"]["id"] == "a-2"

    # The same request again (a retry after a timeout): nothing made or stored twice.
    again = post(client, body)
    assert again.status_code == 201, again.text
    retried = again.json()
    assert [s["metric_id"] for s in retried["series"]] == [
        s["metric_id"] for s in created["series"]
    ]
    assert (retried["received"], retried["stored"], retried["duplicates"]) == (5, 0, 5)
    assert retried["metrics_created"] == 0
    assert len(client.get("/api/services").json()) == 1
    assert len(client.get(f"/api/metrics/service/{service['id']}").json()) == 2


def test_a_refused_series_does_not_stop_the_others(
    client: httpx.Client, store: Repositories
) -> None:
    service_id = new_service(client, "api")
    good = new_metric(client, service_id, "latency")
    other = new_metric(client, service_id, "errors")
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = json.dumps(
        {
            "series": [
                {"metric_id": "no-such-metric", "readings": batch("x", 1)},
                {"metric_id": good, "readings": batch("g", 4)},
                {"metric_id": other, "readings": [{"value": float("nan")}]},
                {"metric_id": other, "readings": [{"value": 1.0, "timestamp": future}]},
                {"service_name": "api", "metric_name": "nope", "readings": batch("n", 1)},
                {"metric_id": good, "readings": batch("again", 1)},
                "not a series",
            ]
        }
    )  # json.dumps writes NaN, as many clients do; the API refuses it
    response = client.post(
        "/api/readings", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 207, response.text
    answer = response.json()
    assert (answer["received"], answer["stored"], answer["refused"]) == (9, 4, 5)
    errors = [s["error"] for s in answer["series"]]
    assert errors[1] is None and answer["series"][1]["stored"] == 4
    assert [(e["status"], e["reason"]) for e in errors if e] == [
        (404, "not_found"),
        (422, "invalid"),
        (422, "future_timestamp"),
        (404, "not_found"),
        (422, "duplicate_series"),
        (422, "invalid"),
    ]
    assert "readings.0.value" in errors[2]["message"]
    assert "MAX_CLOCK_SKEW_SECONDS" in errors[3]["message"]
    assert "reading 0" in errors[3]["message"]
    assert "create_missing" in errors[4]["message"]
    assert check_chain(store.readings, good).readings == 4
    assert check_chain(store.readings, other).readings == 0


def test_when_every_series_is_refused_the_answer_is_their_status(client: httpx.Client) -> None:
    unknown = post(client, {"series": [{"metric_id": "nope", "readings": batch("x", 1)}]})
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["stored"] == 0 and "metric nope not found" in unknown.json()["detail"]
    mixed = post(
        client,
        {
            "series": [
                {"metric_id": "nope", "readings": batch("x", 1)},
                {"metric_name": "no service", "readings": batch("y", 1)},
            ]
        },
    )
    assert mixed.status_code == 422, mixed.text
    assert mixed.json()["series"][1]["error"]["reason"] == "invalid"


# Past the repository's check of unique names, as an older database's two services of one name.
RENAME_SERVICE = "MATCH (s:Service {id: $service_id}) SET s.name = $name"


def test_a_service_name_two_services_share_is_ambiguous(
    client: httpx.Client, store: Repositories
) -> None:
    if store.executor.engine == "neo4j":
        pytest.skip("Neo4j's service_name constraint keeps one owner's service names unique")
    owner: User = client.user  # type: ignore[attr-defined]
    store.services.create(owner.id, "twin", None)
    # Service names are unique now; a database made before may hold two of one name.
    second = store.services.create(owner.id, "twin-2", None)
    store.executor.write(RENAME_SERVICE, {"service_id": second.id, "name": "twin"})
    response = post(
        client,
        {
            "create_missing": True,
            "series": [{"service_name": "twin", "metric_name": "cpu", "readings": batch("t", 1)}],
        },
    )
    assert response.status_code == 409, response.text
    assert "service_id" in response.json()["series"][0]["error"]["message"]


def test_the_envelope_is_checked_before_anything_is_stored(client: httpx.Client) -> None:
    service_id = new_service(client, "big")
    metric_id = new_metric(client, service_id, "cpu")
    too_many = {"series": [{"metric_id": metric_id, "readings": batch("r", 10_001)}]}
    response = post(client, too_many)
    assert response.status_code == 413, response.text
    assert "MAX_BATCH_READINGS" in response.json()["detail"]
    assert post(client, {"series": []}).status_code == 422
    assert post(client, {"series": [], "extra": 1}).status_code == 422
    assert client.get(f"/api/metrics/{metric_id}").json()["latest_reading"] is None


def test_single_metric_readings_beyond_the_clock_skew_are_refused(
    client: httpx.Client, store: Repositories
) -> None:
    service_id = new_service(client, "clock")
    metric_id = new_metric(client, service_id, "cpu")
    soon = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    ok = client.post(f"/api/metrics/{metric_id}/readings", json={"value": 1, "timestamp": soon})
    assert ok.status_code == 201, ok.text
    far = [{"value": 2, "timestamp": iso(0)}, {"value": 3, "timestamp": "2199-01-01T00:00:00Z"}]
    refused = client.post(f"/api/metrics/{metric_id}/readings", json={"readings": far})
    assert refused.status_code == 422, refused.text
    detail = refused.json()["detail"]
    assert "reading 1" in detail and "2199-01-01" in detail and "600 s" in detail
    assert check_chain(store.readings, metric_id).readings == 1


@pytest.fixture
def small_limit_app(service_env: dict[str, str]) -> Iterator[AppServer]:
    app = start_app(service_env, {"MAX_METRICS_PER_OWNER": "3"})
    yield app
    stop_app(app)


@pytest.fixture
def limited(
    small_limit_app: AppServer, make_user: Callable[..., tuple[User, str]]
) -> Iterator[httpx.Client]:
    _, key = make_user()
    with httpx.Client(
        base_url=small_limit_app.base_url, headers={"X-API-Key": key}, timeout=30
    ) as http:
        yield http


def test_the_metric_limit_refuses_new_series_and_names_them(limited: httpx.Client) -> None:
    service_id = new_service(limited, "fleet")
    new_metric(limited, service_id, "m0")
    series = [
        {"service_name": "fleet", "metric_name": f"m{i}", "readings": batch(f"r{i}", 1)}
        for i in range(5)
    ]
    response = post(limited, {"create_missing": True, "series": series})
    assert response.status_code == 207, response.text
    answer = response.json()
    assert [s["created"] for s in answer["series"]] == [False, True, True, False, False]
    assert answer["stored"] == 3 and answer["refused"] == 2
    refusals = [s["error"] for s in answer["series"][3:]]
    assert {(e["status"], e["reason"]) for e in refusals} == {(429, "metric_limit")}
    assert (
        "fleet/m3" in refusals[0]["message"] and "MAX_METRICS_PER_OWNER" in refusals[0]["message"]
    )
    assert "3" in refusals[0]["message"]
    # Every other way of making a metric keeps to the limit too.
    over = limited.post("/api/metrics", json={"name": "m9", "service_id": service_id})
    assert over.status_code == 429, over.text
    assert "MAX_METRICS_PER_OWNER" in over.json()["detail"]
    assert "retry-after" not in over.headers  # fewer metrics, not later, would succeed
    only = post(
        limited,
        {
            "create_missing": True,
            "series": [{"service_name": "new", "metric_name": "x", "readings": batch("z", 1)}],
        },
    )
    assert only.status_code == 429, only.text
    assert [s["name"] for s in limited.get("/api/services").json()] == ["fleet"]
