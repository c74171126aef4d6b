"""Shared fixtures: the real embedded server, a GraphStore on it, the app over real HTTP.

One embedded redis-server + FalkorDB runs for the whole session (in a temporary data dir);
tests keep out of each other's way by creating their own users, services and metrics.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from common.auth import new_api_key
from common.embedded import EmbeddedServer
from common.graph.store import GraphStore
from common.models import User
from common.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    server = EmbeddedServer(tmp_path_factory.mktemp("neonomaly-data")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def service_env(embedded_server: EmbeddedServer) -> dict[str, str]:
    """Environment for a child process (web, worker, beat) using the test server."""
    return {
        **os.environ,
        "GRAPH_URL": embedded_server.graph_url,
        "REDIS_URL": embedded_server.redis_url,
        "DATA_DIR": str(embedded_server.data_dir),
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture(scope="session")
def settings(embedded_server: EmbeddedServer) -> Settings:
    return Settings(
        graph_url=embedded_server.graph_url,
        redis_url=embedded_server.redis_url,
        data_dir=embedded_server.data_dir,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture(scope="session")
def store(settings: Settings) -> Iterator[GraphStore]:
    graph_store = GraphStore.connect(settings)
    graph_store.ensure_schema()
    yield graph_store
    graph_store.close()


@pytest.fixture(scope="session")
def make_user(store: GraphStore) -> Callable[..., tuple[User, str]]:
    """Create a user directly in the graph; returns it with its (plain) API key."""

    def make(name: str = "tester") -> tuple[User, str]:
        key = new_api_key()
        return store.create_user(name, key.hashed), key.plain

    return make


class AppServer:
    def __init__(self, base_url: str, process: subprocess.Popen[bytes]):
        self.base_url = base_url
        self.process = process


def start_app(env: dict[str, str], extra_env: dict[str, str] | None = None) -> AppServer:
    """uvicorn in a subprocess on 127.0.0.1, waited for until /health answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "web.main:app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        env={**env, **(extra_env or {})},
        cwd=ROOT,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                return AppServer(base_url, process)
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the web app did not start; see its output above")
        time.sleep(0.1)


def stop_app(app: AppServer) -> None:
    app.process.terminate()
    try:
        app.process.wait(10)
    except subprocess.TimeoutExpired:
        app.process.kill()


@pytest.fixture(scope="session")
def app_server(service_env: dict[str, str], store: GraphStore) -> Iterator[AppServer]:
    app = start_app(service_env)
    yield app
    stop_app(app)


@pytest.fixture
def client(
    app_server: AppServer, make_user: Callable[..., tuple[User, str]]
) -> Iterator[httpx.Client]:
    """An HTTP client authenticated as a fresh user (its User is at `client.user`)."""
    user, key = make_user()
    with httpx.Client(base_url=app_server.base_url, headers={"X-API-Key": key}, timeout=30) as http:
        http.user = user  # type: ignore[attr-defined]
        yield http


@pytest.fixture
def anonymous(app_server: AppServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=app_server.base_url, timeout=30) as http:
        yield http
