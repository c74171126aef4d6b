"""Slack and Alertmanager shapes of an incident event."""

from __future__ import annotations

from typing import Any

from common.notifications.formats import render


def incident_event(status: str = "open", resolved_at: str | None = None) -> dict[str, Any]:
    return {
        "schema": "neonomaly.webhook.v1",
        "event_id": "evt_1",
        "event": "incident.resolved" if status == "resolved" else "incident.opened",
        "occurred_at": "2026-11-25T10:10:00+00:00",
        "incident": {
            "id": "inc1", "url": "/api/incidents/inc1", "status": status,
            "title": "payments/error_rate and 1 other metric",
            "summary": "payments/error_rate started 4 min before checkout/latency",
            "services": ["checkout", "payments"], "members": 4, "resolved_at": resolved_at,
            "probable_causes": [
                {"rank": 1, "metric": "payments/error_rate", "metric_id": "m1",
                 "onset_at": "2026-11-25T10:00:00Z", "reasons": ["started first", "upstream"]},
                {"rank": 2, "metric": "checkout/latency", "metric_id": "m2",
                 "onset_at": "2026-11-25T10:04:00Z", "reasons": ["started later"]},
            ],
        },
    }  # fmt: skip


def test_neonomaly_format_is_the_event_itself() -> None:
    event = incident_event()
    assert render("neonomaly", event) is event


def test_slack_message_names_the_cause() -> None:
    text = render("slack", incident_event())["text"]
    assert text.splitlines()[0] == (
        "*:rotating_light: Incident opened: payments/error_rate and 1 other metric*"
    )
    assert "Probable cause: payments/error_rate started 4 min" in text
    resolved = render("slack", incident_event("resolved", "2026-11-25T11:00:00Z"))["text"]
    assert resolved.startswith("*:white_check_mark: Incident resolved")


def test_alertmanager_alert_per_ranked_metric_resolved_with_the_incident() -> None:
    firing = render("alertmanager", incident_event())
    assert firing["version"] == "4" and firing["status"] == "firing"
    assert [a["labels"]["metric"] for a in firing["alerts"]] == [
        "payments/error_rate", "checkout/latency"
    ]  # fmt: skip
    assert firing["alerts"][0]["annotations"]["description"] == "started first; upstream"
    resolved = render("alertmanager", incident_event("resolved", "2026-11-25T11:00:00Z"))
    assert resolved["status"] == "resolved"
    assert {a["endsAt"] for a in resolved["alerts"]} == {"2026-11-25T11:00:00Z"}
    # The same metric of the same incident keeps its fingerprint from firing to resolved.
    assert [a["fingerprint"] for a in resolved["alerts"]] == [
        a["fingerprint"] for a in firing["alerts"]
    ]


def test_test_event_in_each_format() -> None:
    event = {
        "schema": "neonomaly.webhook.v1", "event_id": "evt_test_1", "event": "test",
        "occurred_at": "2026-11-25T10:00:00+00:00", "channel_id": "c1", "message": "it works",
    }  # fmt: skip
    assert render("slack", event) == {"text": "Neonomaly: it works"}
    [alert] = render("alertmanager", event)["alerts"]
    assert alert["labels"]["alertname"] == "NeonomalyTest"
