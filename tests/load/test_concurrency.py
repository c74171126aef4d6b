"""Many client processes appending at once over HTTP: every reading kept, every chain whole.

Each client is its own OS process with its own HTTP client, against a uvicorn with two
worker processes, so appends to one metric really race: in the web tier (two processes,
each with a thread pool) and at the graph store (which must serialise them).
"""

from __future__ import annotations

import multiprocessing
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from common.metrics.integrity import check_chain
from common.stores import Repositories
from common.users.models import User
from tests.support import AppServer, start_app, stop_app

pytestmark = pytest.mark.slow

CLIENTS = 8
READINGS_PER_CLIENT = 500
T0 = datetime(2026, 3, 1, tzinfo=UTC)
# Request sizes a client cycles through: mostly single readings, some batches.
CHUNK_SIZES = (1, 1, 1, 40, 1, 1, 25, 1, 60, 1, 1, 10)
RUN_TIMEOUT = 120  # seconds for all clients together


@pytest.fixture(scope="module")
def two_worker_app(service_env: dict[str, str], store: Repositories) -> Iterator[AppServer]:
    """The app under uvicorn with two worker processes (the session app has one)."""
    app = start_app(service_env, workers=2)
    yield app
    stop_app(app)


def client_plan(client: int, metric_ids: list[str]) -> list[tuple[str, list[dict[str, object]]]]:
    """The requests one client sends: (metric id, readings), in a shuffled order.

    Reading i of client c is at second i * CLIENTS + c, so the clients' timestamps interleave;
    the shuffle makes every client send some readings older than ones already stored.
    With several metrics, reading i goes to metric (i + c) % len(metric_ids).
    """
    readings = [
        (
            metric_ids[(i + client) % len(metric_ids)],
            {
                "id": f"c{client}-{i}",
                "value": float(i),
                "timestamp": (T0 + timedelta(seconds=i * CLIENTS + client)).isoformat(),
            },
        )
        for i in range(READINGS_PER_CLIENT)
    ]
    requests: list[tuple[str, list[dict[str, object]]]] = []
    position, turn = 0, 0
    while position < len(readings):
        size = CHUNK_SIZES[(turn + client) % len(CHUNK_SIZES)]
        chunk = readings[position : position + size]
        position, turn = position + size, turn + 1
        by_metric: dict[str, list[dict[str, object]]] = {}
        for metric_id, reading in chunk:
            by_metric.setdefault(metric_id, []).append(reading)
        requests.extend(by_metric.items())
    random.Random(client).shuffle(requests)
    return requests


def run_client(args: tuple[str, str, int, list[str]]) -> list[tuple[int, int, str]]:
    """One client process: send its plan; return (status, stored, body if not 201) per request."""
    base_url, key, client, metric_ids = args
    outcomes: list[tuple[int, int, str]] = []
    with httpx.Client(base_url=base_url, headers={"X-API-Key": key}, timeout=30) as http:
        for metric_id, readings in client_plan(client, metric_ids):
            body = readings[0] if len(readings) == 1 else {"readings": readings}
            response = http.post(f"/api/metrics/{metric_id}/readings", json=body)
            if response.status_code == 201:
                outcomes.append((201, response.json()["stored"], ""))
            else:
                outcomes.append((response.status_code, 0, response.text[:300]))
    return outcomes


def run_clients(base_url: str, key: str, metric_ids: list[str]) -> list[tuple[int, int, str]]:
    context = multiprocessing.get_context("spawn")
    with context.Pool(CLIENTS) as pool:
        jobs = [(base_url, key, client, metric_ids) for client in range(CLIENTS)]
        results = pool.map_async(run_client, jobs).get(timeout=RUN_TIMEOUT)
    return [outcome for client_outcomes in results for outcome in client_outcomes]


def make_metrics(base_url: str, key: str, count: int) -> list[str]:
    with httpx.Client(base_url=base_url, headers={"X-API-Key": key}, timeout=30) as http:
        service = http.post("/api/services", json={"name": "load"}).json()
        return [
            http.post("/api/metrics", json={"name": f"m{i}", "service_id": service["id"]}).json()[
                "id"
            ]
            for i in range(count)
        ]


def assert_all_stored(outcomes: list[tuple[int, int, str]]) -> None:
    failures = [outcome for outcome in outcomes if outcome[0] != 201]
    assert not failures, f"{len(failures)} requests failed, first: {failures[:3]}"
    assert sum(stored for _, stored, _ in outcomes) == CLIENTS * READINGS_PER_CLIENT


def assert_chain_whole(store: Repositories, metric_id: str, expected: int) -> None:
    report = check_chain(store.readings, metric_id)
    assert report.ok, report.problems
    assert report.readings == expected and report.linked == expected
    window = store.readings.read_window(metric_id, None, None)
    assert len(window) == expected
    assert len(set(window.ids)) == expected
    # LATEST_READING is on the newest: check_chain compares it with the max timestamp, and
    # the API answers with it too.
    assert window.timestamps_ms.tolist() == sorted(window.timestamps_ms.tolist())


def test_eight_clients_append_to_one_metric(
    two_worker_app: AppServer, store: Repositories, make_user: Callable[..., tuple[User, str]]
) -> None:
    _, key = make_user("load-one")
    [metric_id] = make_metrics(two_worker_app.base_url, key, 1)
    started = time.monotonic()
    outcomes = run_clients(two_worker_app.base_url, key, [metric_id])
    elapsed = time.monotonic() - started
    assert_all_stored(outcomes)
    total = CLIENTS * READINGS_PER_CLIENT
    assert_chain_whole(store, metric_id, total)
    newest_second = (READINGS_PER_CLIENT - 1) * CLIENTS + CLIENTS - 1
    with httpx.Client(base_url=two_worker_app.base_url, headers={"X-API-Key": key}) as http:
        latest = http.get(f"/api/metrics/{metric_id}").json()["latest_reading"]
    assert datetime.fromisoformat(latest["timestamp"]) == T0 + timedelta(seconds=newest_second)
    assert elapsed < RUN_TIMEOUT


def test_eight_clients_append_to_eight_metrics(
    two_worker_app: AppServer, store: Repositories, make_user: Callable[..., tuple[User, str]]
) -> None:
    _, key = make_user("load-many")
    metric_ids = make_metrics(two_worker_app.base_url, key, CLIENTS)
    outcomes = run_clients(two_worker_app.base_url, key, metric_ids)
    assert_all_stored(outcomes)
    # Reading i of client c went to metric (i + c) % 8: 500 readings per metric.
    for metric_id in metric_ids:
        assert_chain_whole(store, metric_id, CLIENTS * READINGS_PER_CLIENT // len(metric_ids))
