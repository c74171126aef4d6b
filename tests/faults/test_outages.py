"""The graph/Redis server dies under load and comes back: 503s meanwhile, then recovery.

Its own embedded server and app (not the session's): this test kills the server.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from common.embedded import EmbeddedServer
from common.metrics.integrity import check_chain
from common.stores import Repositories, connect_graph
from common.users.keys import new_api_key
from tests.support import ROOT, AppServer, settings_for, start_app, stop_app

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def iso(second: int) -> str:
    return (T0 + timedelta(seconds=second)).isoformat()


@dataclass
class Stack:
    server: EmbeddedServer
    app: AppServer
    store: Repositories
    key: str
    data_dir: Path
    servers: list[EmbeddedServer] = field(default_factory=list)

    def restart_server(self) -> None:
        # The same port and data dir: the app's configured URL stays right. stop() frees
        # the data dir's lock even when the server was killed.
        self.server.stop()
        self.server = EmbeddedServer(self.data_dir, port=self.server.port).start()
        self.servers.append(self.server)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    data_dir = tmp_path / "data"
    server = EmbeddedServer(data_dir).start()
    settings = settings_for(server)
    store = connect_graph(settings)
    store.ensure_schema()
    key = new_api_key()
    store.users.create("outage", key.hashed)
    app = start_app(
        {
            **os.environ,
            "GRAPH_URL": server.graph_url,
            "REDIS_URL": server.redis_url,
            "DATA_DIR": str(data_dir),
            "PYTHONPATH": str(ROOT),
        }
    )
    result = Stack(server, app, store, key.plain, data_dir, [server])
    yield result
    stop_app(app)
    store.close()
    for each in result.servers:
        each.stop()


@dataclass
class Traffic:
    """Requests sent in a loop from a thread, each answer recorded."""

    base_url: str
    key: str
    metric_id: str
    answers: list[tuple[str, int, str, str]] = field(
        default_factory=list
    )  # what, status, type, body
    acknowledged: list[str] = field(default_factory=list)  # reading ids answered 201
    stop: threading.Event = field(default_factory=threading.Event)
    next_second: int = 1000

    def run(self) -> None:
        with httpx.Client(
            base_url=self.base_url, headers={"X-API-Key": self.key}, timeout=15
        ) as http:
            while not self.stop.is_set():
                second = self.next_second
                self.next_second += 10
                batch = [
                    {"id": f"t{second + i}", "value": float(i), "timestamp": iso(second + i)}
                    for i in range(10)
                ]
                self._send(http, "batch", "POST", batch)
                self._send(http, "metric", "GET", None)
                self._send(http, "window", "GET", None, "/readings?limit=50")

    def _send(
        self,
        http: httpx.Client,
        what: str,
        method: str,
        batch: list[dict[str, object]] | None,
        suffix: str = "",
    ) -> None:
        url = f"/api/metrics/{self.metric_id}{'/readings' if batch else suffix}"
        body = {"readings": batch} if batch else None
        response = http.request(method, url, json=body)
        content_type = response.headers.get("content-type", "")
        self.answers.append((what, response.status_code, content_type, response.text))
        if batch and response.status_code == 201:
            self.acknowledged.extend(str(reading["id"]) for reading in batch)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def assert_down_says_which_never_where(stack: Stack, http: httpx.Client) -> None:
    down = http.get("/api/services")
    assert down.status_code == 503
    assert down.json()["detail"] == "the graph store is unavailable"
    assert down.headers.get("retry-after")
    # A caller without a valid key learns which dependency is down, never where it is.
    for headers in ({"X-API-Key": "nno_junk"}, {"Authorization": "Bearer nno_junk"}):
        anonymous = httpx.get(f"{stack.app.base_url}/api/services", headers=headers, timeout=15)
        assert anonymous.status_code == 503, anonymous.text
        assert anonymous.json() == {"detail": "the graph store is unavailable"}


def test_server_killed_under_load_then_back_without_app_restart(stack: Stack) -> None:
    http = httpx.Client(base_url=stack.app.base_url, headers={"X-API-Key": stack.key}, timeout=15)
    service = http.post("/api/services", json={"name": "outage"}).json()
    metric_id = http.post("/api/metrics", json={"name": "cpu", "service_id": service["id"]}).json()[
        "id"
    ]
    before = [{"id": f"b{s}", "value": float(s), "timestamp": iso(s)} for s in range(200)]
    assert (
        http.post(f"/api/metrics/{metric_id}/readings", json={"readings": before}).status_code
        == 201
    )

    traffic = Traffic(stack.app.base_url, stack.key, metric_id)
    thread = threading.Thread(target=traffic.run, daemon=True)
    thread.start()
    wait_for(lambda: len(traffic.acknowledged) >= 100, 30, "traffic to flow")

    # SIGKILL: no goodbye to clients, no final AOF flush by the server itself.
    assert stack.server.process is not None
    stack.server.process.kill()
    stack.server.process.wait(10)
    answered_before_kill = len(traffic.answers)
    wait_for(
        lambda: sum(1 for a in traffic.answers[answered_before_kill:] if a[1] == 503) >= 15,
        30,
        "503s while the server is down",
    )

    # /ready needs no key (a probe has none) and names what is down, nothing more.
    ready = httpx.get(f"{stack.app.base_url}/ready", timeout=15)
    assert ready.status_code == 503 and ready.headers.get("retry-after")
    assert ready.json() == {"status": "unavailable", "down": ["graph store", "redis"]}
    assert_down_says_which_never_where(stack, http)

    stack.restart_server()
    answered_at_restart = len(traffic.answers)
    wait_for(
        lambda: sum(1 for a in traffic.answers[answered_at_restart:] if a[1] == 201) >= 5,
        30,
        "the same app to store readings again",
    )
    traffic.stop.set()
    thread.join(20)
    assert not thread.is_alive(), "a request hung"

    # The same uvicorn process served all of it.
    assert stack.app.process.poll() is None
    statuses = {status for _, status, _, _ in traffic.answers}
    assert statuses <= {200, 201, 503}, statuses
    assert 503 in statuses
    for what, status, content_type, body in traffic.answers:
        if status == 503:
            assert content_type.startswith("application/json"), (what, body)
            assert "Traceback" not in body and 'File "' not in body, body
            detail = httpx.Response(503, content=body).json()["detail"]
            assert detail in (
                "the graph store is unavailable",
                "the job store (Redis) is unavailable",
            ), detail
            assert str(stack.server.port) not in body, body
    assert http.get("/ready").json() == {"status": "ready", "down": []}

    # Everything acknowledged before, during and after the outage is there, in one chain.
    stored = set(stack.store.readings.read_window(metric_id, None, None).ids)
    assert {reading["id"] for reading in before} <= stored
    missing = set(traffic.acknowledged) - stored
    assert not missing, f"{len(missing)} acknowledged readings lost, e.g. {sorted(missing)[:5]}"
    report = check_chain(stack.store.readings, metric_id)
    assert report.ok, report.problems
    assert report.readings == len(stored)
    # And the chain still grows at its end.
    late = {"id": "after", "value": 1.0, "timestamp": iso(10**6)}
    assert http.post(f"/api/metrics/{metric_id}/readings", json=late).status_code == 201
    assert http.get(f"/api/metrics/{metric_id}").json()["latest_reading"]["id"] == "after"
    assert check_chain(stack.store.readings, metric_id).ok
    http.close()


def test_graceful_stop_and_restart_keeps_data(stack: Stack) -> None:
    """A clean stop (SIGTERM, AOF flushed) while idle: same answers before and after."""
    http = httpx.Client(base_url=stack.app.base_url, headers={"X-API-Key": stack.key}, timeout=15)
    service = http.post("/api/services", json={"name": "kept"}).json()
    metric_id = http.post("/api/metrics", json={"name": "mem", "service_id": service["id"]}).json()[
        "id"
    ]
    batch = [{"id": f"k{s}", "value": s / 3, "timestamp": iso(s)} for s in range(500)]
    assert (
        http.post(f"/api/metrics/{metric_id}/readings", json={"readings": batch}).status_code == 201
    )
    page_before = http.get(f"/api/metrics/{metric_id}/readings?limit=1000").json()

    stack.server.stop()
    for url in ["/api/services", f"/api/metrics/{metric_id}", f"/api/metrics/{metric_id}/readings"]:
        response = http.get(url)
        assert response.status_code == 503, (url, response.text)
        assert "graph store is unavailable" in response.json()["detail"]
    posted = http.post(f"/api/metrics/{metric_id}/readings", json={"value": 1.0})
    assert posted.status_code == 503 and "Traceback" not in posted.text

    stack.restart_server()
    assert http.get(f"/api/metrics/{metric_id}/readings?limit=1000").json() == page_before
    assert check_chain(stack.store.readings, metric_id).ok
    assert http.post(f"/api/metrics/{metric_id}/readings", json={"value": 2.0}).status_code == 201
    http.close()
