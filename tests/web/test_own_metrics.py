"""/metrics is off unless the operator sets METRICS_TOKEN or METRICS_ADDRESS, and never
answers a user's API key."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from common.users.models import User
from tests.support import AppServer, free_port, start_app, stop_app


def test_off_by_default_and_says_how_to_turn_it_on(
    app_server: AppServer, make_user: Callable[..., tuple[User, str]]
) -> None:
    _, key = make_user()
    for headers in ({}, {"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
        response = httpx.get(f"{app_server.base_url}/metrics", headers=headers)
        assert response.status_code == 404
        assert "METRICS_TOKEN" in response.json()["detail"]


def test_private_listener_serves_without_a_token(service_env: dict[str, str]) -> None:
    address = f"127.0.0.1:{free_port()}"
    app = start_app(service_env, {"METRICS_ADDRESS": address})
    try:
        assert httpx.get(f"{app.base_url}/health").status_code == 200
        scraped = httpx.get(f"http://{address}/metrics", timeout=10)
        assert scraped.status_code == 200
        # The request above was counted, by its route template.
        assert 'neonomaly_http_requests_total{method="GET",route="/health",status="200"}' in (
            scraped.text
        )
        assert "neonomaly_queue_depth{" in scraped.text
        # Not on the API's port: that one needs METRICS_TOKEN. The answer says where they are
        # served (not "set METRICS_ADDRESS", which is set), without the private address.
        elsewhere = httpx.get(f"{app.base_url}/metrics")
        assert elsewhere.status_code == 404
        assert elsewhere.json()["detail"] == (
            "metrics are served on their own listener (METRICS_ADDRESS), not on this port: "
            "set METRICS_TOKEN to serve them here too, to that bearer token"
        )
    finally:
        stop_app(app)
