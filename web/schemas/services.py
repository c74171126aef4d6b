"""Services' request and response bodies."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from common.services.models import Service, ServiceDependencies, ServiceRef
from web.schemas.fields import Description, Name, NameEditUpdate, RequestModel
from web.schemas.responses import ErrorBody


class ServiceCreate(RequestModel):
    name: Name
    description: Description | None = None


class ServiceUpdate(NameEditUpdate):
    pass


ServicePublic = Service

NAME_TAKEN: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "the caller has a service of that name"}
}


class ServiceDetail(Service):
    """A service with its direct dependencies (upstream) and dependents (downstream)."""

    depends_on: list[ServiceRef] = Field(description="services this one depends on (upstream)")
    dependents: list[ServiceRef] = Field(description="services that depend on this one")

    @classmethod
    def of(cls, service: Service, dependencies: ServiceDependencies) -> ServiceDetail:
        return cls(**service.model_dump(), **dependencies.model_dump())
