"""The clients of one worker process: the graph's repositories and the Redis stores, opened
once per process (common.stores).

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
from common.settings import Settings, get_settings
from common.stores import RedisStores, Repositories, connect_graph, redis_stores

log = logging.getLogger(__name__)


@dataclass
class WorkerResources:
    settings: Settings
    repositories: Repositories
    stores: RedisStores
    pid: int

    def close(self) -> None:
        self.repositories.close()
        self.stores.close()


_resources: WorkerResources | None = None


def open_resources(settings: Settings | None = None) -> WorkerResources:
    global _resources
    settings = settings or get_settings()
    urls = resolve_urls(settings)
    client = redis.Redis.from_url(urls.redis_url, socket_connect_timeout=2, socket_timeout=30)
    _resources = WorkerResources(
        settings=settings,
        repositories=connect_graph(settings),
        stores=redis_stores(client, settings),
        pid=os.getpid(),
    )
    log.info("worker process %d: graph repositories and Redis stores opened", _resources.pid)
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
