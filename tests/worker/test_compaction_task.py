"""The beat task `neonomaly.compact` on a real worker: it compacts what left the raw window
and deletes what is past retention, and every read says what it said before.

On a server of its own: the task goes over every metric of the store, and the session's
store is shared by the other tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from common.embedded import EmbeddedServer
from common.epoch import now_ms
from common.ids import reading_id
from common.metrics.compaction import DAY_MS, HOUR_MS
from common.metrics.integrity import check_chain
from common.metrics.models import NewReading
from common.queue import COMPACT_TASK, producer_app
from common.stores import connect_graph
from tests.common.repository_support import make_metric
from tests.support import ROOT, settings_for
from tests.worker.support import start_worker, stop_worker

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

STEP_MS = 10 * 60_000


def test_the_compact_task_compacts_old_readings_and_deletes_past_retention(
    tmp_path: Path,
) -> None:
    server = EmbeddedServer(tmp_path / "data").start()
    try:
        settings = settings_for(server)
        store = connect_graph(settings)
        store.ensure_schema()
        _, metric_id = make_metric(store)
        now = now_ms()
        # 40 days, one reading every 10 min, none within 5 min of the retention cutoff (30
        # days before the task runs: a moment after `now`).
        times = range(now - 40 * DAY_MS + STEP_MS // 2, now, STEP_MS)
        readings = [NewReading(reading_id(t, float(t % 97)), t, float(t % 97)) for t in times]
        for first in range(0, len(readings), 5000):
            store.readings.append(metric_id, readings[first : first + 5000])
        retained = store.readings.read_window(metric_id, now - 30 * DAY_MS, None)

        env = {
            **os.environ,
            "GRAPH_URL": server.graph_url,
            "REDIS_URL": server.redis_url,
            "DATA_DIR": str(server.data_dir),
            "PYTHONPATH": str(ROOT),
        }
        worker = start_worker(env, tmp_path)
        try:
            app = producer_app(settings, server.redis_url)
            result = app.send_task(COMPACT_TASK).get(timeout=180)
        finally:
            stop_worker(worker)

        assert result["metrics"] == 1 and result["compacted"] > 0
        boundary = store.readings.boundary(metric_id)
        assert boundary is not None and now - 48 * HOUR_MS <= boundary <= now_ms() - 48 * HOUR_MS
        # Only what is older than 30 days is gone; the rest reads as it did.
        after = store.readings.read_window(metric_id, None, None)
        assert after.ids == retained.ids
        assert after.timestamps_ms.tolist() == retained.timestamps_ms.tolist()
        assert after.values.tolist() == retained.values.tolist()
        # The raw window is the chain: the last 48 hours, whole.
        report = check_chain(store.readings, metric_id)
        assert report.ok, report.problems
        assert report.readings == sum(1 for t in times if t >= boundary)
        store.close()
    finally:
        server.stop()
