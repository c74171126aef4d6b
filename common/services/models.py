"""A service, and the DEPENDS_ON links between a user's services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, Field


class Service(BaseModel):
    id: str
    name: str
    description: str | None = None
    owner_id: str
    created_at: datetime


class ServiceRef(BaseModel):
    id: str
    name: str


class ServiceDependencies(BaseModel):
    depends_on: list[ServiceRef] = Field(description="services this one depends on (upstream)")
    dependents: list[ServiceRef] = Field(description="services that depend on this one")


@dataclass(frozen=True)
class DependencyEdges:
    """DEPENDS_ON edges found near some services: (dependent, dependency) pairs."""

    edges: frozenset[tuple[str, str]]
