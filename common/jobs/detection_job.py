"""The work of one detection job, called by the `neonomaly.detect` task.

Safe to run more than once for the same job id (a redelivered message, a retry): the
window was fixed at submission, the result is overwritten with the same content, and the
graph store merges anomalies on (reading, method). A job already final is left alone.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Protocol

import numpy as np

from common.anomalies.lessons import Lessons
from common.anomalies.service import anomalies_found
from common.detection import DEFAULT_SIGMA, DetectionError, DetectionResult, detect
from common.epoch import from_epoch_ms
from common.errors import NotFoundError
from common.incidents.recording import RecordingGraph, record_anomalies
from common.jobs.models import JobRecord, JobSummary, LatestVerdict
from common.jobs.record_store import JobStore
from common.jobs.result_store import ResultStore
from common.jobs.results import encode_result
from common.maintenance.service import covered
from common.metrics.models import MetricRef, ReadingSeries
from common.metrics.repository import ReadingRepository
from common.own_metrics import DETECTOR_SECONDS_PER_READING, JOB_DURATION, JOBS
from common.settings import Settings

log = logging.getLogger(__name__)


class DetectionGraph(RecordingGraph, Protocol):
    """The repositories a detection job uses (common.stores.Repositories has them all)."""

    @property
    def readings(self) -> ReadingRepository: ...


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_detection_job(
    job_id: str, graph: DetectionGraph, jobs: JobStore, results: ResultStore, settings: Settings
) -> JobRecord | None:
    """Run the job to a final state and return its record (None: no such job, or expired).

    Detection errors (too few readings, say) fail the job with their message. Graph or
    Redis outages propagate as DependencyUnavailableError, for the task to retry.
    """
    record = jobs.get(job_id)
    if record is None:
        log.warning("job %s has no record (expired, or never submitted); nothing to do", job_id)
        return None
    if record.is_final:
        return record
    running = jobs.mark_running(job_id, worker_name())
    if running is None or running.is_final:
        return running
    if running.worker_deaths >= settings.job_max_attempts:
        return jobs.mark_failed(
            job_id,
            f"the job's worker died {running.worker_deaths} times while running it (out of "
            "memory, or killed): not trying again. Try a shorter window.",
        )
    if settings.job_start_delay_seconds:
        time.sleep(settings.job_start_delay_seconds)
    started = time.perf_counter()
    try:
        final = _detect(running, graph, jobs, results, settings)
    except (DetectionError, NotFoundError) as exc:
        final = jobs.mark_failed(job_id, str(exc))
    if final is not None and final.is_final:
        JOBS.labels(final.kind, final.status).inc()
        JOB_DURATION.labels(final.kind, final.status).observe(time.perf_counter() - started)
    return final


def _detect(
    record: JobRecord,
    graph: DetectionGraph,
    jobs: JobStore,
    results: ResultStore,
    settings: Settings,
) -> JobRecord | None:
    params = record.params
    metric = graph.metrics.get_ref(record.metric_id)
    if metric is None:
        raise NotFoundError(
            f"metric {record.metric_id} no longer exists (deleted after submission)"
        )
    series = graph.readings.read_window(
        metric.id, params.start_ms, params.end_ms, limit=params.max_points, newest=True
    )
    jobs.set_progress(record.id, 0.3)
    if len(series) == 0:
        return jobs.mark_failed(
            record.id,
            f"metric {metric.id} has no readings in the window "
            f"[{_moment(params.start)}, {_moment(params.end)}): add readings or widen the window",
        )
    lessons = lessons_of(graph, metric, series)
    detecting = time.perf_counter()
    output = detect(
        series.values,
        series.timestamps_ms,
        params,
        learn=lessons.learn(series.timestamps_ms, in_windows_of(graph, metric, series)),
        taught=lessons.taught,
    )
    DETECTOR_SECONDS_PER_READING.labels(output.method).observe(
        (time.perf_counter() - detecting) / len(series)
    )
    jobs.set_progress(record.id, 0.7)
    method = output.method + ("-online" if params.online else "")
    # The names as they are now, so that a plot of the result needs no graph read.
    service = graph.services.get(metric.owner_id, metric.service_id)
    meta, chunks = encode_result(
        record.id,
        metric.id,
        series,
        output,
        method,
        service_name=None if service is None else service.name,
        metric_name=metric.name,
    )
    expires_at = results.save(meta, chunks)
    anomalies = anomalies_found(metric.id, series, output, method, params.judge_from_ms)
    # Before the job succeeds: if this fails, the retried job (idempotent) does it again.
    recorded = record_anomalies(graph, metric, anomalies, record.id, settings)
    summary = JobSummary(
        method=method,
        method_params=meta.method_params,
        points=len(series),
        flagged=meta.flagged,
        events=len(meta.events),
        anomalies_stored=recorded.stored,
        anomalies_dropped=recorded.dropped,
        anomalies_kept_min_score=recorded.kept_min_score,
        window_start=from_epoch_ms(int(series.timestamps_ms[0])),
        window_end=from_epoch_ms(int(series.timestamps_ms[-1])),
        latest=latest_verdict(series, output, params.sigma or DEFAULT_SIGMA),
    )
    return jobs.mark_succeeded(record.id, summary, expires_at)


def lessons_of(graph: DetectionGraph, metric: MetricRef, series: ReadingSeries) -> Lessons:
    """What the metric's verdicts teach its detector (common.anomalies.lessons)."""
    found = graph.anomalies.lessons([metric.id]).get(metric.id, [])
    times = series.timestamps_ms
    cadence = int(np.median(np.diff(times))) if len(times) > 1 else None
    return Lessons.of(found, cadence)


def in_windows_of(graph: DetectionGraph, metric: MetricRef, series: ReadingSeries) -> np.ndarray:
    """Whether each reading is in one of the metric's maintenance windows."""
    times = series.timestamps_ms
    windows = graph.maintenance.of_metric(
        metric.owner_id, metric.service_id, metric.id, int(times[0]), int(times[-1]) + 1
    )
    return covered(windows, times)


def _moment(moment: object) -> str:
    return "…" if moment is None else str(moment)


def latest_verdict(series: ReadingSeries, output: DetectionResult, sigma: float) -> LatestVerdict:
    """The seed's rule on the newest reading, next to what the job's method said of it."""
    values = series.values
    # Readings near the float limit (1e308) overflow a plain sum to inf, which JSON stores
    # as null and the job record then refuses: compute on values scaled to at most 1.
    size = float(np.max(np.abs(values)))
    scaled = values / size if size > 0 else values
    largest = float(np.finfo(np.float64).max)
    mean = float(np.clip(np.mean(scaled) * size if size > 0 else 0.0, -largest, largest))
    # Cypher's stDev, which the seed used, is the sample standard deviation.
    spread = float(np.std(scaled, ddof=1)) * size if len(values) > 1 and size > 0 else 0.0
    std = min(spread, largest)
    latest = float(values[-1])
    return LatestVerdict(
        timestamp=from_epoch_ms(int(series.timestamps_ms[-1])),
        value=latest,
        window_mean=mean,
        window_std_dev=std,
        is_anomaly=bool(std > 0 and abs(latest - mean) > sigma * std),
        method_is_anomaly=bool(output.is_anomaly[-1]),
    )
