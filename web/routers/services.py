"""Services: what a user monitors. Deleting one deletes its metrics and their readings.

Services depend on services: (:Service)-[:DEPENDS_ON]->(:Service), between one owner's
services. Cycles are allowed; incidents walk the links a bounded number of hops.
"""

from fastapi import APIRouter, Response, status

from common.errors import InvalidRequestError, NotFoundError, found
from common.graph.store import GraphStore
from common.models import Service
from web.deps import CurrentUser, OwnedService, PathId, StoreDep
from web.schemas import (
    AUTH_ERRORS,
    BAD_BODY,
    BAD_REQUEST,
    NOT_FOUND,
    ServiceCreate,
    ServiceDetail,
    ServicePublic,
    ServiceUpdate,
)

router = APIRouter(prefix="/api/services", tags=["services"], responses=AUTH_ERRORS)


@router.post("", status_code=status.HTTP_201_CREATED, responses=BAD_BODY)
def create_service(body: ServiceCreate, user: CurrentUser, store: StoreDep) -> ServicePublic:
    """Create a service owned by the caller."""
    return store.create_service(user.id, body.name, body.description)


@router.get("")
def list_services(user: CurrentUser, store: StoreDep) -> list[ServicePublic]:
    """List the caller's services, oldest first."""
    return store.list_services(user.id)


def _detail(service: Service, store: GraphStore) -> ServiceDetail:
    # None when the service was deleted in between.
    dependencies = found(
        store.service_dependencies(service.owner_id, service.id), f"service {service.id}"
    )
    return ServiceDetail(**service.model_dump(), **dependencies.model_dump())


@router.get("/{service_id}", responses={**NOT_FOUND, **BAD_REQUEST})
def get_service(service: OwnedService, store: StoreDep) -> ServiceDetail:
    """Get one of the caller's services, with its dependencies and dependents."""
    return _detail(service, store)


@router.put("/{service_id}/dependencies/{other_id}", responses={**NOT_FOUND, **BAD_REQUEST})
def add_dependency(
    other_id: PathId, service: OwnedService, user: CurrentUser, store: StoreDep
) -> ServiceDetail:
    """Record that this service depends on `other_id` (idempotent); returns this service."""
    if other_id == service.id:
        raise InvalidRequestError("a service cannot depend on itself: give another service's id")
    if not store.add_dependency(user.id, service.id, other_id):
        raise NotFoundError(f"service {other_id} not found")
    return _detail(service, store)


@router.delete(
    "/{service_id}/dependencies/{other_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_FOUND, **BAD_REQUEST},
)
def remove_dependency(
    other_id: PathId, service: OwnedService, user: CurrentUser, store: StoreDep
) -> Response:
    """Remove the dependency of this service on `other_id`."""
    if not store.remove_dependency(user.id, service.id, other_id):
        raise NotFoundError(f"service {service.id} does not depend on {other_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.patch("/{service_id}", responses={**NOT_FOUND, **BAD_BODY})
def update_service(
    body: ServiceUpdate, service: OwnedService, user: CurrentUser, store: StoreDep
) -> ServicePublic:
    """Change a service's name or description (send null to clear the description)."""
    updated = store.update_service(
        user.id,
        service.id,
        name=body.name,
        description=body.description,
        set_description="description" in body.model_fields_set,
    )
    return found(updated, f"service {service.id}")


@router.delete(
    "/{service_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_FOUND, **BAD_REQUEST},
)
def delete_service(service: OwnedService, user: CurrentUser, store: StoreDep) -> Response:
    """Delete a service with all its metrics, their readings and anomalies."""
    store.delete_service(user.id, service.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
