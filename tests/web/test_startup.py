"""The web app refuses to start on settings that would break jobs, instead of failing later."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import ROOT, free_port


def test_time_limit_above_the_visibility_timeout_stops_the_start(
    service_env: dict[str, str],
) -> None:
    env = {**service_env, "JOB_TIME_LIMIT_SECONDS": "4000"}  # visibility timeout: 3600
    command = [sys.executable, "-m", "uvicorn", "web.main:app", "--host", "127.0.0.1",
               "--port", str(free_port())]  # fmt: skip
    try:
        result = subprocess.run(
            command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the app started (and served) with a time limit above the visibility timeout")
    assert result.returncode != 0
    assert "JOB_TIME_LIMIT_SECONDS must be below BROKER_VISIBILITY_TIMEOUT_SECONDS" in (
        result.stderr
    )


# The objects alive once the app has started are left out of the collector's full passes
# (common.collector.freeze_startup_objects): a request that allocates much (1,000 series) set off
# passes that walked all of them. In a process of its own: the test process's collector is
# not the app's.
STARTED = """
import gc
from fastapi.testclient import TestClient
from web.main import create_app

before = gc.get_freeze_count()
with TestClient(create_app()) as client:
    assert client.get("/health").status_code == 200
    print(before, gc.get_freeze_count())
"""


def test_the_objects_alive_after_the_start_are_left_out_of_full_collections(
    service_env: dict[str, str],
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", STARTED],
        env=service_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    before, after = map(int, result.stdout.split()[-2:])
    assert before == 0
    assert after > 10_000  # the app's modules, models and schemas
