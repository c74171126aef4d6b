"""Services in the graph, on each engine: scoped to their owner, deleted with all they hold."""

from __future__ import annotations

from common.edits import NameEdit
from common.graph.params import KeysetPage
from common.stores import Repositories
from tests.common.repository_support import anomaly_at, make_owner, readings


def test_service_crud_is_scoped_to_owner(graph: Repositories) -> None:
    alice, bob = make_owner(graph), make_owner(graph)
    service = graph.services.create(alice.id, "checkout", "payments")
    assert graph.services.get(alice.id, service.id) == service
    assert graph.services.get(bob.id, service.id) is None
    assert service.id not in [s.id for s in graph.services.list_owned(bob.id)]
    assert graph.services.update(bob.id, service.id, NameEdit(name="stolen")) is None
    updated = graph.services.update(
        alice.id, service.id, NameEdit(name="cart", set_description=True)
    )
    assert updated is not None and updated.name == "cart" and updated.description is None
    assert not graph.services.delete(bob.id, service.id)
    assert graph.services.delete(alice.id, service.id)
    assert graph.services.get(alice.id, service.id) is None


def test_delete_service_removes_metrics_readings_and_anomalies(graph: Repositories) -> None:
    owner = make_owner(graph)
    service = graph.services.create(owner.id, "api", None)
    metric = graph.metrics.create(owner.id, service.id, "cpu", None)
    graph.readings.append(metric.id, readings([1, 2]))
    graph.anomalies.save(metric.id, [anomaly_at(metric.id, "r2")])
    assert graph.services.delete(owner.id, service.id)
    assert graph.metrics.get(owner.id, metric.id) is None
    assert len(graph.readings.read_window(metric.id, None, None)) == 0
    assert graph.anomalies.list_page(metric.id, KeysetPage(None, None, 10)) == []
