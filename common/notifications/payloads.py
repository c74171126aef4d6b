"""What receivers are sent: the documented webhook body of an event, and its stable id."""

from __future__ import annotations

import hashlib
from typing import Any

from common.epoch import utc_now
from common.incidents.detail import IncidentDetail
from common.notifications.models import NotificationChannel

SCHEMA = "neonomaly.webhook.v1"
CAUSES_IN_PAYLOAD = 5


def event_id_of(incident_id: str, revision: int) -> str:
    """The same change of the same incident always has the same event id."""
    return "evt_" + hashlib.sha256(f"{incident_id}\x00{revision}".encode()).hexdigest()[:32]


def incident_event(status: str, notified_revision: int) -> str:
    """What people are told: opened (their first word of it), updated, or resolved.

    Changes between two sweeps are told as one event about the incident as it is now.
    """
    if status == "resolved":
        return "incident.resolved"
    return "incident.opened" if notified_revision == 0 else "incident.updated"


def incident_payload(event_id: str, event: str, detail: IncidentDetail) -> dict[str, Any]:
    """The documented webhook body of an incident event (README: Incidents and notifications)."""
    incident = detail.model_dump(
        mode="json",
        include={
            "id", "status", "title", "summary", "services", "opened_at", "updated_at",
            "started_at", "ended_at", "members", "acknowledged_at", "resolved_at",
            "resolved_by", "revision",
        },
    )  # fmt: skip
    incident["probable_causes"] = [
        cause.model_dump(mode="json") for cause in detail.probable_causes[:CAUSES_IN_PAYLOAD]
    ]
    incident["url"] = f"/api/incidents/{detail.id}"
    return {
        "schema": SCHEMA,
        "event_id": event_id,
        "event": event,
        "occurred_at": utc_now().isoformat(),
        "incident": incident,
    }


def test_payload(event_id: str, channel: NotificationChannel) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "event_id": event_id,
        "event": "test",
        "occurred_at": utc_now().isoformat(),
        "channel_id": channel.id,
        "message": "a test notification from Neonomaly: this channel works",
    }
