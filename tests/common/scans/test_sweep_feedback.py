"""Verdicts in sweeps, end to end on the session's real worker and each engine (issue 20):
two false positives of a kind make later sweeps judge behaviour like them normal,
withdrawing one restores the alarm; a confirmed anomaly marks the metric so the next sweep
rebuilds its state with the anomaly's readings kept out of what the detector learns."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import httpx
import numpy as np
import pytest

from common.epoch import to_epoch_ms
from common.metrics.models import NewReading
from common.stores import Repositories
from tests.fixtures_sweeps import Swept, owner_scan
from tests.worker.support import add_metric, recent_start

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

STEP = timedelta(minutes=5)
COUNT = 300
# Bumps of the same kind, each no larger than the one before, a quiet time apart.
BUMPS = {COUNT: 6.0, COUNT + 60: 5.5, COUNT + 120: 5.0, COUNT + 180: 5.0}
TOTAL = COUNT + 190


def flagged(client: httpx.Client, metric_id: str) -> dict[str, str]:
    answer = client.get(f"/api/metrics/{metric_id}/anomalies", params={"limit": 1000})
    assert answer.status_code == 200, answer.text
    return {a["reading_id"]: a["id"] for a in answer.json()["anomalies"]}


def test_a_false_positive_teaches_later_sweeps_and_withdrawing_it_restores_them(
    client: httpx.Client, store: Repositories, sweep: Callable[..., Swept]
) -> None:
    values = 100 + np.random.default_rng(23).normal(0, 0.5, TOTAL)
    for at, size in BUMPS.items():
        values[at] += size
    start = recent_start(TOTAL, STEP)
    times = [to_epoch_ms(start + i * STEP) for i in range(TOTAL)]
    # Twins: a person gives feedback on one; the other shows what the detector alone says.
    taught, alone = (add_metric(client, store, values[:COUNT], start, STEP)[0] for _ in range(2))
    sweep()

    def append(first: int, stop: int) -> None:
        for metric_id in (taught, alone):
            store.readings.append(
                metric_id,
                [NewReading(f"n{i}", times[i], float(values[i])) for i in range(first, stop)],
            )
        sweep()

    def false_positive(reading_id: str) -> str:
        marked = flagged(client, taught)[reading_id]
        said = client.post(f"/api/anomalies/{marked}/feedback", json={"verdict": "false_positive"})
        assert said.status_code == 200, said.text
        return marked

    first, second, third, fourth = (f"n{i}" for i in BUMPS)
    append(COUNT, COUNT + 1)
    marked = false_positive(first)
    append(COUNT + 1, COUNT + 61)
    assert second in flagged(client, alone)
    assert second in flagged(client, taught)  # one verdict alone teaches nothing
    false_positive(second)
    append(COUNT + 61, COUNT + 121)
    assert third in flagged(client, alone)
    assert third not in flagged(client, taught)  # like the false positives: normal

    withdrawn = client.delete(f"/api/anomalies/{marked}/feedback")
    assert withdrawn.status_code == 200 and withdrawn.json()["feedback"] is None
    append(COUNT + 121, TOTAL)
    assert fourth in flagged(client, alone) and fourth in flagged(client, taught)


def test_confirming_a_judged_anomaly_rebuilds_the_state_without_its_readings(
    client: httpx.Client, store: Repositories, sweep: Callable[..., Swept]
) -> None:
    values = 100 + np.random.default_rng(23).normal(0, 0.5, COUNT)
    values[COUNT - 30] += 6.0
    start = recent_start(COUNT, STEP)
    metric_id, ids = add_metric(client, store, values, start, STEP)
    sweep()
    anomaly = flagged(client, metric_id)[ids[COUNT - 30]]
    said = client.post(f"/api/anomalies/{anomaly}/feedback", json={"verdict": "confirmed"})
    assert said.status_code == 200, said.text
    # The verdict marks the metric: the next sweep rebuilds its state from its history.
    assert owner_scan(client, sweep())["readings_judged"] == COUNT
    # Unmaking `confirmed` does too: the readings are learnt from again.
    said = client.post(f"/api/anomalies/{anomaly}/feedback", json={"verdict": "false_positive"})
    assert said.status_code == 200, said.text
    assert owner_scan(client, sweep())["readings_judged"] == COUNT
