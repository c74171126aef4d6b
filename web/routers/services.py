"""Services: what a user monitors. Deleting one deletes its metrics and their readings.

Services depend on services: (:Service)-[:DEPENDS_ON]->(:Service), between one owner's
services. Cycles are allowed; incidents walk the links a bounded number of hops.
"""

from fastapi import APIRouter, Response, status

from common.errors import NotFoundError, found
from common.services import dependencies
from web.deps import CurrentUser, OwnedService, PathId, RepositoriesDep
from web.schemas.responses import AUTH_ERRORS, BAD_BODY, BAD_REQUEST, NOT_FOUND
from web.schemas.services import (
    NAME_TAKEN,
    ServiceCreate,
    ServiceDetail,
    ServicePublic,
    ServiceUpdate,
)

router = APIRouter(prefix="/api/services", tags=["services"], responses=AUTH_ERRORS)


@router.post("", status_code=status.HTTP_201_CREATED, responses={**BAD_BODY, **NAME_TAKEN})
def create_service(
    body: ServiceCreate, user: CurrentUser, repositories: RepositoriesDep
) -> ServicePublic:
    """Create a service owned by the caller (a name it already uses is 409)."""
    return repositories.services.create(user.id, body.name, body.description)


@router.get("")
def list_services(user: CurrentUser, repositories: RepositoriesDep) -> list[ServicePublic]:
    """List the caller's services, oldest first."""
    return repositories.services.list_owned(user.id)


@router.get("/{service_id}", responses={**NOT_FOUND, **BAD_REQUEST})
def get_service(service: OwnedService, repositories: RepositoriesDep) -> ServiceDetail:
    """Get one of the caller's services, with its dependencies and dependents."""
    return ServiceDetail.of(service, dependencies.of(repositories.services, service))


@router.put("/{service_id}/dependencies/{other_id}", responses={**NOT_FOUND, **BAD_REQUEST})
def add_dependency(
    other_id: PathId, service: OwnedService, repositories: RepositoriesDep
) -> ServiceDetail:
    """Record that this service depends on `other_id` (idempotent); returns this service."""
    dependencies.add(repositories.services, service, other_id)
    return ServiceDetail.of(service, dependencies.of(repositories.services, service))


@router.delete(
    "/{service_id}/dependencies/{other_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_FOUND, **BAD_REQUEST},
)
def remove_dependency(
    other_id: PathId, service: OwnedService, repositories: RepositoriesDep
) -> Response:
    """Remove the dependency of this service on `other_id`."""
    dependencies.remove(repositories.services, service, other_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.patch("/{service_id}", responses={**NOT_FOUND, **BAD_BODY, **NAME_TAKEN})
def update_service(
    body: ServiceUpdate, service: OwnedService, user: CurrentUser, repositories: RepositoriesDep
) -> ServicePublic:
    """Change a service's name or description (send null to clear the description)."""
    updated = repositories.services.update(user.id, service.id, body.edit())
    return found(updated, f"service {service.id}")


@router.delete(
    "/{service_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_FOUND, **BAD_REQUEST},
)
def delete_service(
    service_id: PathId, user: CurrentUser, repositories: RepositoriesDep
) -> Response:
    """Delete a service with all its metrics, their readings and anomalies."""
    if not repositories.services.delete(user.id, service_id):
        raise NotFoundError(f"service {service_id} not found")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
