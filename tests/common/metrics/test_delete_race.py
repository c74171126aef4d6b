"""Deleting a service or a metric while readings arrive for it leaves no orphaned readings."""

from __future__ import annotations

import threading

from common.errors import NotFoundError
from common.metrics.models import NewReading
from common.stores import Repositories
from common.users.keys import new_api_key
from tests.support import unique_name

T0 = 1_700_000_000_000  # epoch ms


def test_delete_service_racing_metric_creation_leaves_no_orphans(store: Repositories) -> None:
    # On Neo4j this failed in 3 of 4 runs before the deletes took the append's locks first.
    owner = store.users.create(unique_name("racer"), new_api_key().hashed)
    service = store.services.create(owner.id, "busy", None)
    for index in range(20):  # a long delete: many metrics with readings
        metric = store.metrics.create(owner.id, service.id, f"m{index}", None)
        store.readings.append(
            metric.id, [NewReading(id=f"r{i}", timestamp_ms=T0 + i, value=1.0) for i in range(50)]
        )
    created: list[str] = []
    deleted = threading.Event()

    def add_metrics() -> None:
        # Metrics (each with a reading) arrive until the service is gone, at most 500.
        for index in range(500):
            if deleted.is_set():
                return
            try:
                metric = store.metrics.create(owner.id, service.id, f"late{index}", None)
            except NotFoundError:
                return  # the service is gone: refused, as it should be
            created.append(metric.id)
            try:
                store.readings.append(metric.id, [NewReading(id="x", timestamp_ms=T0, value=2.0)])
            except NotFoundError:
                return  # its service (and so the metric) is being deleted: refused

    racer = threading.Thread(target=add_metrics)
    racer.start()
    while len(created) < 3 and racer.is_alive():
        pass  # let the racer get going, so that the delete overlaps it
    assert store.services.delete(owner.id, service.id)
    deleted.set()
    racer.join(30)
    assert not racer.is_alive()
    assert created
    orphans = [
        metric_id
        for metric_id in created
        if store.metrics.get(owner.id, metric_id) is None
        and len(store.readings.read_window(metric_id, None, None)) > 0
    ]
    assert orphans == []


def test_delete_metric_racing_appends_leaves_nothing_behind(store: Repositories) -> None:
    owner = store.users.create(unique_name("racer"), new_api_key().hashed)
    service = store.services.create(owner.id, "busy", None)
    metric = store.metrics.create(owner.id, service.id, "hot", None)
    appended = threading.Event()
    refused: list[Exception] = []

    def append_batches() -> None:
        # Batches keep arriving until the metric is gone (stores nothing), at most 500.
        for batch in range(500):
            try:
                stored = store.readings.append(
                    metric.id,
                    [
                        NewReading(id=f"b{batch}-{i}", timestamp_ms=T0 + batch * 10 + i, value=1.0)
                        for i in range(10)
                    ],
                )
            except NotFoundError as exc:  # the metric vanished mid-append (Neo4j)
                refused.append(exc)
                return
            if stored == 0:
                return
            appended.set()

    appender = threading.Thread(target=append_batches)
    appender.start()
    appended.wait(30)
    for _ in range(3):  # let a few more batches in, so that the delete overlaps them
        store.readings.read_window(metric.id, None, None, limit=1)
    assert store.metrics.delete(owner.id, metric.id)
    appender.join(30)
    assert not appender.is_alive()
    assert store.metrics.get(owner.id, metric.id) is None
    assert len(store.readings.read_window(metric.id, None, None)) == 0
    leftover_locks = store.executor.read(
        "MATCH (lock:MetricLock {metric_id: $metric_id}) RETURN count(lock) AS n",
        {"metric_id": metric.id},
    )
    assert leftover_locks[0]["n"] == 0
