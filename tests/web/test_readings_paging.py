"""A readings page capped by PAGE_SIZE_MAX still says where the next page starts."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from common.models import User
from tests.support import AppServer, start_app, stop_app


@pytest.fixture
def small_pages_app(service_env: dict[str, str]) -> Iterator[AppServer]:
    app = start_app(service_env, {"PAGE_SIZE_MAX": "5"})
    yield app
    stop_app(app)


def test_limit_above_page_size_max_still_gives_a_next_cursor(
    small_pages_app: AppServer, make_user: Callable[..., tuple[User, str]]
) -> None:
    _, key = make_user()
    with httpx.Client(
        base_url=small_pages_app.base_url, headers={"X-API-Key": key}, timeout=30
    ) as http:
        service = http.post("/api/services", json={"name": "paged"}).json()
        metric = http.post("/api/metrics", json={"name": "cpu", "service_id": service["id"]})
        url = f"/api/metrics/{metric.json()['id']}/readings"
        batch = [
            {"id": f"r{i:02}", "value": float(i), "timestamp": f"2026-11-25T10:{i:02}:00Z"}
            for i in range(12)
        ]
        assert http.post(url, json={"readings": batch}).status_code == 201

        seen: list[str] = []
        params: dict[str, str | int] = {"limit": 10}
        for _ in range(10):
            page = http.get(url, params=params).json()
            assert len(page["readings"]) <= 5
            seen += [reading["id"] for reading in page["readings"]]
            if page["next_cursor"] is None:
                break
            params = {"limit": 10, "cursor": page["next_cursor"]}
    assert seen == [f"r{i:02}" for i in range(12)]
