"""The clients of one worker process: the graph store and the job stores, opened once per
process.

Opened in `worker_process_init` (each prefork child, after the fork: drivers and sockets
must not be shared across a fork) and closed in `worker_process_shutdown`. A process that
gets no such signal (the solo pool, the worker's main process handling a hard time limit)
opens them on first use.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import redis

from common.embedded import resolve_urls
from common.graph.store import GraphStore
from common.jobs.record_store import JobStore
from common.jobs.result_store import ResultStore
from common.settings import Settings, get_settings

log = logging.getLogger(__name__)


@dataclass
class WorkerResources:
    settings: Settings
    store: GraphStore
    redis: redis.Redis
    jobs: JobStore
    results: ResultStore
    pid: int

    def close(self) -> None:
        self.store.close()
        self.redis.close()


_resources: WorkerResources | None = None


def open_resources(settings: Settings | None = None) -> WorkerResources:
    global _resources
    settings = settings or get_settings()
    urls = resolve_urls(settings)
    client = redis.Redis.from_url(urls.redis_url, socket_connect_timeout=2, socket_timeout=30)
    _resources = WorkerResources(
        settings=settings,
        store=GraphStore.connect(settings),
        redis=client,
        jobs=JobStore.from_settings(client, settings),
        results=ResultStore.from_settings(client, settings),
        pid=os.getpid(),
    )
    log.info("worker process %d: graph store, job and result stores opened", _resources.pid)
    return _resources


def current() -> WorkerResources:
    """This process's clients (opened now if this process has none yet)."""
    if _resources is None or _resources.pid != os.getpid():
        return open_resources()
    return _resources


def close_resources() -> None:
    global _resources
    if _resources is not None and _resources.pid == os.getpid():
        _resources.close()
    _resources = None
