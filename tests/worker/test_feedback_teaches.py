"""Verdicts that teach, end to end on a real worker and each engine (issue 20): two false
positives of a kind make later jobs judge behaviour like them normal (one alone does not),
but not the same deviation on a level it is a larger part of; withdrawing one restores the
alarm; a confirmed outage, or one in a maintenance window, does not widen the band."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pytest

from common.stores import Repositories
from tests.worker.support import T0, WorkerProcess, add_metric, poll_job

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

STEP = timedelta(minutes=5)
NOISE, FALSE_ALARM, AGAIN, LIKE_IT, MUCH_STRONGER = 457, 1000, 1400, 1800, 2200
OUTAGE, AFTER = slice(1200, 1300), 2000
# A metric whose level falls from 100 to 40, and a spike like those marked on the lower one.
SAME_SHARE, LOWER, ON_LOWER = 1450, slice(1500, None), 1800


def job(client: httpx.Client, metric_id: str) -> set[int]:
    """A default-detector job over the whole metric; the readings (indices) it alarms on."""
    window = {"start": T0.isoformat(), "end": (T0 + 3000 * STEP).isoformat()}
    submitted = client.post(
        "/api/metrics/anomaly-detection", json={"metric_id": metric_id, **window}
    )
    assert submitted.status_code == 202, submitted.text
    done = poll_job(client, submitted.json()["job_id"])
    assert done["status"] == "succeeded", done
    result = client.get(f"/api/jobs/{done['id']}/result", params={"limit": 1}).json()
    return {(datetime.fromisoformat(event["start"]) - T0) // STEP for event in result["events"]}


def anomaly_of(client: httpx.Client, metric_id: str, reading_id: str) -> dict[str, Any]:
    listed = client.get(f"/api/metrics/{metric_id}/anomalies", params={"limit": 500}).json()
    [found] = [a for a in listed["anomalies"] if a["reading_id"] == reading_id]
    return found  # type: ignore[no-any-return]


def verdict(client: httpx.Client, anomaly_id: str, said: str | None) -> dict[str, Any]:
    if said is None:
        response = client.delete(f"/api/anomalies/{anomaly_id}/feedback")
    else:
        response = client.post(f"/api/anomalies/{anomaly_id}/feedback", json={"verdict": said})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_false_positive_teaches_later_jobs_and_withdrawing_it_restores_them(
    client: httpx.Client, store: Repositories, celery_worker: WorkerProcess
) -> None:
    values = 100 + np.random.default_rng(9).normal(0, 0.5, 2400)
    values[FALSE_ALARM] += 6.0  # a deploy's blip, say: a person marks it a false positive
    values[AGAIN] += 5.0  # the next deploy: marked too
    values[LIKE_IT] += 5.5  # the same behaviour again, no stronger
    values[MUCH_STRONGER] += 15.0  # far stronger: still news
    metric_id, ids = add_metric(client, store, values, step=STEP)
    before = job(client, metric_id)
    assert {FALSE_ALARM, AGAIN, LIKE_IT, MUCH_STRONGER} <= before

    marked = anomaly_of(client, metric_id, ids[FALSE_ALARM])
    assert verdict(client, marked["id"], "false_positive")["feedback"] == "false_positive"
    assert job(client, metric_id) == before  # one verdict alone teaches nothing
    again = anomaly_of(client, metric_id, ids[AGAIN])
    assert verdict(client, again["id"], "false_positive")["feedback"] == "false_positive"
    taught = job(client, metric_id)
    assert LIKE_IT not in taught
    assert MUCH_STRONGER in taught

    withdrawn = verdict(client, marked["id"], None)
    assert withdrawn["feedback"] is None and withdrawn["feedback_at"] is None
    assert job(client, metric_id) == before


def test_a_false_positive_teaches_its_size_relative_to_the_level(
    client: httpx.Client, store: Repositories, celery_worker: WorkerProcess
) -> None:
    values = 100 + np.random.default_rng(9).normal(0, 0.5, 2400)
    values[FALSE_ALARM] += 6.0  # two blips of about 6 % of the level: marked false
    values[AGAIN] += 5.0
    values[SAME_SHARE] += 5.5  # the same again
    values[LOWER] -= 60.0  # the level falls to 40 (say, traffic moved to another region)
    values[ON_LOWER] += 5.5  # as far as the blips, but 14 % of the level now
    metric_id, ids = add_metric(client, store, values, step=STEP)
    before = job(client, metric_id)
    assert {FALSE_ALARM, AGAIN, SAME_SHARE, LOWER.start, ON_LOWER} <= before
    for index in (FALSE_ALARM, AGAIN):
        verdict(client, anomaly_of(client, metric_id, ids[index])["id"], "false_positive")
    taught = job(client, metric_id)
    assert SAME_SHARE not in taught
    assert {LOWER.start, ON_LOWER} <= taught


def outage_series() -> np.ndarray:
    """Steady noise with a 100-reading outage (+12, noisy), and a +8 spike long after it."""
    rng = np.random.default_rng(3)
    values = rng.normal(100.0, 1.0, 2400)
    values[OUTAGE] += 12.0 + rng.normal(0.0, 6.0, 100)
    values[AFTER] += 8.0
    return values


def test_a_confirmed_outage_does_not_widen_the_band(
    client: httpx.Client, store: Repositories, celery_worker: WorkerProcess
) -> None:
    metric_id, ids = add_metric(client, store, outage_series(), step=STEP)
    learnt = job(client, metric_id)
    # Learnt as normal, the outage widened the band: the spike after it passes unseen.
    assert AFTER not in learnt
    outage_alarms = sorted(i for i in learnt if OUTAGE.start <= i < OUTAGE.stop)
    assert outage_alarms and outage_alarms[0] == OUTAGE.start
    for index in outage_alarms:
        verdict(client, anomaly_of(client, metric_id, ids[index])["id"], "confirmed")
    assert AFTER in job(client, metric_id)


def test_readings_in_a_maintenance_window_do_not_teach(
    client: httpx.Client, store: Repositories, celery_worker: WorkerProcess
) -> None:
    metric_id, _ = add_metric(client, store, outage_series(), step=STEP)
    assert AFTER not in job(client, metric_id)
    created = client.post(
        "/api/maintenance-windows",
        json={
            "metric_id": metric_id,
            "start": (T0 + OUTAGE.start * STEP).isoformat(),
            "end": (T0 + OUTAGE.stop * STEP).isoformat(),
            "reason": "load test",
        },
    )
    assert created.status_code == 201, created.text
    assert AFTER in job(client, metric_id)
    # The window deleted, the outage is learnt again.
    assert client.delete(f"/api/maintenance-windows/{created.json()['id']}").status_code == 204
    assert AFTER not in job(client, metric_id)
