"""A graph store that cannot be reached: an error that names it, never where it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.embedded import EmbeddedServer
from common.errors import DependencyUnavailableError
from common.graph import queries as q
from common.graph.executors import CypherExecutor, FalkorDBExecutor, Neo4jExecutor
from tests.support import free_port


def unreachable(kind: str, tmp_path: Path) -> tuple[CypherExecutor, int]:
    """An executor whose server has gone away, and the port it was at."""
    if kind == "neo4j":
        port = free_port()  # nothing listens there; the driver connects on first use
        return Neo4jExecutor(f"bolt://127.0.0.1:{port}", "neo4j", "password", "neo4j"), port
    server = EmbeddedServer(tmp_path).start()  # FalkorDB's client connects when made
    executor = FalkorDBExecutor("127.0.0.1", server.port, "neonomaly", server.password)
    server.stop()
    return executor, server.port


# Neo4j's driver keeps retrying an unreachable server for its whole retry budget (30 s,
# the executor's setting) before it gives up: slow.
@pytest.mark.parametrize("kind", ["falkordb", pytest.param("neo4j", marks=pytest.mark.slow)])
def test_unreachable_graph_store_says_which_never_where(kind: str, tmp_path: Path) -> None:
    executor, port = unreachable(kind, tmp_path)
    try:
        with pytest.raises(DependencyUnavailableError) as caught:
            executor.read(q.PING)
    finally:
        executor.close()
    # The message reaches callers without a key (a 503 before the key is checked) and
    # users' job records: which dependency, nothing of the network behind it.
    assert str(caught.value) == "the graph store is unavailable"
    assert str(port) in caught.value.detail  # the address stays for the log
    assert str(port) not in str(caught.value) and "127.0.0.1" not in str(caught.value)
