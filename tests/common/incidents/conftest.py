"""The incident tests run on the embedded FalkorDB, and on Neo4j when NEO4J_TEST_URI is set
(as the GraphStore contract tests do)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from common.graph.store import GraphStore
from common.settings import Settings


@pytest.fixture(params=["falkordb", "neo4j"])
def engine_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    if request.param == "falkordb":
        return settings
    uri = os.environ.get("NEO4J_TEST_URI")
    if not uri:
        pytest.skip("set NEO4J_TEST_URI (and NEO4J_TEST_USER/NEO4J_TEST_PASSWORD) to run on Neo4j")
    return Settings(
        graph_url=uri,
        redis_url="redis://unused",
        neo4j_user=os.environ.get("NEO4J_TEST_USER", "neo4j"),
        neo4j_password=os.environ.get("NEO4J_TEST_PASSWORD", ""),  # type: ignore[arg-type]
        neo4j_database=os.environ.get("NEO4J_TEST_DATABASE", "neo4j"),
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def connect(engine_settings: Settings) -> Iterator[Callable[[], GraphStore]]:
    """Open stores on the engine under test (one per simulated worker); all closed after."""
    opened: list[GraphStore] = []

    def open_store() -> GraphStore:
        store = GraphStore.connect(engine_settings)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


@pytest.fixture
def graph(connect: Callable[[], GraphStore]) -> GraphStore:
    store = connect()
    store.ensure_schema()
    return store
