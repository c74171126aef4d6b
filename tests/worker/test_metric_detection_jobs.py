"""A metric's own detection settings are the defaults of its jobs, end to end on a real
worker and each engine: what the request leaves unset the metric gives, what it sets wins."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from common.stores import Repositories
from tests.worker.support import WorkerProcess, add_metric, poll_job

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

SPIKE, DIP = 500, 800


def run(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    submitted = client.post("/api/metrics/anomaly-detection", json=body)
    assert submitted.status_code == 202, submitted.text
    job = poll_job(client, submitted.json()["job_id"])
    assert job["status"] == "succeeded", job
    return job


def flagged_readings(client: httpx.Client, metric_id: str) -> set[str]:
    listed = client.get(f"/api/metrics/{metric_id}/anomalies").json()["anomalies"]
    return {a["reading_id"] for a in listed}


def test_jobs_default_to_the_metrics_detection_settings(
    client: httpx.Client, store: Repositories, celery_worker: WorkerProcess
) -> None:
    values = 100 + np.random.default_rng(9).normal(0, 0.5, 1200)
    values[SPIKE] += 20
    values[DIP] -= 20
    metric_id, ids = add_metric(client, store, values)
    patched = client.patch(
        f"/api/metrics/{metric_id}", json={"detection": {"direction": "down", "sensitivity": 1e-5}}
    )
    assert patched.status_code == 200, patched.text

    job = run(client, {"metric_id": metric_id})
    assert job["params"]["direction"] == "down" and job["params"]["sensitivity"] == 1e-5
    assert flagged_readings(client, metric_id) == {ids[DIP]}

    # The request's own settings win: both directions, the spike too.
    both = run(client, {"metric_id": metric_id, "direction": "both", "method": "rolling"})
    assert both["params"]["direction"] == "both"
    assert both["params"]["sensitivity"] == 1e-5  # unused by rolling, but the metric's
    assert {ids[SPIKE], ids[DIP]} <= flagged_readings(client, metric_id)
