"""The `neonomaly` command as users run it: real processes, real embedded server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from common.embedded import EmbeddedServer, running_server
from common.graph.params import KeysetPage
from common.metrics.models import NewReading
from common.settings import Settings
from common.stores import connect_graph
from common.users.keys import hash_api_key
from common.users.service import create_user
from tests.neo4j_server import Neo4jServer
from tests.support import ROOT, free_port, settings_for

NEONOMALY = [sys.executable, "-m", "common.cli"]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean_env = {
        k: v for k, v in os.environ.items() if k not in ("GRAPH_URL", "REDIS_URL", "DATA_DIR")
    }
    return subprocess.run(
        [*NEONOMALY, *args], check=False, capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**clean_env, "PYTHONPATH": str(ROOT), **(env or {})},
    )  # fmt: skip


def key_is_stored(data_dir: Path, key: str) -> bool:
    server = EmbeddedServer(data_dir).start()
    try:
        store = connect_graph(settings_for(server))
        return store.users.find_by_key_hash(hash_api_key(key)) is not None
    finally:
        server.stop()


def test_create_user_without_a_server_prints_a_working_key(tmp_path: Path) -> None:
    result = run_cli("create-user", "alice", "--data-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("nno_") and " " not in key
    assert f"in the embedded store in {tmp_path.resolve()}." in result.stdout
    assert running_server(tmp_path) is None  # the temporary server is gone
    assert key_is_stored(tmp_path, key)


def test_create_user_refuses_a_name_taken(tmp_path: Path) -> None:
    assert run_cli("create-user", "alice", "--data-dir", str(tmp_path)).returncode == 0
    again = run_cli("create-user", "alice", "--data-dir", str(tmp_path))
    assert again.returncode == 1 and again.stdout == ""
    assert again.stderr == "neonomaly: a user named 'alice' exists already: pick another name\n"


def test_check_chain_verifies_a_metric_and_refuses_an_id_it_does_not_know(tmp_path: Path) -> None:
    """An id mistyped (or from another data dir) used to print "0 readings, 0 on the chain"
    and exit 0, as for a chain found whole."""
    server = EmbeddedServer(tmp_path).start()
    try:
        store = connect_graph(settings_for(server))
        store.ensure_schema()
        user, _ = create_user(store.users, "erin")
        service = store.services.create(user.id, "checkout", None)
        metric = store.metrics.create(user.id, service.id, "cpu", None)
        readings = [NewReading(f"r{i}", 1_795_600_800_000 + i * 60_000, 40.0 + i) for i in range(3)]
        store.readings.append(metric.id, readings)
        store.close()

        found = run_cli("check-chain", metric.id, "--data-dir", str(tmp_path))
        assert (found.returncode, found.stdout) == (0, "3 readings, 3 on the chain\n"), found.stderr
        unknown = run_cli("check-chain", "no-such-metric", "--data-dir", str(tmp_path))
    finally:
        server.stop()
    assert (unknown.returncode, unknown.stdout) == (1, "")
    assert unknown.stderr == (
        f"neonomaly: no metric 'no-such-metric' in the embedded store in {tmp_path.resolve()}\n"
    )


@pytest.mark.neo4j
def test_check_chain_on_neo4j_refuses_an_id_it_does_not_know(neo4j_server: Neo4jServer) -> None:
    unknown = run_cli("check-chain", "no-such-metric", env=neo4j_server.graph_env())
    assert (unknown.returncode, unknown.stdout) == (1, "")
    assert unknown.stderr == (
        f"neonomaly: no metric 'no-such-metric' in the graph at {neo4j_server.uri}\n"
    )


def test_create_user_attaches_to_a_running_server(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path).start()
    try:
        result = run_cli("create-user", "bob", "--data-dir", str(tmp_path))
        assert result.returncode == 0, result.stderr
        key = result.stdout.strip().splitlines()[-1]
        store = connect_graph(settings_for(server))
        assert store.users.find_by_key_hash(hash_api_key(key)) is not None
        assert running_server(tmp_path) == server.address  # still the same, still running
    finally:
        server.stop()


def test_up_on_a_data_dir_in_use_says_who_holds_it_and_exits_non_zero(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path).start()
    try:
        result = run_cli(
            "up", "--data-dir", str(tmp_path), "--port", str(free_port()),
            "--flower-port", str(free_port()),
        )  # fmt: skip
        assert result.returncode != 0
        assert f"already runs on {tmp_path.resolve()}" in result.stderr
        assert f"pid {os.getpid()}" in result.stderr
        assert f"redis://127.0.0.1:{server.port}/0" in result.stderr
        assert server.password not in result.stdout + result.stderr
        assert running_server(tmp_path) == server.address  # untouched
    finally:
        server.stop()


def wait_for(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout}s")


def start_up(
    data_dir: Path, port: int, flower_port: int, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*NEONOMALY, "up", "--data-dir", str(data_dir), "--port", str(port),
         "--flower-port", str(flower_port)],
        cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "FLOWER_BASIC_AUTH": "admin:secret",
             **(env or {})},
        process_group=0,  # as a shell starts a foreground job: Ctrl-C goes to this group
    )  # fmt: skip


def stop_up(process: subprocess.Popen[str]) -> str:
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends: the whole group
    output, _ = process.communicate(timeout=60)
    return output


def process_tree_pids(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if not children.exists():
        return []
    direct = [int(child) for child in children.read_text().split()]
    return direct + [p for child in direct for p in process_tree_pids(child)]


def flower_lists_the_workers(flower_port: int, timeout: float = 15) -> bool:
    """Flower lists the workers (jobs, deliveries, sweeper) as it is, without being told to look
    again (?refresh=1): its one look at start-up found them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = httpx.get(
            f"http://127.0.0.1:{flower_port}/api/workers", auth=("admin", "secret"), timeout=15
        )
        assert workers.status_code == 200, workers.text
        names = {name.split("@")[0] for name in workers.json()}
        if {"worker", "deliveries", "sweeper"} <= names:
            return True
        time.sleep(1)  # its start-up inspection may still be under way
    return False


def banner_comes_first(output: str) -> list[str]:
    """The supervisor's own lines (not the children's logs): the banner and nothing before
    it. Returns the banner's lines."""
    lines = output.splitlines()
    start = lines.index("Neonomaly is up:")
    own = ("embedded ", "graph store", "Neonomaly", "  web ", "  flower ", "  store ")
    assert not [line for line in lines[:start] if line.startswith(own)], lines[:start]
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("Create an API key"))
    return lines[start : end + 1]


@pytest.mark.slow
def test_up_serves_everything_and_stops_cleanly(tmp_path: Path) -> None:
    port, flower_port = free_port(), free_port()
    process = start_up(tmp_path, port, flower_port)
    try:
        wait_for(f"http://127.0.0.1:{port}/health")
        wait_for(f"http://127.0.0.1:{flower_port}/", timeout=60)
        children = process_tree_pids(process.pid)
        # embedded server, web, worker, deliveries, sweeper, beat, flower
        assert len(children) >= 7
        result = run_cli("create-user", "carol", "--data-dir", str(tmp_path))
        key = result.stdout.strip().splitlines()[-1]
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": key})
        assert api.post("/api/services", json={"name": "kept"}).status_code == 201
        assert api.get("/ready").json() == {"status": "ready", "down": []}
        assert flower_lists_the_workers(flower_port)
    finally:
        output = stop_up(process)
    assert process.returncode == 0, output
    # Each child is stopped once, by the supervisor: none also takes the terminal's signal
    # (uvicorn then printed its lifespan cancelled; the store stopped under the workers).
    assert "Traceback" not in output, output
    banner = banner_comes_first(output)
    assert banner[1] == f"  web     http://127.0.0.1:{port}/ui   (API docs: /docs)"
    assert banner[2] == f"  flower  http://127.0.0.1:{flower_port} (user admin)"
    assert banner[3].startswith("  store   redis://127.0.0.1:")
    assert f"embedded graph store + redis (data and password in {tmp_path})" in banner[3]
    for pid in children:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )
    assert running_server(tmp_path) is None

    # Data survives a restart.
    process = start_up(tmp_path, port, flower_port)
    try:
        wait_for(f"http://127.0.0.1:{port}/health")
        services = httpx.get(f"http://127.0.0.1:{port}/api/services", headers={"X-API-Key": key})
        assert [s["name"] for s in services.json()] == ["kept"]
    finally:
        stop_up(process)


@pytest.mark.slow
@pytest.mark.neo4j
def test_up_on_neo4j_runs_the_seed_flow_and_a_detection_job(
    tmp_path: Path, neo4j_server: Neo4jServer
) -> None:
    """GRAPH_URL=bolt://... alone: web, worker, beat and Flower on Neo4j, Redis embedded."""
    port, flower_port = free_port(), free_port()
    graph_env = neo4j_server.graph_env()
    process = start_up(tmp_path, port, flower_port, graph_env)
    try:
        wait_for(f"http://127.0.0.1:{port}/health")
        result = run_cli("create-user", "dana", env=graph_env)
        assert result.returncode == 0, result.stderr
        assert f"in the graph at {neo4j_server.uri}." in result.stdout
        key = result.stdout.strip().splitlines()[-1]
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": key}, timeout=60
        )
        assert api.get("/ready").json() == {"status": "ready", "down": []}
        # The seed's flow: a service, a metric in it, readings, detection over a window.
        service = api.post("/api/services", json={"name": "checkout"}).json()
        metric = api.post("/api/metrics", json={"name": "cpu", "service_id": service["id"]})
        assert metric.status_code == 201, metric.text
        start = datetime.now(UTC) - timedelta(minutes=100)
        readings = [
            {"value": 50.0 + (i % 5) + (60.0 if i == 99 else 0.0),
             "timestamp": (start + timedelta(minutes=i)).isoformat(), "id": f"r{i}"}
            for i in range(100)
        ]  # fmt: skip
        posted = api.post(
            f"/api/metrics/{metric.json()['id']}/readings", json={"readings": readings}
        )
        assert posted.status_code == 201 and posted.json()["stored"] == 100, posted.text
        answer = api.post(
            "/api/metrics/anomaly-detection",
            params={"wait": 60},
            json={"service_id": service["id"], "metric_name": "cpu",
                  "time_window_seconds": 7200, "sigma_threshold": 3},
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
        job = answer.json()["job"]
        assert job["status"] == "succeeded", job
        assert job["summary"]["points"] == 100 and job["summary"]["latest"]["is_anomaly"] is True
        # The anomalies are in Neo4j itself, linked to the reading they flag.
        store = connect_graph(
            Settings(**{k.lower(): v for k, v in graph_env.items()}, _env_file=None)  # type: ignore[arg-type]
        )
        try:
            stored = store.anomalies.list_page(metric.json()["id"], KeysetPage(None, None, 100))
        finally:
            store.close()
        assert "r99" in {anomaly.reading_id for anomaly in stored}
        # Flower starts once the three workers answer (Supervisor._wait_for_workers).
        wait_for(f"http://127.0.0.1:{flower_port}/", timeout=90)
        assert flower_lists_the_workers(flower_port)
    finally:
        output = stop_up(process)
    assert process.returncode == 0, output
    # Each child is stopped once, by the supervisor: none also takes the terminal's signal
    # (uvicorn then printed its lifespan cancelled; the store stopped under the workers).
    assert "Traceback" not in output, output
    banner = banner_comes_first(output)
    assert f"  graph   {neo4j_server.uri}" in banner
    where = f"embedded redis (data and password in {tmp_path})"
    assert any(line.endswith(where) for line in banner)
