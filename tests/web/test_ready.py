"""/ready as a probe sees it: no key, only the status and which dependency is down."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from common.embedded import EmbeddedServer
from common.users.models import User
from tests.support import ROOT, AppServer, free_port, start_app, stop_app


@pytest.fixture
def external_redis(tmp_path: Path) -> Iterator[EmbeddedServer]:
    """A second password-protected server, standing in for an external Redis."""
    server = EmbeddedServer(tmp_path / "external").start()
    yield server
    server.stop()


@pytest.fixture
def app_env(service_env: dict[str, str]) -> dict[str, str]:
    return {**service_env, "PYTHONPATH": str(ROOT)}


def started(env: dict[str, str], redis_url: str) -> AppServer:
    return start_app(env, {"REDIS_URL": redis_url})


def test_ready_names_redis_when_it_is_down_and_nothing_else(app_env: dict[str, str]) -> None:
    app = started(app_env, f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    try:
        response = httpx.get(f"{app.base_url}/ready", timeout=15)
    finally:
        stop_app(app)
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert response.json() == {"status": "unavailable", "down": ["redis"]}


def test_an_external_redis_url_with_a_password_keeps_working(
    app_env: dict[str, str],
    external_redis: EmbeddedServer,
    make_user: Callable[..., tuple[User, str]],
) -> None:
    app = started(app_env, external_redis.redis_url)
    try:
        assert httpx.get(f"{app.base_url}/ready", timeout=15).json() == {
            "status": "ready",
            "down": [],
        }
        _, key = make_user()
        jobs = httpx.get(f"{app.base_url}/api/jobs", headers={"X-API-Key": key}, timeout=15)
        assert jobs.status_code == 200, jobs.text
    finally:
        stop_app(app)


def test_an_external_redis_url_with_a_wrong_password_is_not_ready(
    app_env: dict[str, str], external_redis: EmbeddedServer
) -> None:
    wrong = f"redis://:wrong@127.0.0.1:{external_redis.port}/0"
    app = started(app_env, wrong)
    try:
        response = httpx.get(f"{app.base_url}/ready", timeout=15)
    finally:
        stop_app(app)
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "down": ["redis"]}
    assert "wrong" not in response.text
