"""Schema setup per engine: idempotent, and safe when several processes start at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from common.graph.executors import FalkorDBExecutor
from common.graph.schema import existing_schema, schema_items
from common.ids import new_id
from common.settings import Settings
from common.stores import Repositories, connect_graph, repositories


def test_schema_bootstrap_is_idempotent(graph: Repositories) -> None:
    graph.ensure_schema()
    graph.ensure_schema()


@pytest.fixture
def schemaless(graph: Repositories, settings: Settings) -> Iterator[list[Repositories]]:
    """Four stores (one connection each) on a graph without our constraints and indexes.

    FalkorDB: a new, empty graph. Neo4j (one database): the session's, with our schema
    dropped; the test puts it back, and the next start would too.
    """
    if graph.executor.engine == "falkordb":
        name = f"schema-{new_id()}"
        stores = [
            repositories(FalkorDBExecutor.from_url(settings.graph_url, name)) for _ in range(4)
        ]
    else:
        for item in schema_items("neo4j"):
            [name] = item.listed_as
            kind = "CONSTRAINT" if item.statement.startswith("CREATE CONSTRAINT") else "INDEX"
            graph.executor.write(f"DROP {kind} {name} IF EXISTS")
        assert not {n for i in schema_items("neo4j") for n in i.listed_as} & existing_schema(
            graph.executor
        )
        stores = [connect_graph(settings) for _ in range(4)]
    yield stores
    for each in stores:
        each.close()
    graph.ensure_schema()


def test_schema_created_by_concurrent_starts(schemaless: list[Repositories]) -> None:
    # Web workers and Celery workers start together and each ensures the schema: all must
    # succeed, whoever creates an index first.
    start = threading.Barrier(len(schemaless))

    def ensure(store: Repositories) -> None:
        start.wait(timeout=30)
        store.ensure_schema()

    with ThreadPoolExecutor(len(schemaless)) as pool:
        list(pool.map(ensure, schemaless))
    executor = schemaless[0].executor
    wanted = {name for item in schema_items(executor.engine) for name in item.listed_as}
    assert wanted <= existing_schema(executor)
