"""Deleting a metric or a service, on each engine: in bounded batches, gone for every reader
from the first step, refused to writers meanwhile, and carried on after a crash halfway.

(Review: DELETE_METRIC and DELETE_SERVICE were one statement costing about the square of
the anomaly count: 10k anomalies held the graph 10.8 s, 100k never finished. The time it
takes is measured by tests/bench/bench_deletes.py and tests/faults/test_tenant_isolation.py.)
"""

from __future__ import annotations

from typing import Any

import pytest

from common.anomalies.models import NewAnomaly
from common.epoch import now_ms
from common.errors import NotFoundError
from common.graph import queries as graph_queries
from common.graph.executors import CypherExecutor, Row
from common.graph.params import WRITE_BATCH, KeysetPage
from common.incidents.building import build_incidents
from common.metrics import queries as metric_queries
from common.metrics.models import MetricRef, NewReading
from common.services import queries as service_queries
from common.settings import Settings
from common.stores import Repositories, repositories
from common.users.models import User
from tests.common.repository_support import make_owner

COUNT = 2 * WRITE_BATCH + 7  # three batches of each kind


class StatementLog:
    """The session's real executor, noting what each write statement deleted."""

    def __init__(self, executor: CypherExecutor):
        self.executor = executor
        self.engine = executor.engine
        self.deleted: list[int] = []

    def read(self, query: str, params: dict[str, Any] | None = None) -> list[Row]:
        return self.executor.read(query, params)

    def write(self, query: str, params: dict[str, Any] | None = None) -> list[Row]:
        rows = self.executor.write(query, params)
        if rows and "deleted" in rows[0]:
            self.deleted.append(int(rows[0]["deleted"]))
        return rows

    def close(self) -> None:  # the session's executor stays open
        pass


def busy_metric(graph: Repositories, owner: User, service_id: str, name: str) -> MetricRef:
    """A metric of COUNT readings, each flagged, the lot in one incident."""
    metric = graph.metrics.create(owner.id, service_id, name, None)
    start = now_ms() - COUNT * 1000
    graph.readings.append(
        metric.id, [NewReading(f"r{i}", start + i * 1000, float(i)) for i in range(COUNT)]
    )
    found = [
        NewAnomaly(
            metric.id, f"r{i}", timestamp_ms=start + i * 1000, value=float(i), expected=0.0,
            lower=0.0, upper=0.5, score=2.0, method="rolling", event_start_ms=start,
            event_end_ms=start + (COUNT - 1) * 1000,
        )
        for i in range(COUNT)
    ]  # fmt: skip
    ref = MetricRef(metric.id, name, service_id, owner.id)
    graph.anomalies.save(metric.id, found)
    build_incidents(graph, ref, found, Settings(_env_file=None))  # type: ignore[call-arg]
    return ref


def assert_gone(graph: Repositories, owner: User, metric_id: str) -> None:
    assert graph.metrics.get(owner.id, metric_id) is None
    assert len(graph.readings.read_window(metric_id, None, None)) == 0
    assert graph.anomalies.list_page(metric_id, KeysetPage(None, None, 10)) == []
    [locks] = graph.executor.read(
        "MATCH (l:MetricLock {metric_id: $metric_id}) RETURN count(l) AS n",
        {"metric_id": metric_id},
    )
    assert locks["n"] == 0


def test_a_metric_is_deleted_in_batches_with_all_it_owns(graph: Repositories) -> None:
    owner = make_owner(graph)
    service = graph.services.create(owner.id, "api", None)
    metric = busy_metric(graph, owner, service.id, "cpu")
    [incident] = graph.incidents.list_owned(owner.id, None, 0, 10)
    assert incident.members == COUNT
    log = StatementLog(graph.executor)
    assert repositories(log).metrics.delete(owner.id, metric.id)
    assert_gone(graph, owner, metric.id)
    # Readings, then chunks (none here), then anomalies, WRITE_BATCH at a time; then the
    # metric itself.
    batch_sizes = [WRITE_BATCH, WRITE_BATCH, 7]
    assert log.deleted == [*batch_sizes, 0, *batch_sizes, 1]
    [incident] = graph.incidents.list_owned(owner.id, None, 0, 10)
    assert incident.members == 0


def test_a_metric_being_deleted_is_gone_for_readers_and_refused_to_writers(
    graph: Repositories,
) -> None:
    owner = make_owner(graph)
    service = graph.services.create(owner.id, "api", None)
    metric = busy_metric(graph, owner, service.id, "cpu")
    # The delete's first step, then one batch, then the process dies.
    graph.executor.write(
        metric_queries.BEGIN_DELETE_METRIC,
        {"owner_id": owner.id, "metric_id": metric.id, "now": now_ms()},
    )
    graph.executor.write(
        graph_queries.DELETE_METRIC_CHILDREN[0], {"metric_id": metric.id, "batch": WRITE_BATCH}
    )
    assert graph.metrics.get(owner.id, metric.id) is None
    assert graph.metrics.find_by_name(owner.id, service.id, "cpu") is None
    assert graph.metrics.list_in_service(owner.id, service.id) == []
    assert graph.metrics.get_ref(metric.id) is None  # jobs and scans see it gone
    # Sweeps see it neither as appended to nor when named as left behind.
    assert metric.id not in {m.id for m in graph.metrics.due_for_scan(None, [metric.id])}
    with pytest.raises(NotFoundError):
        graph.readings.append(metric.id, [NewReading("late", now_ms(), 1.0)])
    # The many-metric ingest path: not found by id, and its append (told the chain is
    # empty, as a stale caller might) stores nothing.
    assert graph.metrics.find_by_ids(owner.id, [metric.id]) == {}
    late = [NewReading("late", now_ms(), 1.0)]
    assert graph.readings.append_many({metric.id: late}, {metric.id: None}) == {metric.id: 0}
    assert graph.anomalies.save(metric.id, [anomaly_of(metric, "r2000")]) == []
    [member] = graph.incidents.members(graph.incidents.list_owned(owner.id, None, 0, 1)[0].id, 1)
    assert graph.anomalies.get(owner.id, member.id) is None
    # The worker's sweep finishes what was cut short (marked before its cut-off).
    assert graph.finish_interrupted_deletes(now_ms() - 60_000) == 0
    assert graph.finish_interrupted_deletes(now_ms() + 1) == 1
    assert_gone(graph, owner, metric.id)


def test_a_delete_cut_short_is_carried_on_by_the_next_delete(graph: Repositories) -> None:
    owner = make_owner(graph)
    service = graph.services.create(owner.id, "api", None)
    metric = busy_metric(graph, owner, service.id, "cpu")
    graph.executor.write(
        metric_queries.BEGIN_DELETE_METRIC,
        {"owner_id": owner.id, "metric_id": metric.id, "now": now_ms()},
    )
    other = make_owner(graph)
    assert not graph.metrics.delete(other.id, metric.id)  # still nobody else's
    assert graph.metrics.delete(owner.id, metric.id)
    assert_gone(graph, owner, metric.id)
    assert not graph.metrics.delete(owner.id, metric.id)  # gone: 404 from then on


def test_a_service_is_deleted_in_batches_and_carried_on_after_a_crash(
    graph: Repositories,
) -> None:
    owner = make_owner(graph)
    service = graph.services.create(owner.id, "api", None)
    metrics = [busy_metric(graph, owner, service.id, name) for name in ("cpu", "mem")]
    graph.executor.write(
        service_queries.BEGIN_DELETE_SERVICE,
        {"owner_id": owner.id, "service_id": service.id, "now": now_ms()},
    )
    assert graph.services.get(owner.id, service.id) is None
    assert service.id not in {s.id for s in graph.services.list_owned(owner.id)}
    with pytest.raises(NotFoundError):
        graph.metrics.create(owner.id, service.id, "disk", None)
    for metric in metrics:
        assert graph.metrics.get(owner.id, metric.id) is None
        with pytest.raises(NotFoundError):
            graph.readings.append(metric.id, [NewReading("late", now_ms(), 1.0)])
    log = StatementLog(graph.executor)
    assert repositories(log).finish_interrupted_deletes(now_ms() + 1) == 1
    # Per metric 3 batches of readings, 1 of chunks (none), 3 of anomalies; the service.
    assert max(log.deleted[:-1]) == WRITE_BATCH and len(log.deleted) == 2 * 7 + 1
    for metric in metrics:
        assert_gone(graph, owner, metric.id)
    assert not graph.services.delete(owner.id, service.id)


def anomaly_of(metric: MetricRef, reading_id: str) -> NewAnomaly:
    return NewAnomaly(
        metric.id, reading_id, timestamp_ms=now_ms(), value=1.0, expected=0.0, lower=0.0,
        upper=0.5, score=2.0, method="rolling", event_start_ms=now_ms(), event_end_ms=now_ms(),
    )  # fmt: skip
