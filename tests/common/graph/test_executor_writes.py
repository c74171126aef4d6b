"""The executors send a write once: one that timed out may have run, and may be running."""

from __future__ import annotations

import time
from urllib.parse import urlparse

import pytest

from common.embedded import EmbeddedServer
from common.errors import DependencyUnavailableError
from common.graph.executors import FalkorDBExecutor
from common.ids import new_id

# Counting two million rows before the create: longer than the timeout below, even on a
# quiet machine (about 1 s here), and the create runs only once the count is done.
SLOW_CREATE = "UNWIND range(1, 2000000) AS x WITH count(x) AS n CREATE (:Probe {id: $id}) RETURN n"
PROBES = "MATCH (p:Probe {id: $id}) RETURN count(p) AS n"


def executor_on(server: EmbeddedServer, graph: str, socket_timeout: float) -> FalkorDBExecutor:
    url = urlparse(server.graph_url)
    assert url.hostname and url.port
    return FalkorDBExecutor(url.hostname, url.port, graph, url.password, socket_timeout)


def test_a_timed_out_write_is_not_sent_again(embedded_server: EmbeddedServer) -> None:
    """Review: after a socket timeout the executor sent the write again (redis-py's retry),
    so a slow create ran twice: a delete that timed out was repeated behind itself, and
    a non-idempotent create was duplicated."""
    graph = f"retry-{new_id()}"
    impatient = executor_on(embedded_server, graph, socket_timeout=0.25)
    patient = executor_on(embedded_server, graph, socket_timeout=60)
    probe = new_id()
    try:
        started = time.monotonic()
        patient.write(SLOW_CREATE, {"id": "warm-up"})
        one_run = time.monotonic() - started
        with pytest.raises(DependencyUnavailableError):
            impatient.write(SLOW_CREATE, {"id": probe})
        # The server finishes what it was sent; a second copy would run right after it.
        time.sleep(3 * one_run + 1)
        assert patient.read(PROBES, {"id": probe}) == [{"n": 1}]
        assert impatient.read(PROBES, {"id": probe}) == [{"n": 1}]  # the client still works
    finally:
        patient.write("MATCH (p:Probe) DELETE p")
        impatient.close()
        patient.close()
