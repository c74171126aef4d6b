"""Incidents' response bodies (one incident is common.incidents.detail.IncidentDetail)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from common.incidents.detail import IncidentSummary


class IncidentPage(BaseModel):
    incidents: list[IncidentSummary]
    next_offset: int | None = Field(description="pass as ?offset= for the next page")
