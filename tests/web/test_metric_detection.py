"""A metric's own detection settings over HTTP, on each engine: set by PATCH, shown with the
metric, merged field by field, reset by null, refused with a message when malformed."""

from __future__ import annotations

import httpx


def make_metric(client: httpx.Client) -> str:
    service = client.post("/api/services", json={"name": "api"}).json()["id"]
    metric = client.post("/api/metrics", json={"name": "latency", "service_id": service})
    assert metric.status_code == 201, metric.text
    return str(metric.json()["id"])


DEFAULTS = {
    "sensitivity": None,
    "direction": None,
    "min_deviation": None,
    "min_relative_deviation": None,
}


def test_detection_settings_are_patched_shown_merged_and_reset(client: httpx.Client) -> None:
    metric = make_metric(client)
    assert client.get(f"/api/metrics/{metric}").json()["detection"] == DEFAULTS
    patched = client.patch(
        f"/api/metrics/{metric}",
        json={"detection": {"sensitivity": 1e-5, "direction": "up", "min_deviation": 50}},
    )
    assert patched.status_code == 200, patched.text
    set_ = {**DEFAULTS, "sensitivity": 1e-5, "direction": "up", "min_deviation": 50.0}
    assert patched.json()["detection"] == set_ and patched.json()["name"] == "latency"
    assert client.get(f"/api/metrics/{metric}").json()["detection"] == set_
    # Field by field: what is sent replaces, null returns to the default; a rename keeps them.
    merged = client.patch(
        f"/api/metrics/{metric}",
        json={"name": "p99", "detection": {"min_deviation": None, "min_relative_deviation": 0.2}},
    ).json()
    assert merged["name"] == "p99"
    assert merged["detection"] == {**set_, "min_deviation": None, "min_relative_deviation": 0.2}
    renamed = client.patch(f"/api/metrics/{metric}", json={"description": "the 99th"}).json()
    assert renamed["detection"] == merged["detection"]
    service = merged["service_id"]
    [listed] = client.get(f"/api/metrics/service/{service}").json()
    assert listed["detection"] == merged["detection"]
    reset = client.patch(f"/api/metrics/{metric}", json={"detection": None}).json()
    assert reset["detection"] == DEFAULTS


def test_bad_detection_settings_are_422_and_change_nothing(client: httpx.Client) -> None:
    metric = make_metric(client)
    client.patch(f"/api/metrics/{metric}", json={"detection": {"direction": "down"}})
    for detection, field in [
        ({"direction": "sideways"}, "direction"),
        ({"sensitivity": 0.5}, "sensitivity"),
        ({"sensitivity": 0}, "sensitivity"),
        ({"min_deviation": -1}, "min_deviation"),
        ({"min_relative_deviation": "10%"}, "min_relative_deviation"),
        ({"sigma": 3}, "sigma"),
    ]:
        response = client.patch(
            f"/api/metrics/{metric}", json={"name": "renamed", "detection": detection}
        )
        assert response.status_code == 422, (detection, response.text)
        [problem] = response.json()["detail"]
        assert problem["loc"] == ["body", "detection", field], response.text
    after = client.get(f"/api/metrics/{metric}").json()
    assert after["name"] == "latency" and after["detection"]["direction"] == "down"
