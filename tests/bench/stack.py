"""The stack a benchmark measures, set up one way for every benchmark.

Its own embedded server in a temporary directory (the graph store, or only Redis beside a
Neo4j server), a Repositories on it, a user with an API key, and on request the web app and a
Celery worker as real processes. (Not a `bench_*.py` file: `make bench` does not run it.)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from common.embedded import EmbeddedServer
from common.stores import Repositories, connect_graph
from common.users.keys import new_api_key
from tests.neo4j_server import Neo4jServer
from tests.support import ROOT, AppServer, settings_for, start_app, stop_app
from tests.worker.support import start_worker, stop_worker

CORES = os.cpu_count()
T0_MS = 1_767_225_600_000  # 2026-01-01


@dataclass
class Stack:
    server: EmbeddedServer
    store: Repositories
    user_id: str
    key: str
    # The environment the app and worker processes run with.
    env: dict[str, str]


@contextmanager
def embedded_stack(
    neo4j: Neo4jServer | None = None, extra_env: dict[str, str] | None = None
) -> Iterator[Stack]:
    """Its own embedded server in a temp dir, a store on it (or on `neo4j`) and a user."""
    with tempfile.TemporaryDirectory(prefix="neonomaly-bench-") as tmp:
        server = EmbeddedServer(Path(tmp) / "data").start()
        store = connect_graph(settings_for(server, neo4j))
        try:
            store.ensure_schema()
            key = new_api_key()
            user = store.users.create("bench", key.hashed)
            env = {
                **os.environ,
                "GRAPH_URL": server.graph_url,
                **(neo4j.graph_env() if neo4j else {}),
                "REDIS_URL": server.redis_url,
                "DATA_DIR": str(server.data_dir),
                "PYTHONPATH": str(ROOT),
                "LOG_LEVEL": "WARNING",
                **(extra_env or {}),
            }
            yield Stack(server, store, user.id, key.plain, env)
        finally:
            store.close()
            server.stop()


@contextmanager
def running_app(stack: Stack) -> Iterator[AppServer]:
    app = start_app(stack.env)
    try:
        yield app
    finally:
        stop_app(app)


@contextmanager
def running_worker(stack: Stack) -> Iterator[None]:
    with tempfile.TemporaryDirectory(prefix="neonomaly-bench-worker-") as logs:
        worker = start_worker(stack.env, Path(logs))
        try:
            yield
        finally:
            stop_worker(worker)


def new_metric(http: httpx.Client, name: str) -> str:
    """A new service named `name` with one metric of that name; the metric's id."""
    service = http.post("/api/services", json={"name": name}).json()
    metric = http.post("/api/metrics", json={"name": name, "service_id": service["id"]})
    return str(metric.json()["id"])


def store_metric(stack: Stack, name: str) -> str:
    """A new service and metric named `name`, made straight in the store (no app needed)."""
    service = stack.store.services.create(stack.user_id, name, None)
    return stack.store.metrics.create(stack.user_id, service.id, name, None).id


def detect_with_worker(
    stack: Stack, http: httpx.Client, body: dict[str, object], wait_seconds: int
) -> dict[str, Any]:
    """Run one detection job on a worker started for it; the job, which has succeeded."""
    with running_worker(stack):
        job: dict[str, Any] = http.post(
            "/api/metrics/anomaly-detection", params={"wait": wait_seconds}, json=body
        ).json()
    if job["status"] != "succeeded":
        raise RuntimeError(f"the detection job did not succeed: {job}")
    return job
