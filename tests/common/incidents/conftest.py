"""The incident tests run on each engine of the session's `settings` (embedded FalkorDB,
and the Neo4j test server when it runs), like the GraphStore contract tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from common.graph.store import GraphStore
from common.settings import Settings


@pytest.fixture
def connect(settings: Settings) -> Iterator[Callable[[], GraphStore]]:
    """Open stores on the engine under test (one per simulated worker); all closed after."""
    opened: list[GraphStore] = []

    def open_store() -> GraphStore:
        store = GraphStore.connect(settings)
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
