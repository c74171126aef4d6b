"""Shared fixtures: the real embedded server, a GraphStore on it, the app over real HTTP.

One embedded redis-server + FalkorDB runs for the whole session (in a temporary data dir);
tests keep out of each other's way by creating their own users, services and metrics.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import httpx
import pytest

from common.auth import new_api_key
from common.embedded import EmbeddedServer
from common.graph.store import GraphStore
from common.models import User
from common.settings import Settings
from tests.support import ROOT, AppServer, settings_for, start_app, stop_app

# The real Celery worker fixture, for the tests that submit jobs.
pytest_plugins = ["tests.fixtures_worker"]


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
        # The webhook tests' receivers listen on 127.0.0.1; retries come quickly.
        "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
        "WEBHOOK_RETRY_FIRST_SECONDS": "0.5",
        "WEBHOOK_RETRY_MAX_SECONDS": "1",
        "WEBHOOK_RETRY_FOR_SECONDS": "120",
    }


@pytest.fixture(scope="session")
def settings(embedded_server: EmbeddedServer) -> Settings:
    return settings_for(embedded_server)


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
