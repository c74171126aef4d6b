"""Services and their dependencies in the graph. Scoped methods take the caller's
`owner_id`: another user's service is not found, exactly as if it did not exist."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from common.edits import NameEdit
from common.epoch import from_epoch_ms, now_ms
from common.errors import ConflictError, NotFoundError, found
from common.graph.deletes import delete_metric_children
from common.graph.executors import CypherExecutor, Row, deleted_any, write_naming
from common.graph.params import new_node
from common.services import queries as q
from common.services.models import DependencyEdges, Service, ServiceDependencies, ServiceRef


def _service(row: Row) -> Service:
    return Service(**{**row, "created_at": from_epoch_ms(row["created_at"])})


def _refs(ids: list[str], names: list[str]) -> list[ServiceRef]:
    return [ServiceRef(id=i, name=n) for i, n in zip(ids, names, strict=True)]


class ServiceRepository:
    def __init__(self, executor: CypherExecutor):
        self.executor = executor

    def create(self, owner_id: str, name: str, description: str | None) -> Service:
        """A new service; ConflictError if the owner has one of that name already."""
        params = new_node(owner_id, name=name, description=description)
        if not self._write_name(q.CREATE_SERVICE, params, name):
            raise NotFoundError(f"user {owner_id} not found")
        return found(self.get(owner_id, params["id"]), f"service {params['id']}")

    def list_owned(self, owner_id: str) -> list[Service]:
        return [
            _service(row) for row in self.executor.read(q.LIST_SERVICES, {"owner_id": owner_id})
        ]

    def get(self, owner_id: str, service_id: str) -> Service | None:
        rows = self.executor.read(q.GET_SERVICE, {"owner_id": owner_id, "service_id": service_id})
        return _service(rows[0]) if rows else None

    def update(self, owner_id: str, service_id: str, edit: NameEdit) -> Service | None:
        """The service changed; None if it is not the owner's; ConflictError for a name
        another of the owner's services has."""
        params = {"owner_id": owner_id, "service_id": service_id, **edit.params()}
        if not self._write_name(q.UPDATE_SERVICE, params, edit.name):
            return None
        return self.get(owner_id, service_id)

    def _write_name(self, query: str, params: dict[str, Any], name: str | None) -> list[Row]:
        """Run CREATE_SERVICE or UPDATE_SERVICE; ConflictError if the owner has a service of
        that name already."""
        clash = ConflictError(
            f"you already have a service named {name!r}: use it, or pick another name"
        )
        return write_naming(self.executor, query, params, clash)

    def delete(self, owner_id: str, service_id: str) -> bool:
        """Delete a service with its metrics, their readings and anomalies; False if it is
        not the owner's.

        In bounded steps (see BEGIN_DELETE_SERVICE): the service and its metrics are gone
        for every reader from the first one, and their data is deleted a batch at a time.
        A service whose delete was cut short is still found here, and its delete carried on.
        """
        scope = {"owner_id": owner_id, "service_id": service_id, "now": now_ms()}
        if not self.executor.write(q.BEGIN_DELETE_SERVICE, scope):
            return False
        self.finish_delete(service_id)
        return True

    def finish_delete(self, service_id: str) -> None:
        """Delete a service already marked `deleting`: each metric's data in batches, then
        the metrics and the service."""
        for row in self.executor.read(q.METRICS_OF_DELETED_SERVICE, {"service_id": service_id}):
            delete_metric_children(self.executor, row["id"])
        self.executor.write(q.FINISH_DELETE_SERVICE, {"service_id": service_id})

    def interrupted_deletes(self, marked_before_ms: int, limit: int) -> list[str]:
        """Services marked `deleting` before `marked_before_ms` and not gone: deletes that
        were cut short, for the worker to finish."""
        rows = self.executor.read(
            q.SERVICES_BEING_DELETED, {"before": marked_before_ms, "limit": limit}
        )
        return [row["id"] for row in rows]

    # --- dependencies -----------------------------------------------------------------
    def add_dependency(self, owner_id: str, service_id: str, other_id: str) -> bool:
        """service_id DEPENDS_ON other_id; False if either is not the owner's."""
        rows = self.executor.write(
            q.ADD_DEPENDENCY,
            {"owner_id": owner_id, "service_id": service_id, "other_id": other_id},
        )
        return bool(rows)

    def remove_dependency(self, owner_id: str, service_id: str, other_id: str) -> bool:
        rows = self.executor.write(
            q.REMOVE_DEPENDENCY,
            {"owner_id": owner_id, "service_id": service_id, "other_id": other_id},
        )
        return deleted_any(rows)

    def dependencies(self, owner_id: str, service_id: str) -> ServiceDependencies | None:
        rows = self.executor.read(
            q.SERVICE_DEPENDENCIES, {"owner_id": owner_id, "service_id": service_id}
        )
        if not rows:
            return None
        row = rows[0]
        return ServiceDependencies(
            depends_on=_refs(row["depends_on_ids"], row["depends_on_names"]),
            dependents=_refs(row["dependent_ids"], row["dependent_names"]),
        )

    def dependency_edges_near(self, service_ids: Sequence[str], max_hops: int) -> DependencyEdges:
        """DEPENDS_ON edges within `max_hops` of the services, either direction.

        A breadth-first walk, one bounded query per hop: cycles and large graphs cost at
        most `max_hops` queries over the services reached. Edges only ever link one owner's
        services, so the walk never leaves the owner.
        """
        edges: set[tuple[str, str]] = set()
        seen = set(service_ids)
        frontier = sorted(seen)
        for _ in range(max_hops):
            if not frontier:
                break
            reached: set[str] = set()
            for row in self.executor.read(q.DEPENDENCY_EDGES_OF, {"service_ids": frontier}):
                edges.update((row["id"], other) for other in row["depends_on"])
                edges.update((other, row["id"]) for other in row["dependents"])
                reached.update(row["depends_on"], row["dependents"])
            frontier = sorted(reached - seen)
            seen |= reached
        return DependencyEdges(frozenset(edges))
