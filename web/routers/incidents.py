"""Incidents: related anomalies grouped along the service graph, with ranked probable causes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from common.errors import found
from common.incidents.detail import IncidentDetail, incident_detail, incident_summaries
from common.incidents.models import Incident, IncidentStatus
from web.deps import CurrentUser, PathId, RepositoriesDep, SettingsDep
from web.schemas.incidents import IncidentPage
from web.schemas.responses import AUTH_ERRORS, BAD_REQUEST, NOT_FOUND

router = APIRouter(
    prefix="/api/incidents", tags=["incidents"], responses={**AUTH_ERRORS, **BAD_REQUEST}
)


@router.get("")
def list_incidents(
    user: CurrentUser,
    repositories: RepositoriesDep,
    settings: SettingsDep,
    status: Annotated[IncidentStatus | None, Query(description="open or resolved")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> IncidentPage:
    """The caller's incidents, newest first (`?status=open`), a page at a time, each with its
    title and top cause."""
    page = repositories.incidents.list_owned(user.id, status, offset, limit + 1)
    more = len(page) > limit
    incidents = incident_summaries(repositories, page[:limit], settings.incident_max_hops)
    return IncidentPage(incidents=incidents, next_offset=offset + limit if more else None)


@router.get("/{incident_id}", responses=NOT_FOUND)
def get_incident(
    incident_id: PathId, user: CurrentUser, repositories: RepositoriesDep, settings: SettingsDep
) -> IncidentDetail:
    """An incident with its anomalies, timeline and probable causes (most probable first)."""
    incident = found(repositories.incidents.get(user.id, incident_id), f"incident {incident_id}")
    return incident_detail(repositories, incident, settings.incident_max_hops)


@router.post("/{incident_id}/acknowledge", responses=NOT_FOUND)
def acknowledge_incident(
    incident_id: PathId, user: CurrentUser, repositories: RepositoriesDep
) -> Incident:
    """Say someone is on it (the first acknowledgement's time is kept). Notifies no one."""
    incident = repositories.incidents.acknowledge(user.id, incident_id)
    return found(incident, f"incident {incident_id}")


@router.post("/{incident_id}/resolve", responses=NOT_FOUND)
def resolve_incident(
    incident_id: PathId, user: CurrentUser, repositories: RepositoriesDep
) -> Incident:
    """Resolve an open incident (notifies the channels); a resolved one is left as it is.

    New anomalies of the same metrics afterwards open a new incident.
    """
    incident = repositories.incidents.resolve(user.id, incident_id, resolved_by=user.name)
    return found(incident, f"incident {incident_id}")
