"""Metrics in the graph, on each engine: names unique per service, scoped to the owner."""

from __future__ import annotations

import pytest

from common.edits import NameEdit
from common.epoch import now_ms
from common.errors import ConflictError, NotFoundError
from common.stores import Repositories
from tests.common.repository_support import make_metric, make_owner, readings


def test_duplicate_metric_name_in_service_conflicts(graph: Repositories) -> None:
    owner = make_owner(graph)
    service = graph.services.create(owner.id, "api", None)
    graph.metrics.create(owner.id, service.id, "cpu", None)
    with pytest.raises(ConflictError):
        graph.metrics.create(owner.id, service.id, "cpu", "again")
    other = graph.services.create(owner.id, "db", None)
    graph.metrics.create(owner.id, other.id, "cpu", None)  # same name, other service: fine
    assert len(graph.metrics.list_in_service(owner.id, service.id)) == 1


def test_metric_in_someone_elses_service_is_not_found(graph: Repositories) -> None:
    alice, bob = make_owner(graph), make_owner(graph)
    service = graph.services.create(alice.id, "api", None)
    with pytest.raises(NotFoundError):
        graph.metrics.create(bob.id, service.id, "cpu", None)


def test_rename_metric_onto_taken_name_conflicts(graph: Repositories) -> None:
    owner = make_owner(graph)
    service = graph.services.create(owner.id, "api", None)
    graph.metrics.create(owner.id, service.id, "cpu", None)
    mem = graph.metrics.create(owner.id, service.id, "mem", None)
    with pytest.raises(ConflictError):
        graph.metrics.update(owner.id, mem.id, NameEdit(name="cpu"))
    renamed = graph.metrics.update(
        owner.id, mem.id, NameEdit(name="memory", description="rss", set_description=True)
    )
    assert renamed is not None and (renamed.name, renamed.description) == ("memory", "rss")


def test_delete_metric_removes_its_readings(graph: Repositories) -> None:
    owner, metric_id = make_metric(graph)
    graph.readings.append(metric_id, readings([1, 2, 3]))
    assert graph.metrics.delete(owner.id, metric_id)
    assert graph.metrics.get(owner.id, metric_id) is None
    assert len(graph.readings.read_window(metric_id, None, None)) == 0


def test_metrics_with_readings_since(graph: Repositories) -> None:
    owner, metric_id = make_metric(graph)
    before = now_ms()
    graph.readings.append(metric_id, readings([1]))
    due = {ref.id: ref for ref in graph.metrics.appended_since(before)}
    assert metric_id in due and due[metric_id].owner_id == owner.id
    a_year_later = now_ms() + 366 * 24 * 3600 * 1000
    assert metric_id not in {ref.id for ref in graph.metrics.appended_since(a_year_later)}
