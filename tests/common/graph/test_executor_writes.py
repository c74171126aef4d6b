"""The executors send a write once: one that timed out may have run, and may be running."""

from __future__ import annotations

import time
from urllib.parse import urlparse

import pytest

from common.embedded import EmbeddedServer
from common.errors import DependencyUnavailableError
from common.graph.executors import FalkorDBExecutor
from common.ids import new_id

# Counting six million rows before the create (about 0.7 s on a quiet machine, seconds
# under load): the create runs only once the count is done.
SLOW_CREATE = "UNWIND range(1, 6000000) AS x WITH count(x) AS n CREATE (:Probe {id: $id}) RETURN n"
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
    patient = executor_on(embedded_server, graph, socket_timeout=60)
    started = time.monotonic()
    patient.write(SLOW_CREATE, {"id": "warm-up"})
    one_run = time.monotonic() - started
    # A fifth of a run, measured here: the write times out on a quiet machine and a busy
    # one alike (a fixed 0.25 s was longer than the whole run on a quiet one).
    impatient = executor_on(embedded_server, graph, socket_timeout=one_run / 5)
    probe = new_id()
    try:
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
