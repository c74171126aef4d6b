"""Deleting a service while metrics are being added to it leaves no orphaned readings."""

from __future__ import annotations

import threading

import pytest

from common.auth import new_api_key
from common.errors import NotFoundError
from common.graph.executors import Neo4jExecutor
from common.graph.store import GraphStore
from common.models import NewReading

T0 = 1_700_000_000_000  # epoch ms


def test_delete_service_racing_metric_creation_leaves_no_orphans(
    store: GraphStore, request: pytest.FixtureRequest
) -> None:
    if isinstance(store.executor, Neo4jExecutor):
        # Known gap, left open on issue 10: on Neo4j an append that starts while the
        # service is deleted can still, now and then, leave its readings behind (seen once
        # in four runs). Kept running, so that a fix shows as XPASS.
        request.applymarker(
            pytest.mark.xfail(reason="Neo4j: a racing append can outlive the delete", strict=False)
        )
    owner = store.create_user("racer", new_api_key().hashed)
    service = store.create_service(owner.id, "busy", None)
    for index in range(20):  # a long delete: many metrics with readings
        metric = store.create_metric(owner.id, service.id, f"m{index}", None)
        store.append_readings(
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
                metric = store.create_metric(owner.id, service.id, f"late{index}", None)
            except NotFoundError:
                return  # the service is gone: refused, as it should be
            created.append(metric.id)
            store.append_readings(metric.id, [NewReading(id="x", timestamp_ms=T0, value=2.0)])

    racer = threading.Thread(target=add_metrics)
    racer.start()
    while len(created) < 3 and racer.is_alive():
        pass  # let the racer get going, so that the delete overlaps it
    assert store.delete_service(owner.id, service.id)
    deleted.set()
    racer.join(30)
    assert not racer.is_alive()
    assert created
    orphans = [
        metric_id
        for metric_id in created
        if store.get_metric(owner.id, metric_id) is None
        and len(store.read_window(metric_id, None, None)) > 0
    ]
    assert orphans == []
