"""The rules of DEPENDS_ON between services: which links may be made, what lies near one."""

from __future__ import annotations

from common.errors import InvalidRequestError, NotFoundError, found
from common.services.models import Service, ServiceDependencies
from common.services.repository import ServiceRepository


def of(services: ServiceRepository, service: Service) -> ServiceDependencies:
    """The service's direct dependencies and dependents (NotFoundError: deleted meanwhile)."""
    return found(services.dependencies(service.owner_id, service.id), f"service {service.id}")


def add(services: ServiceRepository, service: Service, other_id: str) -> None:
    """`service` depends on `other_id`, another of the owner's services (idempotent)."""
    if other_id == service.id:
        raise InvalidRequestError("a service cannot depend on itself: give another service's id")
    if not services.add_dependency(service.owner_id, service.id, other_id):
        raise NotFoundError(f"service {other_id} not found")


def remove(services: ServiceRepository, service: Service, other_id: str) -> None:
    if not services.remove_dependency(service.owner_id, service.id, other_id):
        raise NotFoundError(f"service {service.id} does not depend on {other_id}")


def related_service_ids(services: ServiceRepository, service_id: str, max_hops: int) -> set[str]:
    """The service and every service linked to it by DEPENDS_ON within `max_hops`."""
    edges = services.dependency_edges_near([service_id], max_hops).edges
    return {service_id} | {end for edge in edges for end in edge}
