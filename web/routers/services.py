"""Services: what a user monitors. Deleting one deletes its metrics and their readings."""

from fastapi import APIRouter, Response, status

from common.errors import NotFoundError
from web.deps import CurrentUser, OwnedService, StoreDep
from web.schemas import (
    AUTH_ERRORS,
    BAD_BODY,
    BAD_REQUEST,
    NOT_FOUND,
    ServiceCreate,
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


@router.get("/{service_id}", responses={**NOT_FOUND, **BAD_REQUEST})
def get_service(service: OwnedService) -> ServicePublic:
    """Get one of the caller's services."""
    return service


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
    if updated is None:
        raise NotFoundError(f"service {service.id} not found")
    return updated


@router.delete(
    "/{service_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_FOUND, **BAD_REQUEST},
)
def delete_service(service: OwnedService, user: CurrentUser, store: StoreDep) -> Response:
    """Delete a service with all its metrics, their readings and anomalies."""
    store.delete_service(user.id, service.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
