"""Fixture: a real Celery worker process on the session's embedded server (no eager mode,
no mocks). Test modules that need it say `pytest_plugins = ["tests.fixtures_worker"]`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.worker.support import WorkerProcess, start_worker, stop_worker


@pytest.fixture(scope="session")
def celery_worker(
    service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    worker = start_worker(service_env, tmp_path_factory.mktemp("worker-logs"))
    yield worker
    stop_worker(worker)
