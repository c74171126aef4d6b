"""Incidents' response bodies (one incident is common.incidents.detail.IncidentDetail)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from common.incidents.models import Incident


class IncidentPage(BaseModel):
    incidents: list[Incident]
    next_offset: int | None = Field(description="pass as ?offset= for the next page")
