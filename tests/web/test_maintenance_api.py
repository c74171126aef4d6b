"""Maintenance windows over HTTP, on each engine: create, list, edit, delete; their spans for
a metric's chart; what bad input is told; another owner's windows are 404."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from common.users.models import User


def service_and_metric(client: httpx.Client) -> tuple[str, str]:
    service = client.post("/api/services", json={"name": "db"}).json()["id"]
    metric = client.post("/api/metrics", json={"name": "lag", "service_id": service}).json()
    return str(service), str(metric["id"])


def as_set(window: dict[str, object]) -> dict[str, object]:
    """A window as people set it: without whether a worker has applied its reach into the
    past yet (`reach_pending`, which a worker may flip meanwhile)."""
    assert isinstance(window["reach_pending"], bool)
    return {key: value for key, value in window.items() if key != "reach_pending"}


NIGHTLY = {
    "days": ["sun"],
    "start_time": "02:00",
    "end_time": "04:00",
    "time_zone": "Europe/Berlin",
}


def test_window_lifecycle(client: httpx.Client) -> None:
    service, metric = service_and_metric(client)
    created = client.post(
        "/api/maintenance-windows",
        json={"service_id": service, "weekly": NIGHTLY, "reason": "vacuum"},
    )
    assert created.status_code == 201, created.text
    window = created.json()
    assert window["weekly"] == NIGHTLY
    assert (window["service_id"], window["metric_id"], window["start"]) == (service, None, None)
    one_off = client.post(
        "/api/maintenance-windows",
        json={
            "start": "2026-03-02T10:00:00+01:00",
            "end": "2026-03-02T12:00:00Z",
            "reason": "datacentre move",
        },
    ).json()
    assert one_off["start"] == "2026-03-02T09:00:00Z" and one_off["service_id"] is None
    listed = client.get("/api/maintenance-windows").json()
    assert [w["id"] for w in listed] == [window["id"], one_off["id"]]
    assert as_set(client.get(f"/api/maintenance-windows/{window['id']}").json()) == as_set(window)

    # Edit: the fields sent replace the stored ones; the window is checked whole.
    moved = client.patch(
        f"/api/maintenance-windows/{window['id']}",
        json={"metric_id": metric, "service_id": None, "reason": "reindex"},
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["metric_id"], moved.json()["service_id"]) == (metric, None)
    assert moved.json()["weekly"] == window["weekly"] and moved.json()["reason"] == "reindex"
    no_schedule = client.patch(f"/api/maintenance-windows/{window['id']}", json={"weekly": None})
    assert no_schedule.status_code == 422
    assert no_schedule.json()["detail"] == "a one-off window needs start and end (or give weekly)"
    assert as_set(client.get(f"/api/maintenance-windows/{window['id']}").json()) == as_set(
        moved.json()
    )

    # The spans a metric's chart shades: the weekly one (its own now) and the one for all.
    spans = client.get(
        "/api/maintenance-windows/spans",
        params={
            "metric_id": metric,
            "start": "2026-03-01T00:00:00Z",
            "end": "2026-04-06T00:00:00Z",
        },
    )
    assert spans.status_code == 200, spans.text
    shaded = [(s["start"], s["end"], s["reason"]) for s in spans.json()["spans"]]
    assert shaded == [
        ("2026-03-01T01:00:00Z", "2026-03-01T03:00:00Z", "reindex"),
        ("2026-03-02T09:00:00Z", "2026-03-02T12:00:00Z", "datacentre move"),
        ("2026-03-08T01:00:00Z", "2026-03-08T03:00:00Z", "reindex"),
        ("2026-03-15T01:00:00Z", "2026-03-15T03:00:00Z", "reindex"),
        ("2026-03-22T01:00:00Z", "2026-03-22T03:00:00Z", "reindex"),
        ("2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z", "reindex"),  # spring forward
        ("2026-04-05T00:00:00Z", "2026-04-05T02:00:00Z", "reindex"),  # summer time
    ]
    assert spans.json()["truncated"] is False

    assert client.delete(f"/api/maintenance-windows/{window['id']}").status_code == 204
    assert client.get(f"/api/maintenance-windows/{window['id']}").status_code == 404
    assert client.delete(f"/api/maintenance-windows/{window['id']}").status_code == 404
    assert [w["id"] for w in client.get("/api/maintenance-windows").json()] == [one_off["id"]]


def test_bad_windows_are_told_what_to_fix(client: httpx.Client) -> None:
    service, metric = service_and_metric(client)
    cases = [
        ({"reason": "x", "start": "2026-03-02T10:00:00Z"}, "a one-off window needs start and end"),
        (
            {"reason": "x", "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T09:00:00Z"},
            "end must be after start",
        ),
        (
            {"reason": "x", "service_id": service, "metric_id": metric, "weekly": NIGHTLY},
            "give service_id or metric_id, not both",
        ),
        (
            {"reason": "x", "weekly": {**NIGHTLY, "time_zone": "Europe/Atlantis"}},
            "weekly.time_zone: 'Europe/Atlantis' is not an IANA time zone name",
        ),
        (
            {"reason": "x", "weekly": {**NIGHTLY, "days": ["sun", "sun"]}},
            "weekly.days: a day is named twice",
        ),
    ]
    for body, message in cases:
        response = client.post("/api/maintenance-windows", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["detail"].startswith(message), response.text
    # Shapes: per field, with where.
    for body, where in [
        ({"reason": "x", "weekly": {**NIGHTLY, "days": ["sunday"]}}, ["body", "weekly", "days", 0]),
        (
            {"reason": "x", "weekly": {**NIGHTLY, "start_time": "02:00:30"}},
            ["body", "weekly", "start_time"],
        ),
        ({"reason": "", "weekly": NIGHTLY}, ["body", "reason"]),
        ({"reason": "x", "weekly": NIGHTLY, "every": "week"}, ["body", "every"]),
        ({"reason": "x", "start": 1700000000, "end": "2026-03-02T09:00:00Z"}, ["body", "start"]),
    ]:
        response = client.post("/api/maintenance-windows", json=body)
        assert response.status_code == 422, (body, response.text)
        assert [problem["loc"] for problem in response.json()["detail"]] == [where], response.text
    assert client.get("/api/maintenance-windows").json() == []  # nothing was stored


def test_another_owners_windows_and_targets_are_404(
    client: httpx.Client, make_user: Callable[..., tuple[User, str]]
) -> None:
    service, metric = service_and_metric(client)
    window = client.post(
        "/api/maintenance-windows", json={"metric_id": metric, "weekly": NIGHTLY, "reason": "x"}
    ).json()
    _, other_key = make_user("mallory")
    with httpx.Client(
        base_url=str(client.base_url), headers={"X-API-Key": other_key}, timeout=30
    ) as other:
        url = f"/api/maintenance-windows/{window['id']}"
        assert other.get(url).status_code == 404
        assert other.patch(url, json={"reason": "mine now"}).status_code == 404
        assert other.delete(url).status_code == 404
        assert other.get("/api/maintenance-windows").json() == []
        for target in ({"service_id": service}, {"metric_id": metric}):
            taken = other.post(
                "/api/maintenance-windows", json={**target, "weekly": NIGHTLY, "reason": "x"}
            )
            assert taken.status_code == 404 and taken.json()["detail"].endswith("not found")
        spans = other.get(
            "/api/maintenance-windows/spans",
            params={
                "metric_id": metric,
                "start": "2026-03-01T00:00:00Z",
                "end": "2026-03-09T00:00:00Z",
            },
        )
        assert spans.status_code == 404
    assert as_set(client.get(url).json()) == as_set(window)  # untouched


def test_a_window_whose_metric_was_deleted_says_so_when_edited(client: httpx.Client) -> None:
    """A window outlives its metric (it mutes nothing then): editing it while keeping that
    target is a 409 saying what to do, not a 404 that reads as if the window were gone;
    given another target, or deleted, it is a window like any other."""
    service, metric = service_and_metric(client)
    window = client.post(
        "/api/maintenance-windows", json={"metric_id": metric, "weekly": NIGHTLY, "reason": "x"}
    ).json()
    assert client.delete(f"/api/metrics/{metric}").status_code == 204
    url = f"/api/maintenance-windows/{window['id']}"
    assert client.get(url).status_code == 200
    kept = client.patch(url, json={"reason": "still the backup"})
    assert kept.status_code == 409, kept.text
    assert kept.json()["detail"] == (
        f"this window's metric {metric} was deleted: delete the window, or give it another "
        "target (metric_id or service_id; both null: all of your metrics)"
    )
    moved = client.patch(url, json={"metric_id": None, "service_id": service})
    assert moved.status_code == 200 and moved.json()["service_id"] == service
    assert client.delete(url).status_code == 204
