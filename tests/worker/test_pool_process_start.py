"""A worker pool process, once started, leaves its startup objects out of the collector's
full passes (common.collector.freeze_startup_objects, in `worker_process_init`): a sweep
batch allocates enough to set off a full pass every few batches, and each walked all of
them (~175,000 objects, ~80 ms a pass, 8-10 % of the pool's CPU in BENCHMARKS.md's fleet
sweeps)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from common.ids import new_id
from tests.worker.support import start_worker, stop_worker, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

FROZEN = re.compile(r"startup objects left out of the collector's full passes: (\d+)")


def test_a_pool_process_leaves_its_startup_objects_out_of_full_collections(
    service_env: dict[str, str], tmp_path: Path
) -> None:
    # A queue of its own: the worker is only started, and takes no other test's work.
    worker = start_worker(service_env, tmp_path, queues=[f"neonomaly.startup.{new_id()[:8]}"])
    try:
        frozen = wait_for(
            lambda: FROZEN.findall(worker.log()), 30, "the pool process's startup freeze"
        )
    finally:
        stop_worker(worker)
    assert len(frozen) == 1  # the one pool process (concurrency 1)
    assert int(frozen[0]) > 10_000  # the tasks' modules, the detection library, the clients
