"""Incidents as the graph keeps them, their members, and the rows the outbox reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from common.scores import Score

IncidentStatus = Literal["open", "resolved"]
IncidentChange = Literal["opened", "updated", "resolved"]


@dataclass(frozen=True)
class IncidentJoin:
    """What one join-or-open decision did."""

    incident_id: str
    opened: bool
    joined: int


@dataclass(frozen=True)
class PendingNotification:
    """An incident with changes people were not told about yet (the outbox's row)."""

    incident_id: str
    owner_id: str
    notified_revision: int  # the revision told so far (0: nothing yet)


class Incident(BaseModel):
    id: str
    owner_id: str
    status: IncidentStatus
    opened_at: datetime = Field(description="when the incident was opened (server time)")
    updated_at: datetime = Field(description="when an anomaly last joined it (server time)")
    started_at: datetime = Field(description="the earliest member anomaly's event start")
    ended_at: datetime = Field(description="the latest member anomaly's event end")
    members: int = Field(description="anomalies (flagged readings) in the incident")
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = Field(
        default=None,
        description="'quiet' (nothing joined for a while), 'maintenance' (a maintenance "
        "window made later covers every anomaly it held), or who resolved it",
    )
    revision: int = Field(description="bumped by every change people are notified of")
    last_change: IncidentChange


class IncidentMember(BaseModel):
    """One anomaly of an incident, with its metric and service."""

    id: str = Field(description="the anomaly's id")
    metric_id: str
    metric_name: str | None
    service_id: str | None
    service_name: str | None
    timestamp: datetime
    value: float
    expected: float
    score: Score
    method: str
    event_start: datetime
    event_end: datetime
    kind: str | None = Field(default=None, description="the event's kind, if detection said")
    probability: float | None = Field(
        default=None, description="how unusual the reading is, if detection said"
    )
    feedback: str | None = None


@dataclass(frozen=True)
class MetricActivity:
    """One metric's part in an incident: its members summed up (the ranking's input)."""

    metric_id: str
    label: str  # service/metric
    service_id: str | None
    service_name: str
    onset: datetime
    peak_score: float
    anomalies: int
    dismissed: bool  # every anomaly of it was marked a false positive

    @classmethod
    def named(
        cls,
        metric_id: str,
        metric_name: str | None,
        service_id: str | None,
        service_name: str | None,
        **summed: Any,
    ) -> MetricActivity:
        """With the label people read, "service/metric" (names of deleted ones said so)."""
        service = service_name or "(deleted service)"
        return cls(
            metric_id=metric_id,
            label=f"{service}/{metric_name or metric_id}",
            service_id=service_id,
            service_name=service,
            **summed,
        )
