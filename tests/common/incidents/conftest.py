"""The incident tests run on each engine of the session's `settings` (embedded FalkorDB,
and the Neo4j test server when it runs), like the Repositories contract tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from common.settings import Settings
from common.stores import Repositories, connect_graph


@pytest.fixture
def connect(settings: Settings) -> Iterator[Callable[[], Repositories]]:
    """Open stores on the engine under test (one per simulated worker); all closed after."""
    opened: list[Repositories] = []

    def open_store() -> Repositories:
        store = connect_graph(settings)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


@pytest.fixture
def graph(connect: Callable[[], Repositories]) -> Repositories:
    store = connect()
    store.ensure_schema()
    return store
