"""Helpers of the incident tests: a small service graph whose anomalies' cause is known."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np

from common.epoch import to_epoch_ms
from common.metrics.models import NewReading
from common.stores import Repositories
from tests.worker.support import poll_job

STEP = timedelta(minutes=1)
POINTS = 300


def flat_series(minutes_ago: int, spike_len: int = 3, seed: int = 3) -> np.ndarray:
    """A steady metric (50 ± 0.5), a reading a minute up to now, with one burst of +40
    starting `minutes_ago` (recent: older anomalies are history and open no incident)."""
    values = 50 + np.random.default_rng(seed).normal(0, 0.5, POINTS)
    values[POINTS - minutes_ago : POINTS - minutes_ago + spike_len] += 40
    return values


@dataclass
class Outage:
    """checkout depends on payments; payments/error_rate broke first, checkout/latency after."""

    checkout: str
    payments: str
    error_rate: str
    latency: str


def service(http: httpx.Client, name: str) -> str:
    response = http.post("/api/services", json={"name": name})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def this_minute() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


def metric(
    http: httpx.Client,
    store: Repositories,
    service_id: str,
    name: str,
    values: np.ndarray,
    newest: datetime | None = None,
) -> str:
    """A metric of the service with `values`, a reading a minute, the last at `newest`
    (default: this minute)."""
    response = http.post("/api/metrics", json={"name": name, "service_id": service_id})
    assert response.status_code == 201, response.text
    metric_id = str(response.json()["id"])
    start = (newest or this_minute()) - (POINTS - 1) * STEP
    store.readings.append(
        metric_id,
        [
            NewReading(f"r{i}", to_epoch_ms(start + i * STEP), float(v))
            for i, v in enumerate(values)
        ],
    )
    return metric_id


def make_outage(
    http: httpx.Client, store: Repositories, lead_minutes: int = 4, tag: str = ""
) -> Outage:
    """`tag` names the services apart (checkout{tag}, payments{tag}): one owner's service
    names are unique."""
    checkout, payments = service(http, f"checkout{tag}"), service(http, f"payments{tag}")
    assert http.put(f"/api/services/{checkout}/dependencies/{payments}").status_code == 200
    # One clock for both: read twice, a minute could turn between them and the lead with it.
    newest = this_minute()
    error_rate = metric(http, store, payments, "error_rate", flat_series(20), newest)
    latency = metric(
        http, store, checkout, "latency", flat_series(20 - lead_minutes, seed=4), newest
    )
    return Outage(checkout, payments, error_rate, latency)


def detect(
    http: httpx.Client, metric_id: str, settings: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A detection job through the API and the real worker: by default rolling at sigma 6
    (only the bursts), or with these method `settings`."""
    method = settings or {"method": "rolling", "sigma_threshold": 6}
    submitted = http.post("/api/metrics/anomaly-detection", json={"metric_id": metric_id, **method})
    assert submitted.status_code == 202, submitted.text
    job = poll_job(http, submitted.json()["job_id"])
    assert job["status"] == "succeeded", job
    return job
