"""Helpers of the agents' tests and benchmark: remote write bodies, and what a user has."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import cramjam
import httpx

from common.agents.prompb.remote_pb2 import MetricMetadata, WriteRequest

REMOTE_WRITE_HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}

# (labels with __name__, [(epoch ms, value), ...])
Series = tuple[dict[str, str], Sequence[tuple[int, float]]]


def write_request(series: Iterable[Series], metadata: dict[str, int] | None = None) -> WriteRequest:
    request = WriteRequest()
    for labels, samples in series:
        ts = request.timeseries.add()
        for name in sorted(labels):
            ts.labels.add(name=name, value=labels[name])
        for ms, value in samples:
            ts.samples.add(timestamp=ms, value=value)
    for family, kind in (metadata or {}).items():
        request.metadata.add(metric_family_name=family, type=kind)
    return request


def snappy(raw: bytes) -> bytes:
    return bytes(cramjam.snappy.compress_raw(raw))


def remote_write_body(series: Iterable[Series], metadata: dict[str, int] | None = None) -> bytes:
    """A remote write 1.0 body as Prometheus sends it: a snappy block of a WriteRequest."""
    return snappy(write_request(series, metadata).SerializeToString())


COUNTER = MetricMetadata.COUNTER
GAUGE = MetricMetadata.GAUGE


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def metrics_of(http: httpx.Client, service_name: str) -> dict[str, dict[str, Any]]:
    """The caller's metrics in the service of that name, by metric name ({} if none)."""
    services = [s for s in http.get("/api/services").json() if s["name"] == service_name]
    if not services:
        return {}
    assert len(services) == 1, services
    listed = http.get(f"/api/metrics/service/{services[0]['id']}").json()
    return {metric["name"]: metric for metric in listed}


def readings_of(http: httpx.Client, metric_id: str) -> list[tuple[str, float]]:
    page = http.get(f"/api/metrics/{metric_id}/readings", params={"limit": 10_000}).json()
    return [(r["timestamp"], r["value"]) for r in page["readings"]]
