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
