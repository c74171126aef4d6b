"""Shared fixtures: the real embedded server, a Repositories on it, the app over real HTTP.

One embedded redis-server + FalkorDB runs for the whole session (in a temporary data dir);
tests keep out of each other's way by creating their own users, services and metrics.

Every test that uses the graph (through `store`, `settings`, `service_env`, `app_server` or
the worker) runs once per engine: `[falkordb]` on the embedded server, `[neo4j]` on a real
Neo4j 5.26 (tools/neo4j-server, started once per session, or NEO4J_TEST_URI) with the
embedded server as Redis. Those runs carry the `neo4j` mark: `make test-neo4j` is
`pytest -m neo4j`, and `-m "not neo4j"` runs the rest.
Without Java the Neo4j half is skipped, saying why; with CI=true that fails the run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import httpx
import pytest
import redis

from common.embedded import EmbeddedServer
from common.jobs.record_store import JobStore
from common.settings import Settings
from common.stores import Repositories, connect_graph
from common.users.keys import new_api_key
from common.users.models import User
from tests.neo4j_server import Neo4jServer, Neo4jUnavailableError, start_neo4j
from tests.support import ROOT, AppServer, settings_for, start_app, stop_app, unique_name

ENGINES = ("falkordb", "neo4j")

# The real Celery worker fixture, for the tests that submit jobs; sweeps run on it.
pytest_plugins = ["tests.fixtures_worker", "tests.fixtures_sweeps"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine" in metafunc.fixturenames:
        metafunc.parametrize("engine", ENGINES, indirect=True, scope="session")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("engine") == "neo4j":
            item.add_marker(pytest.mark.neo4j)


@pytest.fixture(scope="session")
def engine(request: pytest.FixtureRequest) -> str:
    """The graph engine of this test run: "falkordb" (embedded) or "neo4j"."""
    return str(request.param)


@pytest.fixture(scope="session")
def neo4j_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Neo4jServer]:
    try:
        server = start_neo4j(tmp_path_factory.mktemp("neo4j"))
    except Neo4jUnavailableError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Neo4j is required on CI: {exc}", pytrace=False)
        pytest.skip(f"Neo4j half skipped: {exc}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    server = EmbeddedServer(tmp_path_factory.mktemp("neonomaly-data")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def graph_server(engine: str, request: pytest.FixtureRequest) -> Neo4jServer | None:
    """The Neo4j server of a `[neo4j]` test; None on the embedded FalkorDB."""
    if engine == "neo4j":
        server: Neo4jServer = request.getfixturevalue("neo4j_server")
        return server
    return None


@pytest.fixture(scope="session")
def service_env(
    embedded_server: EmbeddedServer, graph_server: Neo4jServer | None
) -> dict[str, str]:
    """Environment for a child process (web, worker, beat) using the test servers."""
    graph = {"GRAPH_URL": embedded_server.graph_url}
    return {
        **os.environ,
        **(graph_server.graph_env() if graph_server else graph),
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
def settings(embedded_server: EmbeddedServer, graph_server: Neo4jServer | None) -> Settings:
    return settings_for(embedded_server, graph_server)


@pytest.fixture(scope="session")
def store(settings: Settings) -> Iterator[Repositories]:
    """The graph's repositories (common.stores), opened once for the session on its engine."""
    repositories = connect_graph(settings)
    repositories.ensure_schema()
    yield repositories
    repositories.close()


@pytest.fixture
def jobs(settings: Settings) -> Iterator[JobStore]:
    """The job records in the session's Redis, with the settings' TTLs and limits."""
    client = redis.Redis.from_url(settings.redis_url or "")
    yield JobStore.from_settings(client, settings)
    client.close()


@pytest.fixture(scope="session")
def make_user(store: Repositories) -> Callable[..., tuple[User, str]]:
    """Create a user directly in the graph; returns it with its (plain) API key. User names
    are unique: each is `name` with a suffix of its own."""

    def make(name: str = "tester") -> tuple[User, str]:
        key = new_api_key()
        return store.users.create(unique_name(name), key.hashed), key.plain

    return make


@pytest.fixture(scope="session")
def app_server(service_env: dict[str, str], store: Repositories) -> Iterator[AppServer]:
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
