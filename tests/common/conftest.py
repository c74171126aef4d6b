"""The repository contract tests run on each engine: `graph` is the session's repositories
(embedded FalkorDB, then a real Neo4j 5.26 when it runs; see tests/conftest.py)."""

from __future__ import annotations

import pytest

from common.stores import Repositories


@pytest.fixture
def graph(store: Repositories) -> Repositories:
    """The session's store, on each engine in turn (see tests/conftest.py)."""
    return store
