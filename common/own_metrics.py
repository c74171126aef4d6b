"""Neonomaly's own metrics, for Prometheus: one place that names them all.

Every process records into prometheus_client's metrics. When PROMETHEUS_MULTIPROC_DIR is
set (`neonomaly up` sets it for its children, under the data dir), each process writes its
figures to files there and whoever serves `/metrics` adds up all processes' files:
uvicorn's workers and Celery's pool processes included. Without it, a process's figures are
its own (fine for one process). Only counters and histograms are recorded per process
(summed across processes, dead ones included, as they should be); gauges are read when
scraped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import REGISTRY, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own variable

_FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_SLOW = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)

HTTP_REQUESTS = Counter(
    "neonomaly_http_requests",
    "HTTP requests answered, by route template and status code",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "neonomaly_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template",
    ["method", "route"],
    buckets=_FAST,
)
READINGS_INGESTED = Counter(
    "neonomaly_readings_ingested",
    "Readings stored, by the path they came in (api, remote_write, otlp)",
    ["path"],
)
AGENT_SAMPLES = Counter(
    "neonomaly_agent_samples",
    "Samples received from agents, by path and outcome (stored, duplicate, skipped, rejected)",
    ["path", "outcome"],
)
JOBS = Counter(
    "neonomaly_jobs", "Detection jobs finished, by kind and final status", ["kind", "status"]
)
JOB_DURATION = Histogram(
    "neonomaly_job_duration_seconds",
    "Time a detection job ran, by kind and final status",
    ["kind", "status"],
    buckets=_SLOW,
)
DETECTOR_SECONDS_PER_READING = Histogram(
    "neonomaly_detector_seconds_per_reading",
    "Detector time per reading judged, by method (one observation per run)",
    ["method"],
    buckets=(1e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 1e-2),
)
# Sweeps (periodic scans): recorded by the sweep's batches (common.scans.batch).
SWEEP_DURATION = Histogram(
    "neonomaly_sweep_duration_seconds",
    "From a scan sweep's start to the end of its last batch",
    buckets=_SLOW,
)
SWEEP_METRICS_JUDGED = Counter(
    "neonomaly_sweep_metrics_judged", "Metrics judged by scan sweeps' batches"
)
SCAN_LAG = Histogram(
    "neonomaly_scan_lag_seconds",
    "From a metric's last append to the scan that judged it up to date (per metric)",
    buckets=_SLOW,
)
WEBHOOK_DELIVERIES = Counter(
    "neonomaly_webhook_deliveries",
    "Webhook delivery attempts, by outcome (delivered, retry, failed)",
    ["status"],
)


class _Gauges(Collector):
    """Gauges read when scraped (queue depth): `read` returns (name, help, labels, value)."""

    def __init__(self, read: Callable[[], Iterable[tuple[str, str, dict[str, str], float]]]):
        self.read = read

    def collect(self) -> Iterator[Metric]:
        families: dict[str, GaugeMetricFamily] = {}
        for name, help_text, labels, value in self.read():
            family = families.get(name)
            if family is None:
                family = families[name] = GaugeMetricFamily(name, help_text, labels=list(labels))
            family.add_metric(list(labels.values()), value)
        yield from families.values()


class _Process(Collector):
    """The process's own registry (without multiprocess mode)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def scrape_registry(
    read_gauges: Callable[[], Iterable[tuple[str, str, dict[str, str], float]]],
) -> CollectorRegistry:
    """A registry of every process's metrics (multiprocess mode) or this one's, plus the
    gauges `read_gauges` reads at each scrape."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get(MULTIPROC_DIR):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Process())
    registry.register(_Gauges(read_gauges))
    return registry
