"""Other shapes of the same event, for receivers that expect them.

`neonomaly` is the documented payload itself. `slack` is a Slack incoming-webhook message
(`{"text": ...}` in Slack's mrkdwn). `alertmanager` is a Prometheus Alertmanager webhook
notification (version 4): one alert per ranked metric, firing or resolved with the
incident, so tools that take Alertmanager's webhooks take Neonomaly's incidents.
The headers (event id, signature) are the same for every format.
"""

from __future__ import annotations

import hashlib
from typing import Any

from common.notifications.models import PayloadFormat

# Alertmanager's "not ended yet".
NO_END = "0001-01-01T00:00:00Z"
SLACK_HEADLINE = {
    "incident.opened": ":rotating_light: Incident opened",
    "incident.updated": ":warning: Incident updated",
    "incident.resolved": ":white_check_mark: Incident resolved",
}


def render(payload_format: PayloadFormat, event: dict[str, Any]) -> dict[str, Any]:
    """The body to send for `event` (the documented Neonomaly payload) in a channel's format."""
    if payload_format == "slack":
        return slack_message(event)
    if payload_format == "alertmanager":
        return alertmanager_notification(event)
    return event


def slack_message(event: dict[str, Any]) -> dict[str, Any]:
    incident = event.get("incident")
    if incident is None:
        return {"text": f"Neonomaly: {event['message']}"}
    headline = SLACK_HEADLINE.get(event["event"], event["event"])
    lines = [
        f"*{headline}: {incident['title']}*",
        f"Probable cause: {incident['summary']}",
        f"Services: {', '.join(incident['services'])} · {incident['members']} anomalies · "
        f"status {incident['status']} · `{incident['url']}`",
    ]
    return {"text": "\n".join(lines)}


def alertmanager_notification(event: dict[str, Any]) -> dict[str, Any]:
    incident = event.get("incident")
    if incident is None:  # a test event: one firing alert that says so
        alerts = [
            {
                "status": "firing",
                "labels": {"alertname": "NeonomalyTest", "channel_id": event["channel_id"]},
                "annotations": {"summary": event["message"]},
                "startsAt": event["occurred_at"],
                "endsAt": NO_END,
                "generatorURL": "",
                "fingerprint": _fingerprint(event["event_id"]),
            }
        ]
        return _notification(
            "firing", {"alertname": "NeonomalyTest"}, {}, event["event_id"], alerts
        )
    status = "resolved" if incident["status"] == "resolved" else "firing"
    ends_at = incident["resolved_at"] or NO_END
    alerts = [
        {
            "status": status,
            "labels": {
                "alertname": "NeonomalyAnomaly",
                "incident_id": incident["id"],
                "metric": cause["metric"],
                "rank": str(cause["rank"]),
            },
            "annotations": {
                "summary": cause["reasons"][0],
                "description": "; ".join(cause["reasons"]),
            },
            "startsAt": cause["onset_at"],
            "endsAt": ends_at,
            "generatorURL": incident["url"],
            "fingerprint": _fingerprint(f"{incident['id']}\x00{cause['metric_id']}"),
        }
        for cause in incident["probable_causes"]
    ]
    return _notification(
        status,
        {"alertname": "NeonomalyIncident", "incident_id": incident["id"]},
        {"summary": incident["title"], "description": incident["summary"]},
        incident["id"],
        alerts,
    )


def _notification(
    status: str,
    labels: dict[str, str],
    annotations: dict[str, str],
    group_key: str,
    alerts: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "neonomaly",
        "groupLabels": labels,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "",
        "alerts": alerts,
    }


def _fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
