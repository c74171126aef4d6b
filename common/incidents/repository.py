"""Incidents in the graph: the join-or-open decision, their states, the notification outbox."""

from __future__ import annotations

from collections.abc import Sequence

from common.epoch import from_epoch_ms, now_ms, optional_moment
from common.graph.executors import CypherExecutor, Row
from common.ids import new_id
from common.incidents import queries as q
from common.incidents.models import (
    Incident,
    IncidentJoin,
    IncidentMember,
    IncidentStatus,
    MetricActivity,
    PendingNotification,
)
from common.scores import capped_score


def _incident(row: Row) -> Incident:
    return Incident(
        id=row["id"],
        owner_id=row["owner_id"],
        status=row["status"],
        opened_at=from_epoch_ms(row["opened_at"]),
        updated_at=from_epoch_ms(row["last_joined_at"]),
        started_at=from_epoch_ms(row["started_at"]),
        ended_at=from_epoch_ms(row["ended_at"]),
        members=row["members"],
        acknowledged_at=optional_moment(row["acknowledged_at"]),
        resolved_at=optional_moment(row["resolved_at"]),
        resolved_by=row["resolved_by"],
        revision=row["revision"],
        last_change=row["last_change"],
    )


def _member(row: Row) -> IncidentMember:
    return IncidentMember(
        **{
            **row,
            "timestamp": from_epoch_ms(row["timestamp"]),
            "event_start": from_epoch_ms(row["event_start"]),
            "event_end": from_epoch_ms(row["event_end"]),
        }
    )


class IncidentRepository:
    def __init__(self, executor: CypherExecutor):
        self.executor = executor

    def join_or_open(
        self,
        owner_id: str,
        anomaly_ids: Sequence[str],
        related_metric_ids: Sequence[str],
        start_ms: int,
        end_ms: int,
        gap_ms: int,
        into: str | None = None,
    ) -> IncidentJoin | None:
        """Put a batch of a cluster of anomalies into the incident holding their event, a
        related open incident, or a new one.

        One statement decides (see JOIN_OR_OPEN_INCIDENT). `into`: the incident the batch
        before of the same cluster went to. None: nothing was news (every anomaly was
        already in an incident, or joined a resolved one quietly).
        """
        rows = self.executor.write(
            q.JOIN_OR_OPEN_INCIDENT,
            {
                "owner_id": owner_id,
                "anomaly_ids": list(anomaly_ids),
                "related_metric_ids": list(related_metric_ids),
                "start": start_ms,
                "end": end_ms,
                "gap": gap_ms,
                "into": into,
                "new_id": new_id(),
                "now": now_ms(),
            },
        )
        if not rows:
            return None
        return IncidentJoin(rows[0]["id"], bool(rows[0]["opened"]), int(rows[0]["joined"]))

    def get(self, owner_id: str, incident_id: str) -> Incident | None:
        rows = self.executor.read(
            q.GET_INCIDENT, {"owner_id": owner_id, "incident_id": incident_id}
        )
        return _incident(rows[0]) if rows else None

    def get_unscoped(self, incident_id: str) -> Incident | None:
        """Whoever owns it, for the notifier acting on an incident id."""
        rows = self.executor.read(q.GET_INCIDENT_BY_ID, {"incident_id": incident_id})
        return _incident(rows[0]) if rows else None

    def list_owned(
        self, owner_id: str, status: IncidentStatus | None, offset: int, limit: int
    ) -> list[Incident]:
        rows = self.executor.read(
            q.LIST_INCIDENTS,
            {"owner_id": owner_id, "status": status, "offset": offset, "limit": limit},
        )
        return [_incident(row) for row in rows]

    def activity(
        self, incident_ids: Sequence[str], per_incident: int
    ) -> dict[str, list[MetricActivity]]:
        """Each incident's metrics summed up over its oldest `per_incident` members (what
        `members` reads for the detail), for a page of incidents in one read."""
        rows = self.executor.read(
            q.INCIDENTS_ACTIVITY,
            {"incident_ids": list(incident_ids), "per_incident": per_incident},
        )
        activity: dict[str, list[MetricActivity]] = {}
        for row in rows:
            activity.setdefault(row["incident_id"], []).append(
                MetricActivity.named(
                    row["metric_id"],
                    row["metric_name"],
                    row["service_id"],
                    row["service_name"],
                    onset=from_epoch_ms(row["onset"]),
                    peak_score=capped_score(row["peak_score"]),
                    anomalies=row["anomalies"],
                    dismissed=row["undismissed"] == 0,
                )
            )
        return activity

    def members(self, incident_id: str, limit: int) -> list[IncidentMember]:
        rows = self.executor.read(q.INCIDENT_MEMBERS, {"incident_id": incident_id, "limit": limit})
        return [_member(row) for row in rows]

    def acknowledge(self, owner_id: str, incident_id: str) -> Incident | None:
        rows = self.executor.write(
            q.ACKNOWLEDGE_INCIDENT,
            {"owner_id": owner_id, "incident_id": incident_id, "now": now_ms()},
        )
        return _incident(rows[0]) if rows else None

    def resolve(self, owner_id: str, incident_id: str, resolved_by: str) -> Incident | None:
        """Resolve an open incident (a resolved one is returned as it is)."""
        rows = self.executor.write(
            q.RESOLVE_INCIDENT,
            {
                "owner_id": owner_id,
                "incident_id": incident_id,
                "resolved_by": resolved_by,
                "now": now_ms(),
            },
        )
        return _incident(rows[0]) if rows else None

    def resolve_quiet(self, quiet_for_ms: int) -> list[str]:
        """Resolve the open incidents nothing joined for `quiet_for_ms`; returns their ids."""
        now = now_ms()
        rows = self.executor.write(
            q.RESOLVE_QUIET_INCIDENTS, {"cutoff": now - quiet_for_ms, "now": now}
        )
        return [row["id"] for row in rows]

    def to_notify(self, limit: int) -> list[PendingNotification]:
        """Incidents with changes not yet notified (the outbox), oldest change first."""
        rows = self.executor.read(q.INCIDENTS_TO_NOTIFY, {"limit": limit})
        return [
            PendingNotification(row["id"], row["owner_id"], int(row["notified_revision"]))
            for row in rows
        ]

    def mark_notified(self, incident_id: str, revision: int) -> None:
        self.executor.write(
            q.MARK_INCIDENT_NOTIFIED, {"incident_id": incident_id, "revision": revision}
        )
