"""The composition root: every repository built from one graph executor, every Redis store
from one client. The web's lifespan, the worker's `worker_process_init`, the CLI and the
tests open them here, once per process, and hand each function the ones it needs.

A new domain's repository is one more field of `Repositories`, made in `repositories()`.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from common.anomalies.repository import AnomalyRepository
from common.graph import queries as graph_queries
from common.graph.connect import executor_for
from common.graph.executors import CypherExecutor
from common.graph.schema import ensure_schema
from common.incidents.repository import IncidentRepository
from common.jobs.record_store import JobStore
from common.jobs.result_store import ResultStore
from common.maintenance.repository import MaintenanceRepository
from common.metrics.repository import MetricRepository, ReadingRepository
from common.notifications.delivery_log import DeliveryLog
from common.notifications.repository import ChannelRepository
from common.scans.records import SweepRecords
from common.scans.states import STATE_WINDOWS_KEPT, ScanStates
from common.services.repository import ServiceRepository
from common.settings import Settings
from common.users.repository import UserRepository


@dataclass(frozen=True)
class Repositories:
    """The graph's repositories, one per domain, sharing one executor (one driver)."""

    executor: CypherExecutor
    users: UserRepository
    services: ServiceRepository
    metrics: MetricRepository
    readings: ReadingRepository
    anomalies: AnomalyRepository
    incidents: IncidentRepository
    channels: ChannelRepository
    maintenance: MaintenanceRepository

    def ping(self) -> None:
        self.executor.read(graph_queries.PING)

    def finish_interrupted_deletes(self, marked_before_ms: int, limit: int = 100) -> int:
        """Carry on the deletes cut short (the web process died mid-delete, say): services
        and metrics marked `deleting` before `marked_before_ms`; how many were finished.
        Services first: they take their metrics with them."""
        finished = 0
        for service_id in self.services.interrupted_deletes(marked_before_ms, limit):
            self.services.finish_delete(service_id)
            finished += 1
        for metric_id in self.metrics.interrupted_deletes(marked_before_ms, limit):
            self.metrics.finish_delete(metric_id)
            finished += 1
        return finished

    def ensure_schema(self) -> None:
        """Create constraints and indexes; safe to run on every start, and concurrently."""
        ensure_schema(self.executor)

    def close(self) -> None:
        self.executor.close()


def repositories(executor: CypherExecutor) -> Repositories:
    return Repositories(
        executor=executor,
        users=UserRepository(executor),
        services=ServiceRepository(executor),
        metrics=MetricRepository(executor),
        readings=ReadingRepository(executor),
        anomalies=AnomalyRepository(executor),
        incidents=IncidentRepository(executor),
        channels=ChannelRepository(executor),
        maintenance=MaintenanceRepository(executor),
    )


def connect_graph(settings: Settings) -> Repositories:
    """The repositories on the graph GRAPH_URL names (the embedded server if unset)."""
    return repositories(executor_for(settings))


@dataclass(frozen=True)
class RedisStores:
    """What lives in Redis, over one client: job records and results, webhook deliveries,
    the scans' detector states and sweep records."""

    client: redis.Redis
    jobs: JobStore
    results: ResultStore
    deliveries: DeliveryLog
    scan_states: ScanStates
    sweeps: SweepRecords

    def close(self) -> None:
        self.client.close()


def redis_stores(client: redis.Redis, settings: Settings) -> RedisStores:
    return RedisStores(
        client=client,
        jobs=JobStore.from_settings(client, settings),
        results=ResultStore.from_settings(client, settings),
        deliveries=DeliveryLog(client, settings),
        scan_states=ScanStates(client, STATE_WINDOWS_KEPT * settings.scan_window_seconds),
        sweeps=SweepRecords(client, settings.scan_record_ttl_seconds, settings.scan_records_kept),
    )
