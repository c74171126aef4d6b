"""An incident as people see it: members, timeline and ranked probable causes.

What `GET /api/incidents/{id}` answers and what webhook payloads carry.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from common.incidents.building import IncidentGraph
from common.incidents.cause import ProbableCause, metric_activity, rank_activity, rank_causes
from common.incidents.models import Incident, IncidentMember

# Members read per incident at most: an incident of a long outage can hold thousands of
# flagged readings; the ranking and timeline summarise per metric anyway.
MEMBERS_READ = 2000

TimelineEvent = Literal["anomaly", "opened", "acknowledged", "resolved"]


class TimelineEntry(BaseModel):
    at: datetime
    event: TimelineEvent
    text: str


class IncidentDetail(Incident):
    title: str = Field(description="the most probable cause, and how many metrics are involved")
    summary: str = Field(description="why the top cause ranks first")
    services: list[str] = Field(description="names of the services with anomalous metrics")
    probable_causes: list[ProbableCause] = Field(description="every metric, most probable first")
    timeline: list[TimelineEntry]
    anomalies: list[IncidentMember] = Field(description="the member anomalies, oldest first")
    anomalies_truncated: bool = Field(
        description=f"more than {MEMBERS_READ} members: only the oldest are listed"
    )


class IncidentSummary(Incident):
    """An incident as the list shows it: with its title and its most probable cause."""

    title: str = Field(description="the most probable cause, and how many metrics are involved")
    top_cause: ProbableCause | None = Field(
        description="the most probable cause (null: no member left: their metrics were "
        "deleted, or a maintenance window made later muted them)"
    )


# How an incident resolved by no person says why (common.incidents.queries,
# RESOLVE_QUIET_INCIDENTS; common.maintenance.queries,
# RESOLVE_OR_UPDATE_MUTED_INCIDENTS).
RESOLVED_BY = {
    "quiet": "resolved: no new anomaly joined for INCIDENT_RESOLVE_SECONDS",
    "maintenance": "resolved: a maintenance window made later covers every anomaly it held",
}


# The title of an incident with no member left, by who resolved it: a maintenance window
# made later mutes (and takes out) every anomaly it held; else they went with their metrics.
EMPTIED_TITLE = {"maintenance": "no anomalies left (a maintenance window made later covers them)"}
DELETED_TITLE = "no anomalies left (their metrics were deleted)"


def incident_title(causes: list[ProbableCause], resolved_by: str | None) -> tuple[str, str]:
    """The title and summary of an incident whose metrics rank as `causes`."""
    if not causes:
        return EMPTIED_TITLE.get(resolved_by or "", DELETED_TITLE), ""
    top = causes[0]
    others = len(causes) - 1
    title = top.metric + (
        f" and {others} other metric{'s' if others != 1 else ''}" if others else " anomalous"
    )
    return title, "; ".join(top.reasons)


def incident_summaries(
    graph: IncidentGraph, incidents: list[Incident], max_hops: int
) -> list[IncidentSummary]:
    """A page of incidents with their titles and top causes, ranked as the detail ranks
    them, in three reads or so whatever the page's length (no read per incident)."""
    activity = graph.incidents.activity([i.id for i in incidents], MEMBERS_READ)
    service_ids = sorted(
        {a.service_id for each in activity.values() for a in each if a.service_id is not None}
    )
    # The edges near every service of the page: each incident's shortest paths within
    # max_hops are among them, as they are among the edges near its own services.
    edges = graph.services.dependency_edges_near(service_ids, max_hops)
    summaries = []
    for incident in incidents:
        causes = rank_activity(activity.get(incident.id, []), edges, max_hops)
        title, _ = incident_title(causes, incident.resolved_by)
        summaries.append(
            IncidentSummary(
                **incident.model_dump(), title=title, top_cause=causes[0] if causes else None
            )
        )
    return summaries


def incident_detail(graph: IncidentGraph, incident: Incident, max_hops: int) -> IncidentDetail:
    members = graph.incidents.members(incident.id, MEMBERS_READ + 1)
    truncated = len(members) > MEMBERS_READ
    members = members[:MEMBERS_READ]
    service_ids = sorted({m.service_id for m in members if m.service_id is not None})
    edges = graph.services.dependency_edges_near(service_ids, max_hops)
    causes = rank_causes(members, edges, max_hops)
    title, summary = incident_title(causes, incident.resolved_by)
    return IncidentDetail(
        **incident.model_dump(),
        title=title,
        summary=summary,
        services=sorted({m.service_name for m in members if m.service_name is not None}),
        probable_causes=causes,
        timeline=timeline(incident, members),
        anomalies=members,
        anomalies_truncated=truncated,
    )


def timeline(incident: Incident, members: list[IncidentMember]) -> list[TimelineEntry]:
    """Each metric's anomalous stretch, and the incident's own changes, in time order."""
    entries = [TimelineEntry(at=incident.opened_at, event="opened", text="incident opened")]
    for activity in metric_activity(members):
        last = max(m.timestamp for m in members if m.metric_id == activity.metric_id)
        plural = "s" if activity.anomalies != 1 else ""
        entries.append(
            TimelineEntry(
                at=activity.onset,
                event="anomaly",
                text=(
                    f"{activity.label} anomalous from {activity.onset:%Y-%m-%d %H:%M:%S} to "
                    f"{last:%H:%M:%S} UTC ({activity.anomalies} reading{plural}, "
                    f"peak score {activity.peak_score:.1f})"
                ),
            )
        )
    if incident.acknowledged_at is not None:
        entries.append(
            TimelineEntry(at=incident.acknowledged_at, event="acknowledged", text="acknowledged")
        )
    if incident.resolved_at is not None:
        text = RESOLVED_BY.get(incident.resolved_by or "", f"resolved by {incident.resolved_by}")
        entries.append(TimelineEntry(at=incident.resolved_at, event="resolved", text=text))
    return sorted(entries, key=lambda e: e.at)
