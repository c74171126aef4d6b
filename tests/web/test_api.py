"""The CRUD API over real HTTP against the app, on each graph engine."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from common.metrics import queries as metric_queries
from common.metrics.integrity import check_chain
from common.stores import Repositories
from common.users.models import User

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def iso(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def make_service(client: httpx.Client, name: str = "checkout") -> str:
    response = client.post("/api/services", json={"name": name, "description": "payments"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def make_metric(client: httpx.Client, name: str = "cpu") -> str:
    service_id = make_service(client)
    response = client.post("/api/metrics", json={"name": name, "service_id": service_id})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_seed_flow_over_http_builds_the_chain(client: httpx.Client, store: Repositories) -> None:
    service_id = make_service(client)
    assert client.get(f"/api/services/{service_id}").json()["name"] == "checkout"
    assert [s["id"] for s in client.get("/api/services").json()] == [service_id]
    metric = client.post("/api/metrics", json={"name": "cpu", "service_id": service_id}).json()
    for i in range(5):
        response = client.post(
            f"/api/metrics/{metric['id']}/readings", json={"value": i, "timestamp": iso(i)}
        )
        assert response.status_code == 201 and response.json()["stored"] == 1
    listed = client.get(f"/api/metrics/service/{service_id}").json()
    assert len(listed) == 1
    assert listed[0]["latest_reading"]["value"] == 4
    assert listed[0]["latest_reading"]["timestamp"] == iso(4).replace("+00:00", "Z")
    report = check_chain(store.readings, metric["id"])
    assert report.ok and report.readings == 5


def test_reading_without_timestamp_is_stamped_now(client: httpx.Client) -> None:
    metric_id = make_metric(client)
    before = datetime.now(UTC)
    client.post(f"/api/metrics/{metric_id}/readings", json={"value": 1.5})
    latest = client.get(f"/api/metrics/{metric_id}").json()["latest_reading"]
    stamped = datetime.fromisoformat(latest["timestamp"])
    assert before - timedelta(seconds=1) <= stamped <= datetime.now(UTC) + timedelta(seconds=1)


def test_naive_timestamp_is_utc_and_offsets_are_converted(client: httpx.Client) -> None:
    metric_id = make_metric(client)
    client.post(
        f"/api/metrics/{metric_id}/readings", json={"value": 1, "timestamp": "2026-01-01T10:00:00"}
    )
    client.post(
        f"/api/metrics/{metric_id}/readings",
        json={"value": 2, "timestamp": "2026-01-01T12:00:00+01:00"},
    )
    readings = client.get(f"/api/metrics/{metric_id}/readings").json()["readings"]
    assert [r["timestamp"] for r in readings] == ["2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z"]


def test_shuffled_batch_and_singles_end_up_ordered(
    client: httpx.Client, store: Repositories
) -> None:
    metric_id = make_metric(client)
    seconds = list(range(100))
    random.Random(3).shuffle(seconds)
    batch = [{"value": s, "timestamp": iso(s), "id": f"r{s}"} for s in seconds[:60]]
    assert (
        client.post(f"/api/metrics/{metric_id}/readings", json={"readings": batch}).json()["stored"]
        == 60
    )
    for s in seconds[60:]:
        client.post(
            f"/api/metrics/{metric_id}/readings",
            json={"value": s, "timestamp": iso(s), "id": f"r{s}"},
        )
    report = check_chain(store.readings, metric_id)
    assert report.ok, report.problems
    assert report.readings == 100
    values = [
        r["value"]
        for r in client.get(f"/api/metrics/{metric_id}/readings?limit=1000").json()["readings"]
    ]
    assert values == list(range(100))


def test_resent_batch_stores_nothing_new(client: httpx.Client, store: Repositories) -> None:
    metric_id = make_metric(client)
    batch = {"readings": [{"value": i, "timestamp": iso(i), "id": f"id-{i}"} for i in range(20)]}
    first = client.post(f"/api/metrics/{metric_id}/readings", json=batch)
    again = client.post(f"/api/metrics/{metric_id}/readings", json=batch)
    assert first.status_code == again.status_code == 201
    assert first.json()["stored"] == 20
    assert again.json() == {**first.json(), "stored": 0, "duplicates": 20}
    assert check_chain(store.readings, metric_id).readings == 20


def test_readings_page_with_cursor_and_range(client: httpx.Client) -> None:
    metric_id = make_metric(client)
    batch = [{"value": i, "timestamp": iso(i)} for i in range(25)]
    client.post(f"/api/metrics/{metric_id}/readings", json={"readings": batch})
    values: list[float] = []
    url = f"/api/metrics/{metric_id}/readings?limit=10"
    while url:
        page = client.get(url).json()
        values += [r["value"] for r in page["readings"]]
        cursor = page["next_cursor"]
        url = f"/api/metrics/{metric_id}/readings?limit=10&cursor={cursor}" if cursor else ""
    assert values == list(range(25))
    ranged = client.get(
        f"/api/metrics/{metric_id}/readings", params={"start": iso(5), "end": iso(8)}
    )
    assert [r["value"] for r in ranged.json()["readings"]] == [5, 6, 7]
    assert client.get(f"/api/metrics/{metric_id}/readings?cursor=bogus!").status_code == 422


def test_update_and_delete_service_cascades(client: httpx.Client, store: Repositories) -> None:
    service_id = make_service(client)
    metric_id = client.post("/api/metrics", json={"name": "cpu", "service_id": service_id}).json()[
        "id"
    ]
    client.post(f"/api/metrics/{metric_id}/readings", json={"value": 1})
    patched = client.patch(
        f"/api/services/{service_id}", json={"name": "cart", "description": None}
    )
    assert patched.status_code == 200
    assert (patched.json()["name"], patched.json()["description"]) == ("cart", None)
    assert client.delete(f"/api/services/{service_id}").status_code == 204
    assert client.get(f"/api/services/{service_id}").status_code == 404
    assert client.get(f"/api/metrics/{metric_id}").status_code == 404
    assert len(store.readings.read_window(metric_id, None, None)) == 0


def test_metric_update_delete_and_duplicate_name(client: httpx.Client) -> None:
    service_id = make_service(client)
    cpu = client.post("/api/metrics", json={"name": "cpu", "service_id": service_id}).json()
    duplicate = client.post("/api/metrics", json={"name": "cpu", "service_id": service_id})
    assert duplicate.status_code == 409 and "cpu" in duplicate.json()["detail"]
    renamed = client.patch(
        f"/api/metrics/{cpu['id']}", json={"name": "cpu_user", "description": "%"}
    )
    assert renamed.json()["name"] == "cpu_user" and renamed.json()["description"] == "%"
    assert client.delete(f"/api/metrics/{cpu['id']}").status_code == 204
    assert client.get(f"/api/metrics/{cpu['id']}").status_code == 404


def test_a_metric_whose_delete_was_cut_short_is_gone_and_delete_carries_it_on(
    client: httpx.Client, store: Repositories
) -> None:
    """Deletes run in batches; one cut short halfway (the web process died) leaves the
    metric marked: gone for every request, refused to writers, finished by the next
    DELETE (or by the worker's finish-deletes sweep)."""
    service_id = make_service(client)
    metric_id = client.post("/api/metrics", json={"name": "cpu", "service_id": service_id}).json()[
        "id"
    ]
    readings = [{"value": float(i), "timestamp": f"2026-05-01T00:{i:02}:00Z"} for i in range(30)]
    client.post(f"/api/metrics/{metric_id}/readings", json={"readings": readings})
    store.executor.write(
        metric_queries.BEGIN_DELETE_METRIC,
        {"owner_id": client.user.id, "metric_id": metric_id, "now": 0},  # type: ignore[attr-defined]
    )
    assert client.get(f"/api/metrics/{metric_id}").status_code == 404
    assert client.get(f"/api/metrics/{metric_id}/readings").status_code == 404
    assert client.get(f"/api/metrics/service/{service_id}").json() == []
    appended = client.post(f"/api/metrics/{metric_id}/readings", json={"value": 1.0})
    assert appended.status_code == 404, appended.text
    job = client.post("/api/metrics/anomaly-detection", json={"metric_id": metric_id})
    assert job.status_code == 404
    assert client.delete(f"/api/metrics/{metric_id}").status_code == 204
    assert len(store.readings.read_window(metric_id, None, None)) == 0
    assert client.delete(f"/api/metrics/{metric_id}").status_code == 404
    # Its name is free again.
    again = client.post("/api/metrics", json={"name": "cpu", "service_id": service_id})
    assert again.status_code == 201


RACERS = 8
RACE_ROUNDS = 4


def race(
    client: httpx.Client, method: str, paths_and_bodies: list[tuple[str, object]]
) -> list[int]:
    """Send the requests at the same moment, each on its own connection; their statuses."""
    start = threading.Barrier(len(paths_and_bodies))

    def send(path_and_body: tuple[str, object]) -> int:
        path, body = path_and_body
        with httpx.Client(base_url=client.base_url, headers=client.headers, timeout=30) as http:
            start.wait(timeout=30)
            return http.request(method, path, json=body).status_code

    with ThreadPoolExecutor(len(paths_and_bodies)) as pool:
        return list(pool.map(send, paths_and_bodies))


def test_concurrent_metrics_with_one_name_are_one_201_and_409s(client: httpx.Client) -> None:
    # On Neo4j every request can find the name free; the uniqueness constraint then refuses
    # all but one, and that refusal must be a 409 like the sequential case, not a 500.
    for round_ in range(RACE_ROUNDS):
        service_id = make_service(client, f"race-{round_}")
        body = {"name": "cpu", "service_id": service_id}
        statuses = race(client, "POST", [("/api/metrics", body)] * RACERS)
        assert sorted(statuses) == [201] + [409] * (RACERS - 1), statuses
        assert len(client.get(f"/api/metrics/service/{service_id}").json()) == 1


def test_concurrent_renames_to_one_name_are_one_200_and_409s(client: httpx.Client) -> None:
    for round_ in range(RACE_ROUNDS):
        service_id = make_service(client, f"rename-{round_}")
        metric_ids = [
            client.post("/api/metrics", json={"name": f"m{i}", "service_id": service_id}).json()[
                "id"
            ]
            for i in range(RACERS)
        ]
        renames = [(f"/api/metrics/{metric_id}", {"name": "cpu"}) for metric_id in metric_ids]
        statuses = race(client, "PATCH", renames)
        assert sorted(statuses) == [200] + [409] * (RACERS - 1), statuses
        names = [m["name"] for m in client.get(f"/api/metrics/service/{service_id}").json()]
        assert names.count("cpu") == 1


def test_service_names_are_one_owners_own(
    client: httpx.Client, app_server: object, make_user: Callable[..., tuple[User, str]]
) -> None:
    checkout = make_service(client, "checkout")
    again = client.post("/api/services", json={"name": "checkout"})
    assert again.status_code == 409, again.text
    assert again.json()["detail"] == (
        "you already have a service named 'checkout': use it, or pick another name"
    )
    cart = make_service(client, "cart")
    renamed = client.patch(f"/api/services/{cart}", json={"name": "checkout"})
    assert renamed.status_code == 409 and "checkout" in renamed.json()["detail"]
    assert client.get(f"/api/services/{cart}").json()["name"] == "cart"  # unchanged
    assert client.patch(f"/api/services/{checkout}", json={"name": "checkout"}).status_code == 200
    # Another user's names are theirs: the same name is fine there.
    _, key = make_user("other")
    with httpx.Client(base_url=str(client.base_url), headers={"X-API-Key": key}) as other:
        assert other.post("/api/services", json={"name": "checkout"}).status_code == 201
    assert [s["name"] for s in client.get("/api/services").json()] == ["checkout", "cart"]


def test_concurrent_services_with_one_name_are_one_201_and_409s(client: httpx.Client) -> None:
    for round_ in range(RACE_ROUNDS):
        statuses = race(client, "POST", [("/api/services", {"name": f"svc-{round_}"})] * RACERS)
        assert sorted(statuses) == [201] + [409] * (RACERS - 1), statuses
    names = [s["name"] for s in client.get("/api/services").json()]
    assert sorted(names) == [f"svc-{r}" for r in range(RACE_ROUNDS)]


def test_two_users_cannot_see_each_others_data(
    client: httpx.Client, app_server: object, make_user: object
) -> None:
    service_id = make_service(client)
    metric_id = client.post("/api/metrics", json={"name": "cpu", "service_id": service_id}).json()[
        "id"
    ]
    _, other_key = make_user("mallory")  # type: ignore[operator]
    other = httpx.Client(
        base_url=str(client.base_url), headers={"Authorization": f"Bearer {other_key}"}
    )
    assert other.get("/api/services").json() == []
    for method, url, body in [
        ("GET", f"/api/services/{service_id}", None),
        ("PATCH", f"/api/services/{service_id}", {"name": "x"}),
        ("DELETE", f"/api/services/{service_id}", None),
        ("GET", f"/api/metrics/service/{service_id}", None),
        ("GET", f"/api/metrics/{metric_id}", None),
        ("PATCH", f"/api/metrics/{metric_id}", {"name": "x"}),
        ("DELETE", f"/api/metrics/{metric_id}", None),
        ("POST", f"/api/metrics/{metric_id}/readings", {"value": 1}),
        ("GET", f"/api/metrics/{metric_id}/readings", None),
        ("POST", "/api/metrics", {"name": "x", "service_id": service_id}),
    ]:
        response = other.request(method, url, json=body)
        assert response.status_code == 404, (method, url, response.text)
    # The owner still sees everything, unchanged.
    assert client.get(f"/api/services/{service_id}").json()["name"] == "checkout"
    assert client.get(f"/api/metrics/{metric_id}/readings").json()["readings"] == []


def test_missing_or_wrong_key_is_401(anonymous: httpx.Client) -> None:
    assert anonymous.get("/health").status_code == 200
    assert anonymous.get("/openapi.json").status_code == 200
    for url in ["/api/services", "/api/metrics/x", "/api/metrics/service/x"]:
        response = anonymous.get(url)
        assert response.status_code == 401 and "API key" in response.json()["detail"]
    wrong = anonymous.get("/api/services", headers={"X-API-Key": "nno_wrong"})
    assert wrong.status_code == 401 and wrong.json()["detail"] == "invalid API key"


def test_a_bad_reading_is_told_only_of_its_own_shape(client: httpx.Client) -> None:
    metric_id = make_metric(client)
    url = f"/api/metrics/{metric_id}/readings"
    single = client.post(url, json={"value": "high", "timestamp": "yesterday"})
    assert single.status_code == 422
    assert [(e["loc"], e["type"]) for e in single.json()["detail"]] == [
        (["body", "reading", "value"], "float_type"),
        (["body", "reading", "timestamp"], "datetime_from_date_parsing"),
    ]
    batch = client.post(url, json={"readings": [{"value": 1}, {"value": "high"}]})
    assert batch.status_code == 422
    assert [e["loc"] for e in batch.json()["detail"]] == [["body", "batch", "readings", 1, "value"]]


@pytest.mark.parametrize(
    "headers",
    [{"X-API-Key": "nno_junk"}, {"Authorization": "Bearer nno_junk"}, {}],
    ids=["junk-key", "junk-bearer", "no-key"],
)
@pytest.mark.parametrize(
    "body", ['{"value": 1', '{"value": "high"}', "\xff\xfe"], ids=["malformed", "invalid", "bytes"]
)
def test_the_key_is_checked_before_the_body(
    anonymous: httpx.Client, headers: dict[str, str], body: str
) -> None:
    response = anonymous.post(
        "/api/metrics/x/readings",
        content=body.encode("latin-1"),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"


def test_ready_answers_a_probe_without_a_key(anonymous: httpx.Client) -> None:
    response = anonymous.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "down": []}


BAD_READINGS = [
    pytest.param('{"value": NaN}', id="nan"),
    pytest.param('{"value": Infinity}', id="infinity"),
    pytest.param('{"value": -Infinity}', id="minus-infinity"),
    pytest.param('{"value": 1e309}', id="overflow"),
    pytest.param('{"value": "high"}', id="string"),
    pytest.param('{"value": 1, "colour": "red"}', id="unknown-field"),
    pytest.param('{"value": 1, "timestamp": "yesterday"}', id="bad-timestamp"),
    pytest.param('{"value": 1, "timestamp": "1500-01-01T00:00:00Z"}', id="ancient"),
    pytest.param('{"value": 1, "timestamp": "9999-01-01T00:00:00Z"}', id="far-future"),
    pytest.param('{"value": 1, "id": ""}', id="empty-id"),
    pytest.param('{"readings": [{"value": 1}, {"value": NaN}]}', id="nan-in-batch"),
    pytest.param('{"value": 1', id="malformed-json"),
    pytest.param("[]", id="not-an-object"),
]


@pytest.mark.parametrize("body", BAD_READINGS)
def test_bad_readings_are_422_and_change_nothing(
    client: httpx.Client, store: Repositories, body: str
) -> None:
    metric_id = make_metric(client)
    client.post(
        f"/api/metrics/{metric_id}/readings", json={"value": 7, "timestamp": iso(0), "id": "keep"}
    )
    response = client.post(
        f"/api/metrics/{metric_id}/readings",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"]
    window = store.readings.read_window(metric_id, None, None)
    assert window.ids == ["keep"] and list(window.values) == [7.0]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"name": ""}, id="empty"),
        pytest.param({"name": "x" * 101}, id="101-chars"),
        pytest.param({"name": "bad\x00name"}, id="control-char"),
        pytest.param({"name": "ok", "owner": "someone"}, id="unknown-field"),
        pytest.param({}, id="missing"),
    ],
)
def test_bad_service_names_are_422_and_change_nothing(
    client: httpx.Client, body: dict[str, str]
) -> None:
    make_service(client)
    response = client.post("/api/services", json=body)
    assert response.status_code == 422, response.text
    assert [s["name"] for s in client.get("/api/services").json()] == ["checkout"]


def test_100_character_name_is_fine(client: httpx.Client) -> None:
    assert client.post("/api/services", json={"name": "x" * 100}).status_code == 201


def test_oversized_batch_is_413_naming_the_limit(client: httpx.Client, store: Repositories) -> None:
    metric_id = make_metric(client)
    batch = {"readings": [{"value": i} for i in range(10_001)]}
    response = client.post(f"/api/metrics/{metric_id}/readings", json=batch)
    assert response.status_code == 413
    assert "10000" in response.json()["detail"]
    assert len(store.readings.read_window(metric_id, None, None)) == 0


def test_oversized_body_is_413(client: httpx.Client) -> None:
    metric_id = make_metric(client)
    body = json.dumps({"readings": [{"value": 1.0, "id": "x" * 190}] * 40_000})
    response = client.post(
        f"/api/metrics/{metric_id}/readings",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]


def test_oversized_chunked_body_is_413(client: httpx.Client) -> None:
    metric_id = make_metric(client)

    def chunks():  # no Content-Length: the limit is enforced while streaming
        yield b'{"readings": ['
        for _ in range(30_000):
            yield b'{"value": 1.0, "id": "' + b"y" * 200 + b'"},'
        yield b'{"value": 1.0}]}'

    response = client.post(
        f"/api/metrics/{metric_id}/readings",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413


def test_unknown_ids_are_404(client: httpx.Client) -> None:
    assert client.get("/api/services/nope").status_code == 404
    assert client.get("/api/metrics/nope").status_code == 404
    assert client.post("/api/metrics/nope/readings", json={"value": 1}).status_code == 404
    response = client.post("/api/metrics", json={"name": "cpu", "service_id": "nope"})
    assert response.status_code == 404 and "nope" in response.json()["detail"]
